"""Policy decided once, in the core: what an attempt's outcome means, and when to retry.

Here, next to each other: verdicts on an outcome, retries and their backoff, how attempts
are numbered and bounded, the quarantine of a poison task (every attempt lost its worker),
and the Error update that stands for a message too large for the broker.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sublim.core.model import (
    TERMINAL,
    Change,
    ErrorInfo,
    Execution,
    TaskResult,
    TaskStatus,
    Update,
    transition,
)
from sublim.core.task import Task
from sublim.errors import MessageTooLarge

S = TaskStatus

BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 300.0


def backoff_delay(
    attempt: int, *, base: float = BACKOFF_BASE_SECONDS, cap: float = BACKOFF_CAP_SECONDS
) -> float:
    """Exponential backoff with full jitter: a random delay in [0, min(cap, base * 2**(n-1))]."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


@dataclass(frozen=True, slots=True)
class Verdict:
    """What an attempt's outcome makes of the execution."""

    status: TaskStatus
    data: Any = None
    error: ErrorInfo | None = None
    retry_in: float | None = None  # set when the execution goes back on the queue
    reason: str | None = None


def verdict_for_value(value: Any) -> Verdict:
    """A returned value: a `TaskResult` as it says, anything else Passed with it as data."""
    result = value if isinstance(value, TaskResult) else TaskResult(status=S.PASSED, data=value)
    if result.status not in TERMINAL:
        message = (
            f"a task may return a final status ({', '.join(sorted(TERMINAL))}), not {result.status}"
        )
        return Verdict(S.ERROR, error=ErrorInfo(type="InvalidResult", message=message))
    try:
        json.dumps(result.data)
    except (TypeError, ValueError) as exc:
        error = ErrorInfo(type="InvalidResult", message=f"result data is not JSON: {exc}")
        return Verdict(S.ERROR, error=error)
    return Verdict(result.status, data=result.data)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a task type retries: from its class variables (see `sublim.Task`)."""

    max_attempts: int
    backoff: float = BACKOFF_BASE_SECONDS
    backoff_max: float = BACKOFF_CAP_SECONDS
    retry_on_timeout: bool = False

    @classmethod
    def of(cls, task_type: type[Task], max_attempts: int) -> RetryPolicy:
        """The policy of `task_type`, allowed `max_attempts` (see `attempts_allowed`)."""
        return cls(
            max_attempts,
            task_type.retry_backoff,
            task_type.retry_backoff_max,
            task_type.retry_on_timeout,
        )

    def delay(self, attempt: int) -> float:
        return backoff_delay(attempt, base=self.backoff, cap=self.backoff_max)


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed attempt, as a pool reported it."""

    error: ErrorInfo
    crashed: bool = False
    timed_out: bool = False
    retry_in: float | None = None
    give_up: bool = False


def verdict_for_failure(failure: Failure, *, attempt: int, policy: RetryPolicy) -> Verdict:
    """Retry while attempts remain, unless the task gave up or ran out of time (Killed)."""
    error = failure.error
    if _may_retry(failure, attempt, policy):
        delay = failure.retry_in if failure.retry_in is not None else policy.delay(attempt)
        reason = f"attempt {attempt} failed ({error.type}: {error.message}); retry in {delay:.1f} s"
        return Verdict(S.DISPATCHED, error=error, retry_in=delay, reason=reason)
    why = "gave up" if failure.give_up else f"attempt {attempt} of {policy.max_attempts} failed"
    reason = f"{why} ({error.type}: {error.message})"
    return Verdict(_final_status(failure), error=error, reason=reason)


def _may_retry(failure: Failure, attempt: int, policy: RetryPolicy) -> bool:
    if failure.give_up or attempt >= policy.max_attempts:
        return False
    return policy.retry_on_timeout or not failure.timed_out


def _final_status(failure: Failure) -> TaskStatus:
    if failure.timed_out:
        return S.KILLED
    return S.ERROR if failure.crashed else S.FAILED


# -- attempts ----------------------------------------------------------------------------------


def attempt_number(first: int, deliveries: int) -> int:
    """The attempt a delivery runs: the request's own attempt on its first delivery, and one
    more on each redelivery (the previous delivery's attempt was lost)."""
    return first + deliveries - 1


def attempts_allowed(task_max_attempts: int | None, enqueued_max_attempts: int) -> int:
    """The task type's own `max_attempts` when it sets one, else the one enqueued with."""
    return task_max_attempts or enqueued_max_attempts


def out_of_attempts(attempt: int, max_attempts: int) -> Verdict | None:
    """Incomplete for a delivery whose attempt is past the last allowed one; else None."""
    if attempt <= max_attempts:
        return None
    return Verdict(S.INCOMPLETE, reason="previous attempt lost; no attempts remain")


# -- poison --------------------------------------------------------------------------------------

POISON = "PoisonTask"
#: Lost attempts, with no outcome ever reported, after which an execution counts as poison.
POISON_LOST_ATTEMPTS = 2


def lost_attempt(execution: Execution, reason: str, *, at: datetime | None = None) -> Change:
    """Record the running attempt lost (its worker died or went silent): Incomplete, or, when
    no attempts remain and not one attempt ever reported an outcome, Error — a poison task
    that kills its workers is quarantined instead of looping."""
    final = execution.attempt >= execution.max_attempts
    never_reported = execution.error is None and execution.attempt >= POISON_LOST_ATTEMPTS
    if not (final and never_reported):
        return transition(execution, S.INCOMPLETE, reason=reason, at=at)
    message = f"all {execution.attempt} attempts lost their worker: quarantined as poison"
    error = ErrorInfo(type=POISON, message=message)
    return transition(execution, S.ERROR, reason=f"{reason}; {message}", at=at, error=error)


# -- messages too large ------------------------------------------------------------------------


def too_large(update: Update, *, of: Literal["request", "update"], size: int, limit: int) -> Update:
    """The Error update that stands for a message of `size` bytes over the broker's `limit`:
    an execution's request that could never be published (`update` is then its next update,
    see `next_update_of`), or the update an executor could not report (`update` itself). The
    record ends Error, saying why, where publishing would fail again and again."""
    text = f"its {of} is {size} bytes, more than the broker's limit of {limit} bytes"
    if of == "request":
        message, reason = text, f"not published: {text}"
    else:
        message, reason = f"the attempt's outcome was not recorded: {text}", f"not reported: {text}"
    error = ErrorInfo(type=MessageTooLarge.__name__, message=message)
    fields = {"status": S.ERROR, "result": None, "error": error, "complete": True}
    return update.model_copy(update={**fields, "reason": reason})


def next_update_of(execution: Execution, status: TaskStatus) -> Update:
    """An update of the execution's current attempt, next in its sequence, in an executor's
    place (the core ending an execution no executor will report on)."""
    return Update(
        execution_id=execution.id,
        task_id=execution.task_id,
        attempt=execution.attempt,
        seq=execution.last_seq + 1,
        status=status,
    )
