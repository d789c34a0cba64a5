"""Policy decided once, in the core: what an attempt's outcome means, and when to retry."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from sublim.model import TERMINAL, ErrorInfo, TaskResult, TaskStatus

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
