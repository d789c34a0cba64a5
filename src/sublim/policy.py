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


def verdict_for_error(
    error: ErrorInfo, *, attempt: int, max_attempts: int, crashed: bool
) -> Verdict:
    """A raised exception (or a crashed worker): retry while attempts remain."""
    if attempt < max_attempts:
        delay = backoff_delay(attempt)
        reason = f"attempt {attempt} failed ({error.type}: {error.message}); retry in {delay:.1f} s"
        return Verdict(S.DISPATCHED, error=error, retry_in=delay, reason=reason)
    final = S.ERROR if crashed else S.FAILED
    reason = f"attempt {attempt} of {max_attempts} failed ({error.type}: {error.message})"
    return Verdict(final, error=error, reason=reason)
