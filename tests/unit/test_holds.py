"""Dependencies (Blocked) and per-topic concurrency limits, through the in-memory harness."""

from __future__ import annotations

import asyncio

import pytest

from sublim import Task, TaskStatus
from sublim.config import Settings
from sublim.core.model import Execution
from sublim.errors import InvalidInput
from sublim.testing import Harness

S = TaskStatus
RUNNING_NOW: set[int] = set()
MOST_AT_ONCE: list[int] = [0]


class Step(Task):
    n: int
    fail: bool = False
    max_attempts = 1

    async def execute(self) -> int:
        await asyncio.sleep(0.02)
        if self.fail:
            raise RuntimeError(f"step {self.n} failed")
        return self.n


class Counted(Task):
    """Notes how many of its kind run at once."""

    n: int

    async def execute(self) -> None:
        RUNNING_NOW.add(self.n)
        MOST_AT_ONCE[0] = max(MOST_AT_ONCE[0], len(RUNNING_NOW))
        await asyncio.sleep(0.05)
        RUNNING_NOW.discard(self.n)


def memory_settings(**fields: object) -> Settings:
    return Settings(store_url="memory://", broker_url="memory://", **fields)  # type: ignore[arg-type]


async def enqueue(harness: Harness, task: Task, depends_on: list[str] | None = None) -> Execution:
    record, _ = await harness.service.create_task(type(task).topic, task.model_dump())
    return await harness.service.enqueue(record.id, depends_on=depends_on or [])


async def test_an_execution_waits_blocked_until_its_dependencies_pass() -> None:
    async with Harness(Step, settings=memory_settings()) as harness:
        first = await enqueue(harness, Step(n=1))
        second = await enqueue(harness, Step(n=2))
        last = await enqueue(harness, Step(n=3), depends_on=[first.id, second.id])
        assert last.status == S.BLOCKED
        await harness.run_until_idle()
        done = {e.id: e for e in await harness.executions()}
    assert done[last.id].status == S.PASSED
    assert done[last.id].started_at > max(done[first.id].finished_at, done[second.id].finished_at)  # type: ignore[operator]
    statuses = [e.status for e in done[last.id].events]
    assert statuses[:3] == [S.INITIALIZED, S.BLOCKED, S.READY_FOR_DISPATCH]


async def test_an_execution_whose_dependency_fails_ends_cancelled_with_the_reason() -> None:
    async with Harness(Step, settings=memory_settings()) as harness:
        failing = await enqueue(harness, Step(n=1, fail=True))
        waiting = await enqueue(harness, Step(n=2), depends_on=[failing.id])
        await harness.run_until_idle()
        final = await harness.get(waiting.id)
    assert final.status == S.CANCELLED
    assert final.events[-1].reason == f"dependency {failing.id} ended Failed"
    assert S.RUNNING not in [e.status for e in final.events]


async def test_depending_on_an_execution_that_already_passed_dispatches_at_once() -> None:
    async with Harness(Step, settings=memory_settings()) as harness:
        first = await enqueue(harness, Step(n=1))
        await harness.run_until_idle()
        after = await enqueue(harness, Step(n=2), depends_on=[first.id])
        assert after.status in {S.DISPATCHED, S.RUNNING, S.PASSED}
        await harness.run_until_idle()
        assert (await harness.get(after.id)).status == S.PASSED


async def test_depending_on_an_unknown_execution_is_invalid_input() -> None:
    async with Harness(Step, settings=memory_settings()) as harness:
        with pytest.raises(InvalidInput, match="no execution 'NOPE'"):
            await enqueue(harness, Step(n=1), depends_on=["NOPE"])


async def test_a_topic_limit_caps_how_many_run_at_once_and_all_still_finish() -> None:
    MOST_AT_ONCE[0] = 0
    settings = memory_settings(concurrency_limits={"Counted": 2})
    async with Harness(Counted, workers=8, settings=settings) as harness:
        executions = [await enqueue(harness, Counted(n=n)) for n in range(10)]
        waiting = [e for e in executions if e.status == S.READY_FOR_DISPATCH]
        done = await harness.run_until_idle(timeout=30)
    assert len(waiting) == 8
    assert {e.status for e in done} == {S.PASSED}
    assert MOST_AT_ONCE[0] == 2


async def test_a_limited_flood_does_not_starve_another_topic() -> None:
    settings = memory_settings(concurrency_limits={"Counted": 1})
    async with Harness(Counted, Step, workers=4, settings=settings) as harness:
        for n in range(20):
            await enqueue(harness, Counted(n=100 + n))
        other = await enqueue(harness, Step(n=1))
        for _ in range(200):
            if (await harness.get(other.id)).status == S.PASSED:
                break
            await asyncio.sleep(0.01)
        passed_counted = await harness.executions(status=S.PASSED, topic="Counted")
        assert (await harness.get(other.id)).status == S.PASSED
        assert len(passed_counted) < 20
        await harness.run_until_idle(timeout=30)
