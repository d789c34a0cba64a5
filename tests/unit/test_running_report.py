"""An attempt that ends within the Running report's hold has its Running update published in
the same batch as its outcome (docs/decisions/034-cheaper-attempts.md); the event log still
records Running at the attempt's start, then the outcome."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta

from sublim import Task, TaskStatus
from sublim.broker.base import Message
from sublim.config import Settings
from sublim.testing import Harness

S = TaskStatus


class Quick(Task):
    async def execute(self) -> int:
        return 1


async def test_a_quick_attempt_publishes_running_and_its_outcome_in_one_batch() -> None:
    settings = Settings(store_url="memory://", broker_url="memory://")
    async with Harness(Quick, settings=settings) as harness:
        publish = harness.broker.publish
        batches: list[list[str]] = []

        async def recording(topic: str, messages: Sequence[Message]) -> set[str]:
            bodies = [json.loads(m.data) for m in messages]
            batches.append([b["status"] for b in bodies if "seq" in b])
            return await publish(topic, messages)

        harness.broker.publish = recording  # type: ignore[method-assign]
        execution = await harness.enqueue(Quick())
        await harness.run_until_idle(timeout=10)
        done = await harness.get(execution.id)
    assert [S.RUNNING, S.PASSED] in [[S(status) for status in batch] for batch in batches]
    running, passed = done.events[-2:]
    assert (running.status, passed.status) == (S.RUNNING, S.PASSED)
    assert done.started_at is not None
    assert running.at - done.started_at < timedelta(milliseconds=5)  # made at the start
    assert running.at <= passed.at
