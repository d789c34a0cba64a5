"""A request published twice (the outbox's at-least-once gap) runs once on a node."""

from __future__ import annotations

import asyncio
from collections import Counter

from sublim import Task, TaskStatus
from sublim.config import Settings
from sublim.core.messages import request_message
from sublim.core.service import _request_of
from sublim.testing import Harness

RUNS: Counter[int] = Counter()


class Counted(Task):
    n: int

    async def execute(self) -> None:
        RUNS[self.n] += 1
        await asyncio.sleep(0.2)


async def test_a_second_copy_of_a_running_request_is_dropped_not_run() -> None:
    settings = Settings(store_url="memory://", broker_url="memory://")
    async with Harness(Counted, settings=settings) as harness:
        execution = await harness.enqueue(Counted(n=7))
        recorded = await harness.get(execution.id)
        await harness.broker.publish("Counted", [request_message(_request_of(recorded))])
        await harness.run_until_idle()
        final = await harness.get(execution.id)
    assert final.status == TaskStatus.PASSED
    assert RUNS[7] == 1
