"""Helpers of the fair-slots tests: many task types on a node with few worker slots."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

from sublim import Task
from sublim.broker.base import Broker
from sublim.config import Settings
from sublim.core.service import Service
from sublim.executor.builder import ExecutionNodeBuilder
from sublim.executor.node import ExecutionNode
from sublim.store.memory import MemoryStore

#: Task types in the order their attempts started, one entry per start.
STARTS: list[str] = []
#: A `Recorded` with a negative `n` (a gate) holds its slot until the last event here is set.
GATES: list[asyncio.Event] = []


class Recorded(Task):
    """Records its start, then passes with its payload (a gate first waits to be opened)."""

    n: int

    async def execute(self) -> dict[str, int]:
        STARTS.append(self.topic)
        if self.n < 0:
            await GATES[-1].wait()
        await asyncio.sleep(0)
        return {"n": self.n}


def kinds(prefix: str, count: int) -> list[type[Task]]:
    """`count` task types named `<prefix>00`, `<prefix>01`, … (their topics too)."""
    made = [type(f"{prefix}{i:02d}", (Recorded,), {"__module__": __name__}) for i in range(count)]
    return cast(list[type[Task]], made)


async def subscribe(broker: Broker, types: Sequence[type[Task]]) -> None:
    """Make the node's subscriptions before anything is published (else it is dropped)."""
    for task_type in types:
        await broker.ensure_subscription(task_type.topic, f"{task_type.topic}-sub")


def node_for(broker: Broker, types: Sequence[type[Task]], workers: int) -> ExecutionNode:
    builder = ExecutionNodeBuilder(workers, broker, settings=Settings(), name="fair")
    for task_type in types:
        builder.with_consumer(task_type)
    return builder.build()


@asynccontextmanager
async def serving(node: ExecutionNode) -> AsyncIterator[ExecutionNode]:
    """The node serves while in the block, and has stopped when the block is left."""
    stop = asyncio.Event()
    served = asyncio.create_task(node.serve(stop))
    try:
        yield node
    finally:
        stop.set()
        await served


class _Borrowed:
    """`broker`, except that `close` leaves it open: its owner (a fixture) closes it."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    def __getattr__(self, name: str) -> Any:
        return getattr(self._broker, name)

    async def close(self) -> None:
        pass


def memory_service(broker: Broker) -> Service:
    """A service on a store of its own and `broker`, which it does not close."""
    return Service(MemoryStore(), cast(Broker, _Borrowed(broker)), Settings(store_url="memory://"))
