"""Retries, giving up, and time limits, through the in-memory harness."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from sublim import Task, TaskStatus
from sublim.core.task import Fail, Retry
from sublim.testing import Harness

S = TaskStatus
ATTEMPTS_SEEN: Counter[str] = Counter()


class PassesOnSecondTry(Task):
    key: str
    max_attempts = 3

    async def execute(self) -> str:
        ATTEMPTS_SEEN[self.key] += 1
        if ATTEMPTS_SEEN[self.key] == 1:
            raise Retry("not yet", in_seconds=0.05)
        return "done"


class GivesUp(Task):
    max_attempts = 5

    def execute(self) -> None:
        raise Fail("the input can never work")


class Slow(Task):
    time_limit = 0.3
    max_attempts = 3

    async def execute(self) -> None:
        await asyncio.sleep(30)


class SlowButRetried(Task):
    time_limit = 0.2
    max_attempts = 2
    retry_on_timeout = True
    retry_backoff = 0.01

    async def execute(self) -> None:
        await asyncio.sleep(30)


class SlowInAProcess(Task):
    pool = "process"
    time_limit = 0.5

    def execute(self) -> None:
        time.sleep(30)


async def run_one(task: Task, timeout: float = 20) -> object:
    async with Harness(type(task)) as harness:
        execution = await harness.enqueue(task)
        await harness.run_until_idle(timeout=timeout)
        return await harness.get(execution.id)


async def test_a_task_raising_retry_is_tried_again_after_the_delay_it_asked_for() -> None:
    execution = await run_one(PassesOnSecondTry(key="a"))
    assert execution.status == S.PASSED  # type: ignore[attr-defined]
    assert execution.attempt == 2  # type: ignore[attr-defined]
    retry_event = [e for e in execution.events if e.status == S.DISPATCHED][-1]  # type: ignore[attr-defined]
    assert "retry in 0.1 s" in (retry_event.reason or "")


async def test_a_task_raising_fail_fails_for_good_with_attempts_left() -> None:
    execution = await run_one(GivesUp())
    assert execution.status == S.FAILED  # type: ignore[attr-defined]
    assert execution.attempt == 1  # type: ignore[attr-defined]
    assert "gave up" in (execution.events[-1].reason or "")  # type: ignore[attr-defined]


async def test_an_async_task_past_its_time_limit_is_killed_within_a_second() -> None:
    execution = await run_one(Slow())
    assert execution.status == S.KILLED  # type: ignore[attr-defined]
    assert execution.attempt == 1  # type: ignore[attr-defined]
    assert execution.error.type == "TimeLimitExceeded"  # type: ignore[attr-defined]
    assert Slow.time_limit <= execution.duration_seconds < Slow.time_limit + 1  # type: ignore[attr-defined, operator]


async def test_a_timed_out_attempt_is_retried_when_the_task_type_says_so() -> None:
    execution = await run_one(SlowButRetried())
    assert execution.status == S.KILLED  # type: ignore[attr-defined]
    assert execution.attempt == 2  # type: ignore[attr-defined]


async def test_a_process_pool_task_past_its_time_limit_is_killed_within_a_second() -> None:
    execution = await run_one(SlowInAProcess(), timeout=30)
    assert execution.status == S.KILLED  # type: ignore[attr-defined]
    duration = execution.duration_seconds  # type: ignore[attr-defined]
    assert SlowInAProcess.time_limit <= duration < SlowInAProcess.time_limit + 1
