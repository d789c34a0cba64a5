"""What only the NATS broker promises: dead letters after `max_deliveries`, and topic streams
whose `duplicate_window` is the broker's `dedupe_window`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats
import pytest

from sublim.broker.base import Message
from sublim.broker.nats import NatsBroker
from tests.engine_brokers import fresh_nats_url

LEASE = 30.0


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async with fresh_nats_url() as fresh:
        yield fresh


async def dead_letters(url: str, prefix: str) -> list[tuple[str, bytes, str | None]]:
    connection = await nats.connect(url.split("?")[0])
    try:
        jetstream = connection.jetstream()
        stream = f"{prefix}_dead_letters"
        last = (await jetstream.stream_info(stream)).state.last_seq
        letters = [await jetstream.get_msg(stream, seq) for seq in range(1, last + 1)]
        return [
            (m.subject, m.data or b"", (m.headers or {}).get("Sublim-Deliveries")) for m in letters
        ]
    finally:
        await connection.close()


async def test_a_message_delivered_too_often_goes_to_the_dead_letters(url: str) -> None:
    broker = NatsBroker.from_url(f"{url}&max_deliveries=2")
    await broker.open()
    try:
        await broker.ensure_subscription("work", "workers")
        await broker.publish("work", [Message(b"poison")])
        for _ in range(2):
            [delivery] = await broker.pull("workers", 1, lease=LEASE, wait=1.0)
            await broker.nack("workers", [delivery.receipt])

        assert await broker.pull("workers", 1, lease=LEASE, wait=0.5) == []
    finally:
        await broker.close()
    prefix = url.split("prefix=")[1]
    assert await dead_letters(url, prefix) == [(f"{prefix}.dlq.workers", b"poison", "2")]


async def stream_duplicate_window(url: str, stream: str) -> float:
    connection = await nats.connect(url.split("?")[0])
    try:
        return float((await connection.jetstream().stream_info(stream)).config.duplicate_window)
    finally:
        await connection.close()


async def test_a_topic_stream_made_with_another_window_takes_the_broker_s_window(
    url: str,
) -> None:
    prefix = url.split("prefix=")[1]
    for window in (60.0, 30.0):
        broker = NatsBroker.from_url(f"{url}&dedupe_window={window}")
        await broker.open()
        try:
            await broker.ensure_subscription("work", f"workers-{int(window)}")
        finally:
            await broker.close()

        assert await stream_duplicate_window(url, f"{prefix}_topic_work") == window
