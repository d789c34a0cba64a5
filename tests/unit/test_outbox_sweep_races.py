"""The sweeper publishes executions recorded but never published; it must not publish again
one whose enqueue is still publishing it in this process, however slow the publish (a loaded
machine, a broker retrying): the two deliveries would both be attempt 1 and could run at
once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sublim.broker.base import Message
from sublim.broker.memory import MemoryBroker
from sublim.config import Settings
from sublim.core.model import TaskStatus
from sublim.core.service import Service, default_subscription
from sublim.store.memory import MemoryStore

S = TaskStatus
OUTBOX_GRACE = 0.05


class SlowBroker(MemoryBroker):
    """Publishes take longer than the outbox grace."""

    async def publish(self, topic: str, messages: Sequence[Message]) -> set[str]:
        await asyncio.sleep(OUTBOX_GRACE * 6)
        return await super().publish(topic, messages)


async def test_the_sweeper_leaves_alone_an_execution_its_enqueue_is_still_publishing() -> None:
    settings = Settings(
        store_url="memory://", broker_url="memory://", outbox_grace_seconds=OUTBOX_GRACE
    )
    broker = SlowBroker()
    async with Service(MemoryStore(), broker, settings) as service:
        await broker.ensure_subscription("Slow", default_subscription("Slow"))
        task, _ = await service.create_task("Slow")
        enqueue = asyncio.create_task(service.enqueue(task.id))
        await asyncio.sleep(OUTBOX_GRACE * 2)
        report = await service.sweep()
        execution = await enqueue
        deliveries = await broker.pull(default_subscription("Slow"), 10, lease=5, wait=0.5)
    assert report.republished == 0
    assert execution.status == S.DISPATCHED
    assert len(deliveries) == 1
