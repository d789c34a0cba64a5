"""The Broker contract on message size: every backend states its largest message, takes a
message of exactly that size, and refuses a larger one without failing the rest of its batch."""

from __future__ import annotations

import uuid

import pytest

from sublim.broker.base import Broker, Message, message_size
from sublim.errors import MessageTooLarge

pytest_plugins = ["tests.contract.broker_backends"]

LONG_LEASE = 30.0
#: Engines whose limit is larger than this (Redis: 512 MiB) are not sent a message that big.
LARGEST_SENT_IN_A_TEST = 32 * 1024 * 1024
#: A lowered limit, to check the refusal on every backend without building huge messages.
LOWERED_LIMIT = 64 * 1024


async def a_route(broker: Broker) -> tuple[str, str]:
    topic, subscription = f"topic-{uuid.uuid4().hex[:12]}", f"sub-{uuid.uuid4().hex[:12]}"
    await broker.ensure_subscription(topic, subscription)
    return topic, subscription


async def pull_all(broker: Broker, subscription: str) -> list[bytes]:
    received: list[bytes] = []
    while deliveries := await broker.pull(subscription, 10, lease=LONG_LEASE, wait=1.0):
        received.extend(delivery.data for delivery in deliveries)
        await broker.ack(subscription, [delivery.receipt for delivery in deliveries])
    return received


def keyed_message_of_size(size: int) -> Message:
    """A message with a key, an order and an attribute, weighing exactly `size` bytes."""
    key, order, attributes = uuid.uuid4().hex, "order-1", {"kind": "big"}
    shell = message_size(Message(b"", attributes, key=key, order=order))
    return Message(b"x" * (size - shell), attributes, key=key, order=order)


async def test_every_broker_states_a_positive_message_limit(broker: Broker) -> None:
    assert isinstance(broker.max_message_bytes, int)
    assert broker.max_message_bytes > 0


async def test_a_message_over_the_limit_is_refused_and_the_rest_of_its_batch_is_published(
    broker: Broker,
) -> None:
    broker.max_message_bytes = LOWERED_LIMIT
    topic, subscription = await a_route(broker)
    batch = [Message(b"before"), Message(b"y" * (LOWERED_LIMIT + 1)), Message(b"after")]
    with pytest.raises(MessageTooLarge, match=f"limit of {LOWERED_LIMIT} bytes") as refusal:
        await broker.publish(topic, batch)
    assert refusal.value.refused == (1,)
    assert refusal.value.limit == LOWERED_LIMIT
    assert sorted(await pull_all(broker, subscription)) == [b"after", b"before"]


async def test_a_message_of_exactly_the_limit_is_delivered_whole(broker: Broker) -> None:
    limit = broker.max_message_bytes
    if limit > LARGEST_SENT_IN_A_TEST:
        pytest.skip(f"a message of {limit} bytes is too large to send in a test")
    topic, subscription = await a_route(broker)
    message = keyed_message_of_size(limit)
    await broker.publish(topic, [message, Message(b"small")])
    received = await pull_all(broker, subscription)
    assert sorted(len(data) for data in received) == [5, len(message.data)]


async def test_one_byte_over_the_stated_limit_is_refused_before_anything_is_sent(
    broker: Broker,
) -> None:
    limit = broker.max_message_bytes
    if limit > LARGEST_SENT_IN_A_TEST:
        pytest.skip(f"a message of {limit} bytes is too large to build in a test")
    topic, subscription = await a_route(broker)
    with pytest.raises(MessageTooLarge):
        await broker.publish(topic, [keyed_message_of_size(limit + 1)])
    assert await pull_all(broker, subscription) == []
