"""The exception tree of Subliminal: every error the library raises is a `SublimError`.

    SublimError
    ├── ConfigError              bad settings, an unknown URL scheme, a missing extra
    ├── NotFound                 no task or execution with that id
    │   ├── TaskNotFound
    │   └── ExecutionNotFound
    ├── Conflict                 the request contradicts the current state
    │   ├── IllegalTransition    the status table forbids the change
    │   └── AlreadyExists
    ├── InvalidInput             a payload or a message that does not validate or decode
    ├── BackendError             a store or broker failed (wrapping the driver's exception)
    │   ├── StoreError
    │   └── BrokerError
    │       └── LeaseLost        an ack or extension for a delivery whose lease has passed
    └── ApiError                 an error answered by the HTTP API (raised by the client)

Each boundary translates what it catches into this tree with ``raise ... from exc``.
"""

from __future__ import annotations


class SublimError(Exception):
    """Root of every error Subliminal raises."""


class ConfigError(SublimError):
    """Settings that cannot work: a bad value, an unknown URL scheme, a missing extra."""


class NotFound(SublimError):
    """No object with that id."""


class TaskNotFound(NotFound):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"no task with id {task_id!r}")
        self.task_id = task_id


class ExecutionNotFound(NotFound):
    def __init__(self, execution_id: str) -> None:
        super().__init__(f"no execution with id {execution_id!r}")
        self.execution_id = execution_id


class Conflict(SublimError):
    """The request contradicts the current state of the object."""


class IllegalTransition(Conflict):
    """The transition table does not allow this status change."""


class AlreadyExists(Conflict):
    """An object with that id exists already."""


class InvalidInput(SublimError):
    """Input that does not validate: a payload, a message, a query."""


class BackendError(SublimError):
    """A store or a broker failed; the driver's exception is the ``__cause__``."""


class StoreError(BackendError):
    """The store failed."""


class BrokerError(BackendError):
    """The broker failed."""


class LeaseLost(BrokerError):
    """The lease of a delivery passed: it may be handed to another consumer."""


class ApiError(SublimError):
    """An error answered by the HTTP API, as raised by `sublim.Client`."""

    def __init__(self, status_code: int, title: str, detail: str = "") -> None:
        super().__init__(f"{status_code} {title}: {detail}" if detail else f"{status_code} {title}")
        self.status_code = status_code
        self.title = title
        self.detail = detail
