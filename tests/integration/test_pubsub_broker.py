"""What the Pub/Sub broker does beyond the broker contract, on the emulator: dead letters,
ordering keys, leases longer than Pub/Sub's longest ack deadline, and exactly-once refusals
of acks and extensions that came too late."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

import pytest

from sublim.broker.base import Message
from sublim.config import Settings
from sublim.core.backends import broker_from_url
from sublim.errors import InvalidInput
from tests.gcp_emulators import require_pubsub_emulator

pytest.importorskip("google.cloud.pubsub_v1")

from sublim.broker import pubsub
from sublim.broker.pubsub import PubSubBroker, parse_url

LONG_LEASE = 30.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def project() -> str:
    require_pubsub_emulator()
    return unique("it")


async def opened(url: str) -> PubSubBroker:
    broker = PubSubBroker.from_url(url)
    await broker.open()
    return broker


@pytest.fixture
async def broker(project: str) -> AsyncIterator[PubSubBroker]:
    opened_broker = await opened(f"pubsub://{project}?max_deliveries=5&ordered_topics=Updates")
    yield opened_broker
    await opened_broker.close()


async def route(broker: PubSubBroker, topic: str | None = None) -> tuple[str, str]:
    names = (topic or unique("topic"), unique("sub"))
    await broker.ensure_subscription(*names)
    return names


# URLs


def test_url_options_are_parsed_and_checked() -> None:
    options = parse_url("pubsub://my-project?max_deliveries=7&ack_deadline=60&ordered_topics=A,B")
    assert (options.project, options.max_deliveries, options.ack_deadline) == ("my-project", 7, 60)
    assert options.ordered_topics == {"A", "B"}
    assert parse_url("pubsub://p").ordered_topics == {"TaskExecutionUpdates"}


def test_a_broker_built_from_settings_orders_the_configured_updates_topic() -> None:
    settings = Settings(updates_topic="MyUpdates", broker_url="pubsub://p")
    broker = broker_from_url(settings.broker_url, settings)
    assert isinstance(broker, PubSubBroker)
    assert broker.options.ordered_topics == {"MyUpdates"}
    named = broker_from_url("pubsub://p?ordered_topics=A", settings)
    assert isinstance(named, PubSubBroker)
    assert named.options.ordered_topics == {"A"}


@pytest.mark.parametrize(
    "url",
    ["pubsub://", "pubsub://p?max_deliveries=4", "pubsub://p?ack_deadline=601", "pubsub://p?x=1"],
)
def test_bad_urls_are_rejected(url: str) -> None:
    with pytest.raises(InvalidInput):
        parse_url(url)


# Dead letters


async def test_a_message_delivered_max_deliveries_times_goes_to_the_dead_letter_topic(
    broker: PubSubBroker,
) -> None:
    topic, subscription = await route(broker)
    await broker.publish(topic, [Message(b"poison", {"kind": "test"})])

    for expected in range(1, 6):
        [delivery] = await broker.pull(subscription, 1, lease=LONG_LEASE, wait=5.0)
        assert delivery.deliveries == expected
        await broker.nack(subscription, [delivery.receipt])

    assert await broker.pull(subscription, 1, lease=LONG_LEASE, wait=1.0) == []
    [letter] = await broker.pull(f"{subscription}-dlq", 1, lease=LONG_LEASE, wait=5.0)
    assert (letter.data, letter.attributes["kind"]) == (b"poison", "test")
    assert letter.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"


async def test_dropping_a_subscription_removes_its_dead_letters_too(
    broker: PubSubBroker,
) -> None:
    _, subscription = await route(broker)

    await broker.drop_subscription(subscription)

    for name in (subscription, f"{subscription}-dlq"):
        with pytest.raises(Exception, match="no subscription"):
            await broker.pull(name, 1, lease=LONG_LEASE, wait=0)


# Ordering


async def test_messages_of_one_order_on_an_ordered_topic_arrive_in_publish_order(
    broker: PubSubBroker,
) -> None:
    topic, subscription = await route(broker, topic="Updates")  # ordered (see the URL)
    sent = [
        Message(f"{execution}:{seq}".encode(), order=execution)
        for seq in range(20)
        for execution in ("a", "b", "c")
    ]
    await broker.publish(topic, sent)

    received: list[str] = []
    while deliveries := await broker.pull(subscription, 7, lease=LONG_LEASE, wait=1.0):
        received.extend(d.data.decode() for d in deliveries)
        await broker.ack(subscription, [d.receipt for d in deliveries])

    for execution in ("a", "b", "c"):
        mine = [text for text in received if text.startswith(f"{execution}:")]
        assert mine == [f"{execution}:{seq}" for seq in range(20)]


# Leases past Pub/Sub's longest ack deadline


async def test_a_lease_longer_than_the_longest_ack_deadline_is_renewed_until_it_passes(
    broker: PubSubBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pubsub, "MAX_ACK_DEADLINE", 2)  # 600 s, scaled down to 2 s
    topic, subscription = await route(broker)
    await broker.publish(topic, [Message(b"long task")])
    [first] = await broker.pull(subscription, 1, lease=6.0, wait=0)

    assert await broker.pull(subscription, 1, lease=LONG_LEASE, wait=4.5) == []
    [again] = await broker.pull(subscription, 1, lease=LONG_LEASE, wait=5.0)
    assert (again.message_id, again.deliveries) == (first.message_id, 2)


async def test_extend_keeps_a_long_running_delivery_past_the_longest_ack_deadline(
    broker: PubSubBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pubsub, "MAX_ACK_DEADLINE", 1)
    topic, subscription = await route(broker)
    await broker.publish(topic, [Message(b"heartbeating")])
    [delivery] = await broker.pull(subscription, 1, lease=3.0, wait=0)

    for _ in range(4):  # an executor's heartbeats: extend by the lease, every second
        assert await broker.extend(subscription, [delivery.receipt], lease=3.0) == set()
        assert await broker.pull(subscription, 1, lease=LONG_LEASE, wait=1.0) == []
    await broker.ack(subscription, [delivery.receipt])
    assert await broker.pull(subscription, 1, lease=LONG_LEASE, wait=4.0) == []


# Exactly-once refusals


async def redelivered_behind_our_back(project: str) -> tuple[PubSubBroker, str, str]:
    """A delivery this broker still holds, whose ack id Pub/Sub no longer honours: another
    process released it and received it again (as after a stall past the ack deadline)."""
    broker, other = await opened(f"pubsub://{project}"), await opened(f"pubsub://{project}")
    topic, subscription = await route(broker)
    await broker.publish(topic, [Message(b"contested")])
    [mine] = await broker.pull(subscription, 1, lease=LONG_LEASE, wait=0)
    handle = broker._leases.get(mine.receipt)
    assert handle is not None
    await other._modack_handles([handle], 0)  # as if our deadline had passed
    [theirs] = await other.pull(subscription, 1, lease=LONG_LEASE, wait=5.0)
    assert theirs.deliveries == 2
    await other.close()
    return broker, subscription, mine.receipt


async def test_an_ack_refused_by_exactly_once_delivery_is_logged(
    project: str, caplog: pytest.LogCaptureFixture
) -> None:
    broker, subscription, receipt = await redelivered_behind_our_back(project)
    try:
        with caplog.at_level(logging.WARNING, logger="sublim.broker.pubsub"):
            await broker.ack(subscription, [receipt])
    finally:
        await broker.close()
    assert "PERMANENT_FAILURE_INVALID_ACK_ID" in caplog.text
    assert "will be delivered again" in caplog.text


async def test_an_extension_refused_by_exactly_once_delivery_reports_the_lease_lost(
    project: str,
) -> None:
    broker, subscription, receipt = await redelivered_behind_our_back(project)
    try:
        assert await broker.extend(subscription, [receipt], lease=LONG_LEASE) == {receipt}
        assert await broker.extend(subscription, [receipt], lease=LONG_LEASE) == {receipt}
    finally:
        await broker.close()


async def test_closing_forgets_leases_and_pubsub_redelivers_at_its_deadline(
    project: str,
) -> None:
    broker = await opened(f"pubsub://{project}")
    topic, subscription = await route(broker)
    await broker.publish(topic, [Message(b"held by a closing broker")])
    await broker.pull(subscription, 1, lease=2.0, wait=0)
    await broker.close()

    reopened = await opened(f"pubsub://{project}")
    try:
        [again] = await reopened.pull(subscription, 1, lease=LONG_LEASE, wait=5.0)
        assert again.deliveries == 2
    finally:
        await reopened.close()
