"""Cross-process wake-up latency of the SQLite broker: publish in this process, pull waiting
in another, and print the median time from just before `publish` to the pull's return.

    .venv/bin/python bench/broker_wakeup.py [--rounds 200] [--poll-interval 30]

The consumer's safety-net poll is set long, so that only the notification can wake it.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sublim.broker.base import Message
from sublim.broker.sqlite import SqliteBroker

TOPIC, SUBSCRIPTION = "bench", "bench-consumer"


def consumer(path: str, poll_interval: float, rounds: int, ready: Any, latencies: Any) -> None:
    asyncio.run(consume(path, poll_interval, rounds, ready, latencies))


async def consume(path: str, poll_interval: float, rounds: int, ready: Any, latencies: Any) -> None:
    broker = SqliteBroker(path, poll_interval=poll_interval)
    await broker.open()
    for _ in range(rounds):
        ready.put(None)
        [delivery] = await broker.pull(SUBSCRIPTION, 1, lease=60, wait=30)
        latencies.put(time.time() - float(delivery.data))
        await broker.ack(SUBSCRIPTION, [delivery.receipt])
    await broker.close()


async def publish_rounds(path: str, rounds: int, ready: Any) -> None:
    broker = SqliteBroker(path)
    await broker.open()
    for _ in range(rounds):
        await asyncio.to_thread(ready.get, True, 60)
        await asyncio.sleep(0.01)  # let the consumer enter its waiting pull
        await broker.publish(TOPIC, [Message(repr(time.time()).encode())])
    await broker.close()


async def prepare(path: str) -> None:
    broker = SqliteBroker(path)
    await broker.open()
    await broker.ensure_subscription(TOPIC, SUBSCRIPTION)
    await broker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--poll-interval", type=float, default=30.0)
    args = parser.parse_args()
    spawn: Any = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as directory:
        path = str(Path(directory) / "bench.db")
        asyncio.run(prepare(path))
        ready, latencies = spawn.Queue(), spawn.Queue()
        process = spawn.Process(
            target=consumer, args=(path, args.poll_interval, args.rounds, ready, latencies)
        )
        process.start()
        asyncio.run(publish_rounds(path, args.rounds, ready))
        measured = sorted(latencies.get(timeout=60) for _ in range(args.rounds))
        process.join()
    report(measured, args.poll_interval)


def report(latencies: list[float], poll_interval: float) -> None:
    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.2f} ms"

    p90 = latencies[int(len(latencies) * 0.9)]
    print(
        f"cross-process publish -> pull wake-up over {len(latencies)} rounds "
        f"(consumer poll interval {poll_interval:g} s): median {ms(statistics.median(latencies))}, "
        f"p90 {ms(p90)}, max {ms(latencies[-1])}"
    )


if __name__ == "__main__":
    main()
