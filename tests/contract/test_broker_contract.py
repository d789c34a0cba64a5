"""The Broker contract: every backend, embedded or real, passes these tests."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sublim.broker.base import Broker, Delivery, Message
from sublim.errors import BrokerError, Conflict, InvalidInput

if TYPE_CHECKING:
    from tests.contract.broker_backends import BrokerBackend

pytest_plugins = ["tests.contract.broker_backends"]

#: Long enough that no lease passes during a test that does not wait one out.
LONG_LEASE = 30.0
#: Generous, so that a slow machine does not fail a wake-up test; asserts use a fraction.
LONG_WAIT = 5.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class Route:
    topic: str
    subscription: str


@pytest.fixture
async def route(broker: Broker) -> Route:
    """A fresh topic with one subscription."""
    created = Route(unique("topic"), unique("sub"))
    await broker.ensure_subscription(created.topic, created.subscription)
    return created


async def publish_texts(broker: Broker, topic: str, texts: Sequence[str]) -> None:
    await broker.publish(topic, [Message(text.encode()) for text in texts])


async def pull_now(broker: Broker, subscription: str, max_messages: int = 100) -> list[Delivery]:
    return await broker.pull(subscription, max_messages, lease=LONG_LEASE, wait=0)


def texts_of(deliveries: Sequence[Delivery]) -> list[str]:
    return [delivery.data.decode() for delivery in deliveries]


def keyed(text: str, key: str) -> Message:
    return Message(text.encode(), key=key)


async def pull_all(broker: Broker, subscription: str, batch: int) -> list[Delivery]:
    """Pull (and ack) until a pull comes back empty."""
    received: list[Delivery] = []
    while deliveries := await broker.pull(subscription, batch, lease=LONG_LEASE, wait=0.2):
        received.extend(deliveries)
        await broker.ack(subscription, [delivery.receipt for delivery in deliveries])
    return received


# Publish and pull


async def test_pulled_messages_carry_data_attributes_and_first_delivery_in_order(
    broker: Broker, route: Route
) -> None:
    sent = [Message(f"m{i}".encode(), {"index": str(i), "kind": "test"}) for i in range(5)]
    await broker.publish(route.topic, sent)

    deliveries = await pull_now(broker, route.subscription)

    assert [d.data for d in deliveries] == [m.data for m in sent]
    assert [dict(d.attributes) for d in deliveries] == [dict(m.attributes) for m in sent]
    assert [d.deliveries for d in deliveries] == [1] * 5
    assert len({d.message_id for d in deliveries}) == 5


async def test_a_message_is_copied_to_every_subscription_of_its_topic(
    broker: Broker, route: Route
) -> None:
    second = unique("sub")
    await broker.ensure_subscription(route.topic, second)

    await publish_texts(broker, route.topic, ["a", "b"])

    assert texts_of(await pull_now(broker, route.subscription)) == ["a", "b"]
    assert texts_of(await pull_now(broker, second)) == ["a", "b"]


async def test_a_topic_without_subscriptions_drops_its_messages(broker: Broker) -> None:
    topic, subscription = unique("topic"), unique("sub")
    await publish_texts(broker, topic, ["lost"])

    await broker.ensure_subscription(topic, subscription)

    assert await pull_now(broker, subscription) == []


async def test_a_message_reaches_only_the_subscriptions_of_its_topic(
    broker: Broker, route: Route
) -> None:
    other = Route(unique("topic"), unique("sub"))
    await broker.ensure_subscription(other.topic, other.subscription)

    await publish_texts(broker, route.topic, ["mine"])

    assert await pull_now(broker, other.subscription) == []


async def test_pull_returns_at_most_max_messages(broker: Broker, route: Route) -> None:
    await publish_texts(broker, route.topic, [str(i) for i in range(10)])

    first = await pull_now(broker, route.subscription, max_messages=3)
    rest = await pull_now(broker, route.subscription, max_messages=100)

    assert texts_of(first) == ["0", "1", "2"]
    assert texts_of(rest) == [str(i) for i in range(3, 10)]


async def test_a_batch_of_1000_pulled_in_batches_arrives_once_each_in_order(
    broker: Broker, route: Route
) -> None:
    expected = [f"message-{i}" for i in range(1000)]
    await publish_texts(broker, route.topic, expected)

    received = await pull_all(broker, route.subscription, batch=64)

    assert texts_of(received) == expected


# Waiting


async def test_a_waiting_pull_is_woken_by_a_publish_from_another_task(
    broker: Broker, route: Route
) -> None:
    async def publish_soon() -> None:
        await asyncio.sleep(0.1)
        await publish_texts(broker, route.topic, ["wake up"])

    started = time.monotonic()
    deliveries, _ = await asyncio.gather(
        broker.pull(route.subscription, 10, lease=LONG_LEASE, wait=LONG_WAIT), publish_soon()
    )

    assert texts_of(deliveries) == ["wake up"]
    assert time.monotonic() - started < LONG_WAIT / 2


async def test_pull_on_an_empty_subscription_returns_nothing_once_the_wait_is_over(
    broker: Broker, route: Route
) -> None:
    started = time.monotonic()

    deliveries = await broker.pull(route.subscription, 10, lease=LONG_LEASE, wait=0.3)

    assert deliveries == []
    assert time.monotonic() - started >= 0.25


# Leases and redelivery


async def test_a_leased_message_is_not_handed_out_again_before_its_lease_passes(
    broker: Broker, route: Route, short_lease: float
) -> None:
    await publish_texts(broker, route.topic, ["once"])
    await broker.pull(route.subscription, 1, lease=LONG_LEASE, wait=0)

    again = await broker.pull(route.subscription, 1, lease=LONG_LEASE, wait=short_lease)

    assert again == []


async def test_a_message_whose_lease_passed_is_redelivered_with_one_more_delivery(
    broker: Broker, route: Route, short_lease: float
) -> None:
    await publish_texts(broker, route.topic, ["again"])
    [first] = await broker.pull(route.subscription, 1, lease=short_lease, wait=0)

    # The waiting pull must wake when the lease passes, without any publish.
    [second] = await broker.pull(route.subscription, 1, lease=LONG_LEASE, wait=LONG_WAIT)

    assert (second.message_id, second.data, second.deliveries) == (first.message_id, b"again", 2)
    assert second.receipt != first.receipt


async def test_ack_removes_the_message(broker: Broker, route: Route, short_lease: float) -> None:
    await publish_texts(broker, route.topic, ["done"])
    [delivery] = await pull_now(broker, route.subscription)

    await broker.ack(route.subscription, [delivery.receipt])

    assert await broker.pull(route.subscription, 1, lease=LONG_LEASE, wait=short_lease * 2) == []


async def test_publish_and_ack_publishes_the_messages_and_acks_the_receipts(
    broker: Broker, route: Route, short_lease: float
) -> None:
    outcomes = Route(unique("topic"), unique("sub"))
    await broker.ensure_subscription(outcomes.topic, outcomes.subscription)
    await publish_texts(broker, route.topic, ["request"])
    [delivery] = await pull_now(broker, route.subscription)

    acks = {route.subscription: [delivery.receipt]}
    await broker.publish_and_ack(outcomes.topic, [Message(b"outcome")], acks)

    assert texts_of(await pull_now(broker, outcomes.subscription)) == ["outcome"]
    assert await broker.pull(route.subscription, 1, lease=LONG_LEASE, wait=short_lease * 2) == []


async def redelivered(
    broker: Broker, route: Route, short_lease: float
) -> tuple[Delivery, Delivery]:
    """A message handed to a first consumer whose lease passed, then to a second one."""
    await publish_texts(broker, route.topic, ["contested"])
    [first] = await broker.pull(route.subscription, 1, lease=short_lease, wait=0)
    [second] = await broker.pull(route.subscription, 1, lease=LONG_LEASE, wait=LONG_WAIT)
    return first, second


async def test_a_stale_ack_does_not_remove_the_message_redelivered_to_another_consumer(
    broker: Broker, route: Route, short_lease: float
) -> None:
    first, second = await redelivered(broker, route, short_lease)

    await broker.ack(route.subscription, [first.receipt])

    assert await broker.extend(route.subscription, [second.receipt], lease=LONG_LEASE) == set()
    await broker.nack(route.subscription, [second.receipt])
    [third] = await pull_now(broker, route.subscription)
    assert (third.message_id, third.deliveries) == (first.message_id, 3)


async def test_a_stale_nack_does_not_release_the_message_redelivered_to_another_consumer(
    broker: Broker, route: Route, short_lease: float
) -> None:
    first, _second = await redelivered(broker, route, short_lease)

    await broker.nack(route.subscription, [first.receipt])

    assert await pull_now(broker, route.subscription) == []


async def test_nack_makes_the_message_available_at_once(broker: Broker, route: Route) -> None:
    await publish_texts(broker, route.topic, ["retry"])
    [first] = await pull_now(broker, route.subscription)

    await broker.nack(route.subscription, [first.receipt])

    [again] = await pull_now(broker, route.subscription)
    assert (again.message_id, again.deliveries) == (first.message_id, 2)


async def test_nack_with_a_delay_makes_the_message_available_only_after_the_delay(
    broker: Broker, route: Route, short_lease: float
) -> None:
    await publish_texts(broker, route.topic, ["later"])
    [first] = await pull_now(broker, route.subscription)
    delay = short_lease * 2

    started = time.monotonic()
    await broker.nack(route.subscription, [first.receipt], delay=delay)

    assert await pull_now(broker, route.subscription) == []
    [again] = await broker.pull(route.subscription, 1, lease=LONG_LEASE, wait=LONG_WAIT)
    assert again.message_id == first.message_id
    assert delay * 0.9 <= time.monotonic() - started < LONG_WAIT / 2


async def test_a_waiting_pull_notices_a_delayed_nack_and_wakes_when_it_is_due(
    broker: Broker, route: Route, short_lease: float
) -> None:
    await publish_texts(broker, route.topic, ["delayed"])
    [first] = await pull_now(broker, route.subscription)

    async def nack_soon() -> None:
        await asyncio.sleep(0.05)
        await broker.nack(route.subscription, [first.receipt], delay=short_lease)

    started = time.monotonic()
    [again], _ = await asyncio.gather(
        broker.pull(route.subscription, 1, lease=LONG_LEASE, wait=LONG_WAIT), nack_soon()
    )

    assert again.message_id == first.message_id
    assert time.monotonic() - started < LONG_WAIT / 2


async def test_extend_keeps_a_message_leased_beyond_its_original_lease(
    broker: Broker, route: Route, short_lease: float
) -> None:
    await publish_texts(broker, route.topic, ["slow work"])
    [delivery] = await broker.pull(route.subscription, 1, lease=short_lease, wait=0)

    lost = await broker.extend(route.subscription, [delivery.receipt], lease=LONG_LEASE)

    assert lost == set()
    assert await broker.pull(route.subscription, 1, lease=LONG_LEASE, wait=short_lease * 3) == []


async def test_extend_reports_a_receipt_lost_once_the_message_went_to_another_consumer(
    broker: Broker, route: Route, short_lease: float
) -> None:
    first, second = await redelivered(broker, route, short_lease)

    lost = await broker.extend(
        route.subscription, [first.receipt, second.receipt], lease=LONG_LEASE
    )

    assert lost == {first.receipt}


async def test_an_acked_message_cannot_be_extended(broker: Broker, route: Route) -> None:
    await publish_texts(broker, route.topic, ["gone"])
    [delivery] = await pull_now(broker, route.subscription)
    await broker.ack(route.subscription, [delivery.receipt])

    lost = await broker.extend(route.subscription, [delivery.receipt], lease=LONG_LEASE)

    assert lost == {delivery.receipt}


# De-duplicated publishing (brokers that `dedupes_publish`; the others publish every copy)

#: The dedupe window of the broker that waits it out: short, yet longer than a slow publish.
SHORT_DEDUPE_WINDOW = 0.5


@pytest.fixture
def deduping(broker: Broker) -> Broker:
    if not broker.dedupes_publish:
        pytest.skip("this broker does not dedupe publishes")
    return broker


async def test_a_keyed_message_published_twice_in_one_call_reaches_each_subscription_once(
    deduping: Broker, route: Route
) -> None:
    second = unique("sub")
    await deduping.ensure_subscription(route.topic, second)

    dropped = await deduping.publish(
        route.topic,
        [keyed("first", "k1"), keyed("other", "k2"), keyed("copy", "k1"), Message(b"unkeyed")],
    )

    assert dropped == {"k1"}
    for subscription in (route.subscription, second):
        assert texts_of(await pull_now(deduping, subscription)) == ["first", "other", "unkeyed"]


async def test_a_keyed_message_published_again_in_another_call_is_dropped_and_its_key_returned(
    deduping: Broker, route: Route
) -> None:
    second = unique("sub")
    await deduping.ensure_subscription(route.topic, second)

    assert await deduping.publish(route.topic, [keyed("first", "k1")]) == set()
    assert await deduping.publish(route.topic, [keyed("copy", "k1"), keyed("new", "k2")]) == {"k1"}

    for subscription in (route.subscription, second):
        assert texts_of(await pull_now(deduping, subscription)) == ["first", "new"]


async def test_a_copy_published_after_the_first_was_pulled_and_acked_is_still_dropped(
    deduping: Broker, route: Route
) -> None:
    await deduping.publish(route.topic, [keyed("first", "k1")])
    [delivery] = await pull_now(deduping, route.subscription)
    await deduping.ack(route.subscription, [delivery.receipt])

    dropped = await deduping.publish(route.topic, [keyed("copy", "k1")])

    assert dropped == {"k1"}
    assert await pull_now(deduping, route.subscription) == []


async def test_unkeyed_messages_are_never_dropped(deduping: Broker, route: Route) -> None:
    assert await deduping.publish(route.topic, [Message(b"same"), Message(b"same")]) == set()
    assert await deduping.publish(route.topic, [Message(b"same")]) == set()

    assert texts_of(await pull_now(deduping, route.subscription)) == ["same"] * 3


async def test_one_key_on_two_topics_is_published_on_both(deduping: Broker, route: Route) -> None:
    other = Route(unique("topic"), unique("sub"))
    await deduping.ensure_subscription(other.topic, other.subscription)

    assert await deduping.publish(route.topic, [keyed("here", "k1")]) == set()
    assert await deduping.publish(other.topic, [keyed("there", "k1")]) == set()

    assert texts_of(await pull_now(deduping, route.subscription)) == ["here"]
    assert texts_of(await pull_now(deduping, other.subscription)) == ["there"]


async def test_concurrent_publishes_of_the_same_keys_deliver_each_key_once(
    deduping: Broker, route: Route
) -> None:
    keys = [f"k{i}" for i in range(10)]
    batches = [keys[i:] + keys[:i] for i in range(0, 10, 2)]  # each in another order

    dropped = await asyncio.gather(
        *(deduping.publish(route.topic, [keyed(key, key) for key in batch]) for batch in batches)
    )

    received = await pull_all(deduping, route.subscription, batch=100)
    assert sorted(texts_of(received)) == keys
    assert sorted(key for keys_dropped in dropped for key in keys_dropped) == sorted(keys * 4)


async def test_a_key_is_published_again_once_the_dedupe_window_passed(
    broker_backend: BrokerBackend, tmp_path: Path
) -> None:
    if broker_backend.open_with_dedupe_window is None:
        pytest.skip("this broker does not dedupe publishes")
    async with broker_backend.open_with_dedupe_window(tmp_path, SHORT_DEDUPE_WINDOW) as broker:
        topic, subscription = unique("topic"), unique("sub")
        await broker.ensure_subscription(topic, subscription)
        await broker.publish(topic, [keyed("first", "k1")])
        assert await broker.publish(topic, [keyed("copy", "k1")]) == {"k1"}

        await asyncio.sleep(SHORT_DEDUPE_WINDOW * 1.5)

        assert await broker.publish(topic, [keyed("later", "k1")]) == set()
        assert await broker.publish(topic, [keyed("copy of later", "k1")]) == {"k1"}
        assert texts_of(await pull_now(broker, subscription)) == ["first", "later"]


async def test_a_broker_that_cannot_dedupe_delivers_every_copy_and_drops_no_key(
    broker: Broker, route: Route
) -> None:
    if broker.dedupes_publish:
        pytest.skip("this broker dedupes publishes")

    assert await broker.publish(route.topic, [keyed("first", "k1"), keyed("copy", "k1")]) == set()
    assert await broker.publish(route.topic, [keyed("again", "k1")]) == set()

    received = await pull_all(broker, route.subscription, batch=10)
    assert sorted(texts_of(received)) == ["again", "copy", "first"]


# Concurrency


async def test_concurrent_pullers_never_receive_one_leased_message_twice(
    broker: Broker, route: Route
) -> None:
    expected = [str(i) for i in range(300)]
    await publish_texts(broker, route.topic, expected)

    async def consume() -> list[str]:
        received: list[str] = []
        while deliveries := await broker.pull(route.subscription, 7, lease=LONG_LEASE, wait=0.2):
            received.extend(texts_of(deliveries))
            await asyncio.sleep(0)
        return received

    per_puller = await asyncio.gather(*(consume() for _ in range(5)))

    everything = [text for received in per_puller for text in received]
    assert sorted(everything, key=int) == expected


# Subscriptions and input checks


async def test_ensure_subscription_is_idempotent(broker: Broker, route: Route) -> None:
    await broker.ensure_subscription(route.topic, route.subscription)

    await publish_texts(broker, route.topic, ["single"])

    assert texts_of(await pull_now(broker, route.subscription)) == ["single"]


async def test_a_dropped_subscription_loses_its_messages_and_receives_no_more(
    broker: Broker, route: Route
) -> None:
    survivor = unique("sub")
    await broker.ensure_subscription(route.topic, survivor)
    await publish_texts(broker, route.topic, ["before"])

    await broker.drop_subscription(route.subscription)
    await broker.drop_subscription(route.subscription)  # idempotent
    await publish_texts(broker, route.topic, ["after"])

    assert texts_of(await pull_now(broker, survivor)) == ["before", "after"]
    await broker.ensure_subscription(route.topic, route.subscription)
    assert await pull_now(broker, route.subscription) == []


async def test_a_subscription_cannot_move_to_another_topic(broker: Broker, route: Route) -> None:
    with pytest.raises(Conflict):
        await broker.ensure_subscription(unique("topic"), route.subscription)


async def test_pull_from_an_unknown_subscription_raises_a_broker_error(broker: Broker) -> None:
    with pytest.raises(BrokerError):
        await broker.pull(unique("sub"), 1, lease=LONG_LEASE, wait=0)


@pytest.mark.parametrize("bad_name", ["", "9starts-with-digit", "has space", "x" * 201, "a/b"])
async def test_invalid_names_are_rejected(broker: Broker, bad_name: str) -> None:
    with pytest.raises(InvalidInput):
        await broker.ensure_subscription(bad_name, "sub")
    with pytest.raises(InvalidInput):
        await broker.ensure_subscription("topic", bad_name)
    with pytest.raises(InvalidInput):
        await broker.publish(bad_name, [Message(b"x")])
    with pytest.raises(InvalidInput):
        await broker.pull(bad_name, 1, lease=LONG_LEASE, wait=0)


@pytest.mark.parametrize(
    ("max_messages", "lease", "wait"), [(0, LONG_LEASE, 0.0), (1, 0.0, 0.0), (1, LONG_LEASE, -1.0)]
)
async def test_pull_rejects_arguments_out_of_range(
    broker: Broker, route: Route, max_messages: int, lease: float, wait: float
) -> None:
    with pytest.raises(InvalidInput):
        await broker.pull(route.subscription, max_messages, lease=lease, wait=wait)


async def test_a_receipt_this_broker_did_not_issue_is_rejected(
    broker: Broker, route: Route
) -> None:
    with pytest.raises(InvalidInput):
        await broker.ack(route.subscription, ["not a receipt"])
