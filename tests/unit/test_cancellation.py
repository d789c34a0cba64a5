"""Cancelling executions: queued ones never start, running ones stop, on every pool."""

from __future__ import annotations

import asyncio
import time

from sublim import Task, TaskStatus
from sublim.config import Settings
from sublim.core.model import Execution
from sublim.testing import Harness

S = TaskStatus
STARTED: set[str] = set()
STOPPED_AT: dict[str, float] = {}


class Hold(Task):
    """Runs until cancelled (async: an asyncio cancel), noting when it started and stopped."""

    key: str

    async def execute(self) -> None:
        STARTED.add(self.key)
        try:
            await asyncio.sleep(30)
        finally:
            STOPPED_AT[self.key] = time.monotonic()


class Polite(Task):
    """A thread-pool task that checks `self.cancelled()` and returns when asked."""

    key: str

    def execute(self) -> str:
        STARTED.add(self.key)
        while not self.cancelled():
            time.sleep(0.01)
        STOPPED_AT[self.key] = time.monotonic()
        return "stopped early"


class Stubborn(Task):
    """A process-pool task that never looks at the flag: stopped after the grace period."""

    pool = "process"

    def execute(self) -> None:
        time.sleep(30)


def settings(**overrides: float) -> Settings:
    return Settings(store_url="memory://", broker_url="memory://", **overrides)  # type: ignore[arg-type]


async def wait_for(harness: Harness, execution_id: str, status: TaskStatus) -> Execution:
    for _ in range(1000):
        execution = await harness.get(execution_id)
        if execution.status == status:
            return execution
        await asyncio.sleep(0.01)
    raise AssertionError(f"{execution_id} never reached {status}")


async def test_a_queued_execution_cancelled_before_it_starts_never_runs() -> None:
    async with Harness(Hold, workers=1, settings=settings()) as harness:
        blocker = await harness.enqueue(Hold(key="blocker"))
        await wait_for(harness, blocker.id, S.RUNNING)
        queued = await harness.enqueue(Hold(key="queued"))
        cancelled = await harness.service.cancel(queued.id, by="alice")
        await harness.service.cancel(blocker.id)
        await harness.run_until_idle()
        final = await harness.get(queued.id)
    assert cancelled.events[-1].reason == "cancelled by alice"
    assert final.status == S.CANCELLED
    assert "queued" not in STARTED
    assert S.RUNNING not in [e.status for e in final.events]


async def test_a_running_async_task_is_cancelled_within_a_second() -> None:
    async with Harness(Hold, settings=settings()) as harness:
        execution = await harness.enqueue(Hold(key="running"))
        await wait_for(harness, execution.id, S.RUNNING)
        asked_at = time.monotonic()
        cancelled = await harness.service.cancel(execution.id, by="bob")
        for _ in range(100):
            if "running" in STOPPED_AT:
                break
            await asyncio.sleep(0.01)
    assert cancelled.status == S.CANCELLED
    assert cancelled.events[-1].reason == "cancelled by bob"
    assert STOPPED_AT["running"] - asked_at < 1.0


async def test_a_thread_task_sees_the_cooperative_flag_and_returns() -> None:
    async with Harness(Polite, settings=settings(cancel_grace_seconds=10)) as harness:
        execution = await harness.enqueue(Polite(key="polite"))
        await wait_for(harness, execution.id, S.RUNNING)
        asked_at = time.monotonic()
        await harness.service.cancel(execution.id)
        await harness.run_until_idle()
        for _ in range(100):
            if "polite" in STOPPED_AT:
                break
            await asyncio.sleep(0.01)
    assert STOPPED_AT["polite"] - asked_at < 1.0


async def test_a_process_task_ignoring_the_flag_is_stopped_after_the_grace_period() -> None:
    async with Harness(Stubborn, workers=1, settings=settings(cancel_grace_seconds=0.3)) as harness:
        stubborn = await harness.enqueue(Stubborn())
        await wait_for(harness, stubborn.id, S.RUNNING)
        await harness.service.cancel(stubborn.id)
        node = harness.node
        assert node is not None
        for _ in range(300):  # the attempt ends, and its worker slot is free again
            if not node._attempts:
                break
            await asyncio.sleep(0.01)
        assert not node._attempts, "the process-pool attempt was not stopped"


async def test_a_cancelled_execution_keeps_one_cancelled_event_whatever_workers_say() -> None:
    async with Harness(Polite, settings=settings()) as harness:
        execution = await harness.enqueue(Polite(key="x"))
        await wait_for(harness, execution.id, S.RUNNING)
        await harness.service.cancel(execution.id)
        await harness.run_until_idle()
        final = await harness.get(execution.id)
    assert final.status == S.CANCELLED
    assert [e.status for e in final.events].count(S.CANCELLED) == 1
