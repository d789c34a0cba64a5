"""The exception tree of Subliminal: every error the library raises is a `SublimError`.

    SublimError
    ├── ConfigError              bad settings, an unknown URL scheme, a missing extra
    │   └── InvalidUrlOption     a backend URL's unknown option or bad value (also InvalidInput)
    ├── NotFound                 no task or execution with that id
    │   ├── TaskNotFound
    │   └── ExecutionNotFound
    ├── Conflict                 the request contradicts the current state
    │   ├── IllegalTransition    the status table forbids the change
    │   └── AlreadyExists
    ├── InvalidInput             a payload or a message that does not validate or decode
    │   └── MessageTooLarge      a message over its broker's `max_message_bytes` (HTTP 413)
    ├── BackendError             a store or broker failed (wrapping the driver's exception)
    │   ├── StoreError
    │   └── BrokerError
    │       └── LeaseLost        an ack or extension for a delivery whose lease has passed
    ├── ApiError                 an error answered by the HTTP API (raised by the client)
    │   ├── AuthError            401/403: no token, an unknown one, or one without the scope
    │   ├── ApiNotFound          404 (also a NotFound)
    │   │   ├── ApiTaskNotFound       (also a TaskNotFound)
    │   │   └── ApiExecutionNotFound  (also an ExecutionNotFound)
    │   ├── ApiConflict          409 (also a Conflict)
    │   ├── ApiInvalidInput      400, 413, 422 (also an InvalidInput)
    │   └── ApiUnavailable       503: the API's store or broker is down (also a BackendError)
    └── Unreachable              the client got no answer from the API (refused, timed out)

The client's `Api*` errors are both an `ApiError` (status, title, the server's detail) and
the core's class for the same case, so that `except TaskNotFound` works with `Service` and
with `sublim.Client` alike.

Each boundary translates what it catches into this tree with ``raise ... from exc``.
"""

from __future__ import annotations

from typing import Any


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


class MessageTooLarge(InvalidInput):
    """A message larger than its broker takes (`Broker.max_message_bytes`): refused before it
    is sent. From `Broker.publish`, `refused` holds the indexes of the messages refused (the
    others were published) and `dropped` the keys a dedupe broker dropped among those."""

    def __init__(
        self,
        message: str,
        *,
        limit: int,
        refused: tuple[int, ...] = (),
        dropped: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(message)
        self.limit = limit
        self.refused = refused
        self.dropped = dropped


class InvalidUrlOption(ConfigError, InvalidInput):
    """A backend URL's option that its backend does not know, or whose value is bad: a
    setting that cannot work, and input that does not validate, so either `except` catches
    it (the brokers raised one or the other before they shared one parser)."""


class BackendError(SublimError):
    """A store or a broker failed; the driver's exception is the ``__cause__``."""


class StoreError(BackendError):
    """The store failed."""


class BrokerError(BackendError):
    """The broker failed."""


class LeaseLost(BrokerError):
    """The lease of a delivery passed: it may be handed to another consumer."""


class ApiError(SublimError):
    """An error answered by the HTTP API, as raised by `sublim.Client`.

    `detail` is the server's; `errors` the per-field errors of a 422; `retry_after` the
    seconds a 503 asked to wait.
    """

    def __init__(
        self,
        status_code: int,
        title: str,
        detail: str = "",
        *,
        errors: list[dict[str, Any]] | None = None,
        retry_after: float | None = None,
    ) -> None:
        # Not super().__init__: subclasses also derive from classes such as TaskNotFound,
        # whose constructors take other arguments.
        Exception.__init__(
            self, f"{status_code} {title}: {detail}" if detail else f"{status_code} {title}"
        )
        self.status_code = status_code
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.retry_after = retry_after


class AuthError(ApiError):
    """401 or 403: no bearer token, an unknown one, or one that lacks the scope."""


class ApiNotFound(ApiError, NotFound):
    """404: no such object (or route)."""


class ApiTaskNotFound(ApiNotFound, TaskNotFound):
    """404 for a task id."""

    task_id: str


class ApiExecutionNotFound(ApiNotFound, ExecutionNotFound):
    """404 for an execution id."""

    execution_id: str


class ApiConflict(ApiError, Conflict):
    """409: the request contradicts the state (cancelling a finished execution, ...)."""


class ApiInvalidInput(ApiError, InvalidInput):
    """400, 413 or 422: a request the API refuses as it is."""


class ApiUnavailable(ApiError, BackendError):
    """503: the API's store or broker is unavailable; try again after `retry_after`."""


class Unreachable(SublimError):
    """The client got no answer from the API: connection refused, timed out or cut."""
