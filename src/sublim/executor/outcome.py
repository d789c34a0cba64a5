"""`Outcome`: what one attempt of a task produced on a pool, and how exceptions become data.

Shared by every pool and by the process-pool child, so it imports nothing heavier than the
model and the `Task` base class.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from dataclasses import dataclass
from typing import Any

from sublim.core.model import ErrorInfo
from sublim.core.task import Fail, Retry, Task

WORKER_CRASHED = "WorkerCrashed"
TIME_LIMIT_EXCEEDED = "TimeLimitExceeded"
POOL_CLOSED = "PoolClosed"

# A task calling sys.exit() fails its attempt instead of stopping the worker that runs it.
TASK_ERRORS: tuple[type[BaseException], ...] = (Exception, SystemExit)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one attempt: a value, or an error; `crashed` marks infrastructure failures
    (the worker died, the pool closed under it) as opposed to the task's own exception."""

    value: Any
    error: ErrorInfo | None
    duration_seconds: float
    crashed: bool = False
    #: The task raised `Retry(in_seconds=…)`: try again after this many seconds.
    retry_in: float | None = None
    #: The task raised `Fail`: no further attempts.
    give_up: bool = False
    #: The attempt ran past its time limit and was stopped (error type `TimeLimitExceeded`).
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def success(cls, value: Any, duration_seconds: float) -> Outcome:
        return cls(value=value, error=None, duration_seconds=duration_seconds)

    @classmethod
    def failure(
        cls, error: ErrorInfo, duration_seconds: float, *, crashed: bool = False
    ) -> Outcome:
        return cls(value=None, error=error, duration_seconds=duration_seconds, crashed=crashed)


def qualified_name(cls: type) -> str:
    """`ValueError` for builtins, `package.module.Class` for everything else."""
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def error_info_from(exc: BaseException) -> ErrorInfo:
    return ErrorInfo(
        type=qualified_name(type(exc)),
        message=str(exc),
        traceback="".join(traceback.format_exception(exc)),
    )


def outcome_of_exception(exc: BaseException, duration_seconds: float) -> Outcome:
    """The failed Outcome of a task's exception, keeping what `Retry` and `Fail` ask for."""
    error = error_info_from(exc)
    if isinstance(exc, Retry):
        return Outcome(None, error, duration_seconds, retry_in=exc.in_seconds)
    return Outcome(None, error, duration_seconds, give_up=isinstance(exc, Fail))


def described_error(exc: BaseException, context: str) -> ErrorInfo:
    """Like `error_info_from`, with the message saying what was being done."""
    error = error_info_from(exc)
    return error.model_copy(update={"message": f"{context}: {error.message}"})


def time_limit_exceeded(limit: float, duration_seconds: float, detail: str = "") -> Outcome:
    message = f"the task ran past its time limit of {limit:g}s{detail}"
    error = ErrorInfo(type=TIME_LIMIT_EXCEEDED, message=message)
    return Outcome(None, error, duration_seconds, timed_out=True)


def pool_closed(message: str, duration_seconds: float) -> Outcome:
    error = ErrorInfo(type=POOL_CLOSED, message=message)
    return Outcome.failure(error, duration_seconds, crashed=True)


def effective_time_limit(task: Task, time_limit: float | None) -> float | None:
    """An explicit limit wins; otherwise the task class's `time_limit` (None: no limit)."""
    return time_limit if time_limit is not None else type(task).time_limit


def elapsed_since(started: float) -> float:
    return time.perf_counter() - started


def run_captured(task: Task) -> Outcome:
    """Run `execute` in this thread (which has no running loop); its exception becomes data."""
    started = time.perf_counter()
    try:
        value = execute_blocking(task)
    except TASK_ERRORS as exc:
        return outcome_of_exception(exc, elapsed_since(started))
    return Outcome.success(value, elapsed_since(started))


def execute_blocking(task: Task) -> Any:
    """Run `execute` to completion in the calling thread, which has no running event loop."""
    if task.is_async():
        return asyncio.run(task.execute())
    return task.execute()
