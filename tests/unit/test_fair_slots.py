"""A node with fewer worker slots than task types serves every type, in turn
(docs/decisions/020-fair-slots.md)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass

from sublim.broker.base import Delivery
from sublim.broker.memory import MemoryBroker
from sublim.core.model import TaskStatus
from sublim.core.service import Service
from sublim.executor.node import ExecutionNode
from tests.e2e.flow import enqueue, wait_until_finished
from tests.fair_slots import GATES, STARTS, kinds, memory_service, node_for, serving, subscribe

QUEUED_PER_TYPE = 100
CAP = 30


def fewest_starts_when_one_type_reached(cap: int, topics: list[str]) -> int:
    """When the first type had started `cap` attempts, how many the type with fewest had."""
    counts: Counter[str] = Counter({topic: 0 for topic in topics})
    for topic in STARTS:
        counts[topic] += 1
        if counts[topic] == cap:
            return min(counts.values())
    raise AssertionError(f"no type started {cap} attempts: {counts}")


async def wait_for_starts(count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while len(STARTS) < count:
        assert time.monotonic() < deadline, f"only {len(STARTS)} attempts started"
        await asyncio.sleep(0.01)


async def queue_up(service: Service, topics: list[str], per_type: int) -> None:
    for n in range(per_type):
        await enqueue(service, topics[0], [{"n": n}])  # one at a time: the first type first
        await asyncio.gather(*(enqueue(service, t, [{"n": n}]) for t in topics[1:]))


async def test_one_slot_starts_every_one_of_ten_queued_types_before_any_starts_thirty() -> None:
    STARTS.clear()
    types = kinds("Queued", 10)
    topics = [t.topic for t in types]
    broker = MemoryBroker()
    async with memory_service(broker) as service:
        await subscribe(broker, types)
        await queue_up(service, topics, QUEUED_PER_TYPE)
        async with serving(node_for(broker, types, workers=1)):
            await wait_for_starts(len(topics) * CAP)
    fewest = fewest_starts_when_one_type_reached(CAP, topics)
    print(f"queued before the node started: fewest starts when one type reached {CAP}: {fewest}")
    assert fewest >= 1


async def test_a_burst_on_an_idle_node_starts_every_type_before_any_starts_thirty() -> None:
    STARTS.clear()
    GATES.append(gate := asyncio.Event())
    types = kinds("Burst", 10)
    topics = [t.topic for t in types]
    broker = MemoryBroker()
    async with memory_service(broker) as service, serving(node_for(broker, types, workers=1)):
        await asyncio.sleep(0.3)  # every consumer found its subscription empty
        await enqueue(service, topics[0], [{"n": -1}])
        await wait_for_starts(1)  # the gate holds the only slot
        await queue_up(service, topics, QUEUED_PER_TYPE)
        gate.set()
        await wait_for_starts(len(topics) * CAP)
    fewest = fewest_starts_when_one_type_reached(CAP, topics)
    print(f"burst on an idle node: fewest starts when one type reached {CAP}: {fewest}")
    assert fewest >= 1


@dataclass(frozen=True)
class Pull:
    subscription: str
    max_messages: int
    wait: float
    #: Slots already taken when the pull began: the other pulls' asks plus running attempts.
    taken: int


class RecordingBroker(MemoryBroker):
    """A memory broker that records every pull of `node`, and what the node held meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.pulls: list[Pull] = []
        self.node: ExecutionNode | None = None
        self._asked = 0

    async def pull(
        self, subscription: str, max_messages: int, *, lease: float, wait: float
    ) -> list[Delivery]:
        node = self.node
        if node is None or subscription not in {c.subscription for c in node.consumers}:
            return await super().pull(subscription, max_messages, lease=lease, wait=wait)
        taken = self._asked + len(node._attempts)
        self.pulls.append(Pull(subscription, max_messages, wait, taken))
        self._asked += max_messages
        try:
            return await super().pull(subscription, max_messages, lease=lease, wait=wait)
        finally:
            self._asked -= max_messages


async def test_fifty_types_on_four_slots_pass_and_never_ask_for_more_than_the_free_slots() -> None:
    types = kinds("Many", 50)
    broker = RecordingBroker()
    async with memory_service(broker) as service:
        await subscribe(broker, types)
        ids = [i for t in types for i in await enqueue(service, t.topic, [{"n": 1}, {"n": 2}])]
        async with serving(node_for(broker, types, workers=4)) as node:
            broker.node = node
            executions = await wait_until_finished(service, ids, timeout=60)
    assert {e.status for e in executions} == {TaskStatus.PASSED}
    assert all(e.attempt == 1 for e in executions)
    assert {p.subscription for p in broker.pulls} == {f"{t.topic}-sub" for t in types}
    assert max(p.taken + p.max_messages for p in broker.pulls) <= 4


async def test_an_idle_node_with_more_types_than_slots_waits_on_each_subscription_in_turn() -> None:
    types = kinds("Idle", 20)
    broker = RecordingBroker()
    await subscribe(broker, types)
    async with serving(node_for(broker, types, workers=1)) as node:
        broker.node = node
        await asyncio.sleep(0.5)  # every consumer found its subscription empty
        seen = len(broker.pulls)
        await asyncio.sleep(1.5)
    idle_pulls = broker.pulls[seen:]
    assert len(idle_pulls) >= len(types)
    assert all(p.wait > 0 and p.max_messages == 1 for p in idle_pulls)
    first_round = {p.subscription for p in idle_pulls[: len(types)]}
    assert first_round == {f"{t.topic}-sub" for t in types}
