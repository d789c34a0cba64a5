"""`Task`: the base class of user task types.

A task type is a pydantic model whose fields are the payload, with an ``execute`` method (sync
or async). Its policy is written as class variables::

    class Thumbnail(Task):
        topic = "thumbnails"          # default: the class name
        max_attempts = 5              # default: the settings' max_attempts
        time_limit = 60.0             # seconds; past it the attempt is stopped (Killed)
        retry_backoff = 2.0           # base of the exponential backoff between attempts
        pool = "process"              # "async", "thread" or "process"; default by execute's kind

        url: str
        width: int = 256

        def execute(self) -> TaskResult: ...

Inside ``execute``, ``raise Retry(in_seconds=30)`` asks for another attempt later and
``raise Fail("why")`` fails for good; any other exception is retried with backoff while
attempts remain.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, PrivateAttr

PoolKind = Literal["async", "thread", "process"]
POOL_KINDS: tuple[PoolKind, ...] = ("async", "thread", "process")


class Retry(Exception):
    """Raised by a task to ask for another attempt later (counts as an attempt)."""

    def __init__(self, reason: str = "retry requested", *, in_seconds: float | None = None) -> None:
        super().__init__(reason)
        self.in_seconds = in_seconds


class Fail(Exception):
    """Raised by a task to fail for good: no further attempts, whatever remain."""


class Task(BaseModel):
    """Base class of task types: fields are the payload, ``execute`` is the work."""

    model_config = ConfigDict(extra="forbid")

    topic: ClassVar[str] = "Task"
    max_attempts: ClassVar[int | None] = None
    time_limit: ClassVar[float | None] = None
    pool: ClassVar[PoolKind | None] = None
    #: Exponential backoff between attempts: base delay and cap, in seconds (full jitter).
    retry_backoff: ClassVar[float] = 1.0
    retry_backoff_max: ClassVar[float] = 300.0
    #: Whether an attempt past its time limit is retried (True) or ends the execution Killed.
    retry_on_timeout: ClassVar[bool] = False

    _cancel_requested: threading.Event | None = PrivateAttr(default=None)

    def cancelled(self) -> bool:
        """True once the execution was cancelled while running: a long task can check this
        and return early. (An async task is also cancelled with `asyncio.CancelledError`; on
        the process pool the flag is not seen and the worker is stopped after a grace period.)"""
        return self._cancel_requested is not None and self._cancel_requested.is_set()

    def __getstate__(self) -> dict[Any, Any]:
        # The cancel flag belongs to this process: a copy sent to a worker process goes without.
        state = super().__getstate__()
        private = dict(state.get("__pydantic_private__") or {})
        private["_cancel_requested"] = None
        return {**state, "__pydantic_private__": private}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "topic" not in cls.__dict__:
            cls.topic = cls.__name__
        if cls.pool is not None and cls.pool not in POOL_KINDS:
            raise TypeError(f"{cls.__name__}.pool must be one of {POOL_KINDS}, not {cls.pool!r}")

    def execute(self) -> Any:
        """Do the work. Return a `TaskResult`, or any JSON value (meaning Passed with that
        data); raise to fail the attempt."""
        raise NotImplementedError(f"{type(self).__name__}.execute is not implemented")

    @classmethod
    def is_async(cls) -> bool:
        return inspect.iscoroutinefunction(cls.execute)

    @classmethod
    def pool_kind(cls) -> PoolKind:
        if cls.pool is not None:
            return cls.pool
        return "async" if cls.is_async() else "thread"
