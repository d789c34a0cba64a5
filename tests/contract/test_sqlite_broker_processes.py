"""What only the SQLite broker promises: durability, and several processes on one file."""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import time
from collections import Counter
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path
from typing import Any

import pytest

from sublim.broker.base import Message
from sublim.broker.sqlite import POLL_INTERVAL, SqliteBroker

TOPIC, SUBSCRIPTION = "work", "workers"
LONG_LEASE = 60.0
SPAWN: Any = multiprocessing.get_context("spawn")
needs_unix_sockets = pytest.mark.skipif(
    not hasattr(socket, "AF_UNIX"), reason="wake-ups need Unix sockets; elsewhere they poll"
)


async def opened(path: Path, poll_interval: float | None = None) -> SqliteBroker:
    broker = SqliteBroker(str(path), poll_interval=poll_interval)
    await broker.open()
    return broker


async def subscribed(path: Path) -> SqliteBroker:
    broker = await opened(path)
    await broker.ensure_subscription(TOPIC, SUBSCRIPTION)
    return broker


# Durability


async def test_published_messages_survive_closing_and_reopening(tmp_path: Path) -> None:
    broker = await subscribed(tmp_path / "b.db")
    await broker.publish(TOPIC, [Message(b"kept", {"k": "v"})])
    await broker.close()

    reopened = await opened(tmp_path / "b.db")
    [delivery] = await reopened.pull(SUBSCRIPTION, 10, lease=LONG_LEASE, wait=0)
    await reopened.close()

    assert (delivery.data, dict(delivery.attributes), delivery.deliveries) == (
        b"kept",
        {"k": "v"},
        1,
    )


async def test_a_lease_outlives_closing_and_reopening(tmp_path: Path) -> None:
    broker = await subscribed(tmp_path / "b.db")
    await broker.publish(TOPIC, [Message(b"leased")])
    await broker.pull(SUBSCRIPTION, 10, lease=LONG_LEASE, wait=0)
    await broker.close()

    reopened = await opened(tmp_path / "b.db")
    again = await reopened.pull(SUBSCRIPTION, 10, lease=LONG_LEASE, wait=0)
    await reopened.close()

    assert again == []


# Several processes


def consume_until_idle(path: Path, start_together: Barrier, results: Any) -> None:
    """A consumer process: pull and ack until the subscription stays empty."""
    results.put(asyncio.run(_consume_until_idle(path, start_together)))


async def _consume_until_idle(path: Path, start_together: Barrier) -> list[int]:
    broker = await opened(path)
    # Every consumer has its broker open before any pulls, so that they really compete.
    await asyncio.to_thread(start_together.wait, 60)
    received: list[int] = []
    while deliveries := await broker.pull(SUBSCRIPTION, 10, lease=LONG_LEASE, wait=0.5):
        received.extend(int(delivery.data) for delivery in deliveries)
        await broker.ack(SUBSCRIPTION, [delivery.receipt for delivery in deliveries])
    await broker.close()
    return received


async def test_processes_sharing_a_file_receive_each_message_exactly_once(tmp_path: Path) -> None:
    path, processes = tmp_path / "b.db", 3
    broker = await subscribed(path)
    await broker.publish(TOPIC, [Message(str(i).encode()) for i in range(2000)])
    await broker.close()
    start_together, results = SPAWN.Barrier(processes), SPAWN.Queue()

    workers = [
        SPAWN.Process(target=consume_until_idle, args=(path, start_together, results))
        for _ in range(processes)
    ]
    received = await asyncio.to_thread(run_and_collect, workers, results)

    counts = Counter(number for per_worker in received for number in per_worker)
    assert sorted(counts) == list(range(2000))
    assert set(counts.values()) == {1}, "a message was handed to two consumers"
    assert sum(1 for per_worker in received if per_worker) >= 2, "the consumers did not overlap"


def run_and_collect(workers: list[Any], results: Any) -> list[list[int]]:
    for worker in workers:
        worker.start()
    collected = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    return collected


def wait_for_one_message(path: Path, waiting: Event, results: Any) -> None:
    """A consumer process whose only way to wake in time is the cross-process notification."""
    results.put(asyncio.run(_wait_for_one_message(path, waiting)))


async def _wait_for_one_message(path: Path, waiting: Event) -> float:
    broker = await opened(path, poll_interval=30.0)
    waiting.set()
    [delivery] = await broker.pull(SUBSCRIPTION, 1, lease=LONG_LEASE, wait=20.0)
    latency = time.time() - float(delivery.data)
    await broker.close()
    return latency


@needs_unix_sockets
async def test_a_publish_in_one_process_wakes_a_puller_waiting_in_another(
    tmp_path: Path,
) -> None:
    path = tmp_path / "b.db"
    broker = await subscribed(path)
    waiting, results = SPAWN.Event(), SPAWN.Queue()
    consumer = SPAWN.Process(target=wait_for_one_message, args=(path, waiting, results))
    consumer.start()
    assert await asyncio.to_thread(waiting.wait, 60)
    await asyncio.sleep(0.5)  # the consumer is now inside its pull

    await broker.publish(TOPIC, [Message(str(time.time()).encode())])

    latency = await asyncio.to_thread(results.get, True, 60)
    await asyncio.to_thread(consumer.join, 30)
    await broker.close()
    assert latency < POLL_INTERVAL / 4


@needs_unix_sockets
async def test_a_publish_through_one_broker_wakes_another_on_a_long_path(tmp_path: Path) -> None:
    # Longer than a Unix socket address may be: the channel must shorten it.
    path = tmp_path / ("d" * 90) / "b.db"
    publisher, waiter = await subscribed(path), await opened(path, poll_interval=30.0)

    async def publish_soon() -> None:
        await asyncio.sleep(0.2)
        await publisher.publish(TOPIC, [Message(b"ping")])

    started = time.monotonic()
    deliveries, _ = await asyncio.gather(
        waiter.pull(SUBSCRIPTION, 1, lease=LONG_LEASE, wait=20.0), publish_soon()
    )
    await asyncio.gather(publisher.close(), waiter.close())

    assert [d.data for d in deliveries] == [b"ping"]
    assert time.monotonic() - started < 0.2 + POLL_INTERVAL / 4


@needs_unix_sockets
async def test_a_wake_up_socket_left_by_a_gone_process_is_removed_by_the_next_publish(
    tmp_path: Path,
) -> None:
    path = tmp_path / "b.db"
    leftover = tmp_path / "b.db.wake" / "999999-gone"
    leftover.parent.mkdir()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as gone:
        gone.bind(str(leftover))
    broker = await subscribed(path)

    await broker.publish(TOPIC, [Message(b"x")])
    await broker.close()

    assert not leftover.exists()


async def test_a_look_that_finds_nothing_due_does_not_wait_for_another_writer(
    tmp_path: Path,
) -> None:
    import sqlite3

    broker = await subscribed(tmp_path / "b.db")
    await broker.publish(TOPIC, [Message(b"leased")])
    [held] = await broker.pull(SUBSCRIPTION, 10, lease=LONG_LEASE, wait=0)
    writer = sqlite3.connect(tmp_path / "b.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process's write under way
    try:
        looked = await asyncio.wait_for(broker.pull(SUBSCRIPTION, 10, lease=5, wait=0), 10)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    await broker.close()
    assert looked == []
    assert held.data == b"leased"
