"""Publish cost per message, keyed (de-duplicated) against unkeyed, per broker: 1,000
messages per publish call, the least disturbed of 15 rounds.

    PYTHONPATH=. .venv/bin/python bench/broker_dedupe.py [memory sqlite postgresql redis nats]

Engines as the tests find them (PostgreSQL, Redis and NATS on their local ports).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tests.engine_brokers import fresh_nats_url, fresh_redis_url
from tests.pg_databases import fresh_schema

from sublim.broker.base import Broker, Message
from sublim.core.backends import broker_from_url

N, ROUNDS = 1000, 15
BROKERS = ("memory", "sqlite", "postgresql", "redis", "nats")


@asynccontextmanager
async def broker_url(name: str, tmp: str) -> AsyncIterator[str]:
    if name == "postgresql":
        async with fresh_schema() as url:
            yield url
    elif name == "redis":
        async with fresh_redis_url() as url:
            yield url
    elif name == "nats":
        async with fresh_nats_url() as url:
            yield url
    else:
        yield "memory://" if name == "memory" else f"sqlite:///{tmp}/b.db"


def messages(keyed: bool) -> list[Message]:
    run = uuid.uuid4().hex
    data = b'{"execution_id": "x", "attempt": 1}' * 4
    return [
        Message(data, {"kind": "request"}, key=f"{run}{i}:1" if keyed else None) for i in range(N)
    ]


async def publish_cost(broker: Broker, keyed: bool) -> float:
    batch = messages(keyed)
    started = time.perf_counter()
    await broker.publish("bench", batch)
    return (time.perf_counter() - started) / N * 1e6


async def drain(broker: Broker) -> None:
    while deliveries := await broker.pull("bench-sub", 1000, lease=30, wait=0):
        await broker.ack("bench-sub", [d.receipt for d in deliveries])


async def bench(name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with broker_url(name, tmp) as url:
            broker = broker_from_url(url)
            await broker.open()
            await broker.ensure_subscription("bench", "bench-sub")
            costs: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(ROUNDS):
                for keyed in (False, True):
                    costs[keyed].append(await publish_cost(broker, keyed))
                await drain(broker)  # so that the backlog does not grow across rounds
            await broker.close()
    print(
        f"{name:10s} unkeyed {min(costs[False]):7.1f} µs/msg   keyed {min(costs[True]):7.1f} µs/msg"
    )


async def main() -> None:
    for name in sys.argv[1:] or BROKERS:
        await bench(name)


if __name__ == "__main__":
    asyncio.run(main())
