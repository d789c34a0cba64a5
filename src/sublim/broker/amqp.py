"""The RabbitMQ broker: `amqp://user:password@host:port/vhost` (`pip install 'sublim[amqp]'`).

A topic is a fanout exchange, a subscription a durable quorum queue bound to it (the layout is
in `_amqp_layout`). Publishing waits for publisher confirms of the whole batch. Pulling is
pull-based on top of AMQP (docs/decisions/013-amqp-pull.md): `wait=0` takes what is ready with
`basic.get`; a waiting pull starts a consumer whose prefetch is the number of messages asked
for, returns once the first one comes, and cancels it.

Leases are kept in this process: each delivery gets a deadline, and when it passes without an
ack the message is nacked back to the queue, where RabbitMQ counts one more delivery. A lost
channel or connection requeues everything it held on the broker's side, and the receipts of
that channel become stale. A nack with a delay goes through a delay queue (TTL, then
dead-lettered back), carrying the deliveries so far in a header.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aiormq.abc import DeliveredMessage

from sublim.broker import _shared as shared
from sublim.broker._amqp_layout import (
    DEFAULT_DELIVERY_LIMIT,
    DELAY_QUEUE_REDECLARE_SECONDS,
    PRIOR_DELIVERIES_HEADER,
    AmqpOptions,
    attributes_of,
    check_amqp_name,
    dead_letter_exchange,
    dead_letter_queue,
    dead_letter_queue_arguments,
    delay_bucket_ms,
    delay_queue,
    delay_queue_arguments,
    deliveries_of,
    parse_amqp_url,
    subscription_arguments,
    topic_in_conflict,
)
from sublim.broker._base import BaseBroker, not_open
from sublim.broker._leases import LeaseTable, spawn
from sublim.broker._shared import Claim, Signal, make_receipt, parse_receipt
from sublim.broker.base import EPHEMERAL_IDLE_SECONDS, Delivery, Message
from sublim.config import Settings
from sublim.errors import BrokerError, Conflict

log = logging.getLogger(__name__)

T = TypeVar("T")

#: What an engine outage looks like to aio-pika: the operation may succeed once reconnected.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelInvalidStateError,
    aio_pika.exceptions.ChannelClosed,
    asyncio.TimeoutError,
)
#: Settling (ack, nack) a message whose channel is gone fails with these: it was requeued.
_SETTLE_ERRORS = (*OUTAGE_ERRORS, RuntimeError, aiormq.exceptions.AMQPError)
_RETRY_PAUSE = 0.2


def _outgoing(message: Message) -> aio_pika.Message:
    return aio_pika.Message(
        bytes(message.data),
        headers=dict(message.attributes),
        message_id=uuid.uuid4().hex,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


def _delayed_copy(message: AbstractIncomingMessage, deliveries: int) -> aio_pika.Message:
    """The message again, for a delay queue, remembering how often it was delivered."""
    headers: dict[str, Any] = attributes_of(message.headers)
    headers[PRIOR_DELIVERIES_HEADER] = deliveries
    return aio_pika.Message(
        message.body,
        headers=headers,
        message_id=message.message_id,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


def _channel_open(message: AbstractIncomingMessage) -> bool:
    """Whether the channel a message came on is still open (aio-pika raises once it is not)."""
    try:
        return not message.channel.is_closed
    except aiormq.exceptions.ChannelInvalidStateError:
        return False


async def _settle(operation: Awaitable[object]) -> None:
    """Ack or nack; a channel that is gone requeued the message already, so errors are moot."""
    with contextlib.suppress(*_SETTLE_ERRORS):
        await operation


async def _open_channel(
    connection: AbstractRobustConnection, *, confirms: bool = False
) -> AbstractChannel:
    """A plain (not self-restoring) channel: after an outage its deliveries must go stale."""
    channel = aio_pika.Channel(connection, publisher_confirms=confirms)
    try:
        await channel.initialize()
    except RuntimeError as exc:  # aiormq: "<Connection …> closed", the connection just dropped
        raise ConnectionError(f"cannot open a channel: {exc}") from exc
    return channel


async def _close_quietly(channel: AbstractChannel | None) -> None:
    if channel is not None and not channel.is_closed:
        with contextlib.suppress(*_SETTLE_ERRORS):
            await channel.close()


# Leases


@dataclass(frozen=True, slots=True)
class _Held:
    """A delivery handed out under a lease, until it is settled or its lease passes."""

    subscription: str
    message: AbstractIncomingMessage
    deliveries: int

    def alive(self) -> bool:
        """False once its channel closed: RabbitMQ requeued the message then."""
        return _channel_open(self.message)


# Pulling from one subscription


@dataclass(eq=False)
class _Subscriber:
    """Pulls from one subscription over a channel of its own (acks go back on it)."""

    connection: AbstractRobustConnection
    name: str
    #: Delivered to a consumer of this process and not handed out yet.
    inbox: deque[AbstractIncomingMessage] = field(default_factory=deque)
    signal: Signal = field(default_factory=Signal)
    _channel: AbstractChannel | None = None
    _queue: AbstractQueue | None = None
    _consume_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def queue(self) -> AbstractQueue:
        """The subscription's queue on a live channel; `BrokerError` if it does not exist."""
        if self._queue is None or self._channel is None or self._channel.is_closed:
            self._channel, self._queue = await self._open_queue()
        return self._queue

    async def _open_queue(self) -> tuple[AbstractChannel, AbstractQueue]:
        channel = await _open_channel(self.connection)
        try:
            return channel, await channel.declare_queue(self.name, passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity:
            raise BrokerError(f"no subscription named {self.name!r}") from None

    def take(self, max_messages: int) -> list[AbstractIncomingMessage]:
        """Up to `max_messages` from the inbox, skipping those of a channel that closed."""
        taken: list[AbstractIncomingMessage] = []
        while self.inbox and len(taken) < max_messages:
            message = self.inbox.popleft()
            if _channel_open(message):
                taken.append(message)
        return taken

    async def get_ready(self, max_messages: int) -> list[AbstractIncomingMessage]:
        """What is ready now, with `basic.get`, in queue order."""
        queue = await self.queue()
        got = self.take(max_messages)
        while len(got) < max_messages:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            got.append(message)
        return got

    @contextlib.asynccontextmanager
    async def consumer(self, prefetch: int) -> AsyncIterator[None]:
        """A consumer that delivers at most `prefetch` messages into the inbox; cancelled on
        exit, after which everything it was sent is in the inbox."""
        queue = await self.queue()
        underlay = await queue.channel.get_underlay_channel()
        async with self._consume_lock:  # qos applies to the next consumer of the channel
            await underlay.basic_qos(prefetch_count=prefetch)
            started = await underlay.basic_consume(self.name, self._deliver)
        try:
            yield
        finally:
            await _settle(underlay.basic_cancel(str(started.consumer_tag)))

    def check_consuming(self) -> None:
        """A consumer of a channel that closed (an outage) will never deliver."""
        if self._channel is None or self._channel.is_closed:
            raise ConnectionError(f"the channel of subscription {self.name!r} closed")

    async def _deliver(self, delivered: DeliveredMessage) -> None:
        self.inbox.append(aio_pika.IncomingMessage(delivered, no_ack=False))
        self.signal.notify()

    async def close(self) -> None:
        self.inbox.clear()
        await _close_quietly(self._channel)
        self._channel = self._queue = None


# The broker


#: RabbitMQ's `max_message_size` is 16 MiB by default since 4.0 (128 MiB on 3.x) and no client
#: can read it; a larger message closes the publishing channel, failing its whole batch.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class AmqpBroker(BaseBroker):
    """Topics and subscriptions on RabbitMQ, over one robust connection."""

    dedupes_publish = False
    max_message_bytes = MAX_MESSAGE_BYTES

    #: The common name rule, and no `amq.` prefix, which RabbitMQ reserves.
    _check_name = staticmethod(check_amqp_name)

    def __init__(self, options: AmqpOptions) -> None:
        self._options = options
        self._connection: AbstractRobustConnection | None = None
        self._publisher: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._delay_queues: dict[str, float] = {}  # name -> when it was declared
        self._subscribers: dict[str, _Subscriber] = {}
        #: The deliveries this process holds: RabbitMQ has no deadline of its own (a message
        #: stays with its channel until settled), so a lease that passes requeues it.
        self._leases: LeaseTable[_Held] = LeaseTable(self._requeue_now)
        self._requeues: set[asyncio.Task[None]] = set()
        self._open_lock = asyncio.Lock()

    @classmethod
    def from_url(cls, url: str, settings: Settings | None = None) -> AmqpBroker:
        """The broker of `url`; its `delivery_limit` defaults to the settings'
        `broker_max_deliveries` when they set it."""
        limit = None if settings is None else settings.broker_max_deliveries
        return cls(parse_amqp_url(url, limit or DEFAULT_DELIVERY_LIMIT))

    # Connection

    async def _open(self) -> None:
        async with self._open_lock:
            if self._connection is None:
                self._connection = await self._connect()

    async def _connect(self) -> AbstractRobustConnection:
        try:
            connection = await aio_pika.connect_robust(
                self._options.url, reconnect_interval=self._options.reconnect_interval
            )
        except (OSError, aiormq.exceptions.AMQPError) as exc:
            raise BrokerError(f"cannot connect to RabbitMQ: {exc}") from exc
        connection.close_callbacks.add(self._on_connection_lost)
        connection.reconnect_callbacks.add(self._on_reconnected)
        return connection

    def _on_connection_lost(self, _connection: object, exc: BaseException | None) -> None:
        if self._connection is None:  # closed on purpose
            return
        if exc is not None:
            log.warning(
                "RabbitMQ connection lost (%s); reconnecting every %.1f s; "
                "unacked deliveries go back to their queues",
                exc,
                self._options.reconnect_interval,
            )
        for subscriber in self._subscribers.values():
            subscriber.signal.notify()  # waiting pulls stop waiting on a dead consumer

    def _on_reconnected(self, _connection: object) -> None:
        log.warning("RabbitMQ connection restored")

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        self._leases.forget_all()
        for subscriber in self._subscribers.values():
            await subscriber.close()
        self._subscribers.clear()
        self._exchanges.clear()
        self._delay_queues.clear()
        self._publisher = None
        await connection.close()

    def _connected(self) -> AbstractRobustConnection:
        if self._connection is None:
            raise not_open()
        return self._connection

    async def _through_outages(self, what: str, operation: Callable[[], Awaitable[T]]) -> T:
        """Run `operation`, again after a reconnection if the engine was unreachable, for up
        to `outage_timeout` seconds."""
        deadline = time.monotonic() + self._options.outage_timeout
        while True:
            try:
                return await operation()
            except OUTAGE_ERRORS as exc:
                if time.monotonic() >= deadline:
                    raise BrokerError(f"RabbitMQ unreachable during {what}: {exc!r}") from exc
                log.info("%s: RabbitMQ unreachable (%r); retrying once reconnected", what, exc)
                await self._reconnected(deadline)

    async def _reconnected(self, deadline: float) -> None:
        await asyncio.sleep(_RETRY_PAUSE)  # let the connection notice it is lost
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await self._connected().connected.wait()

    # Topology

    async def _ensure_subscription(self, topic: str, subscription: str, ephemeral: bool) -> str:
        """An ephemeral subscription's queue expires (`x-expires`) once unused for
        `EPHEMERAL_IDLE_SECONDS`."""
        return await self._through_outages(
            "ensure_subscription",
            lambda: self._declare_subscription(topic, subscription, ephemeral),
        )

    async def _declare_subscription(self, topic: str, subscription: str, ephemeral: bool) -> str:
        """The topic of the subscription: another one when its queue is bound to that."""
        async with self._temporary_channel() as channel:
            queue = await self._declare_subscription_queue(channel, topic, subscription, ephemeral)
            if isinstance(queue, str):
                return queue
            exchange = await channel.declare_exchange(
                topic, aio_pika.ExchangeType.FANOUT, durable=True
            )
            await queue.bind(exchange)
            await self._declare_dead_letters(channel, topic, subscription)
        return topic

    async def _declare_subscription_queue(
        self, channel: AbstractChannel, topic: str, subscription: str, ephemeral: bool
    ) -> AbstractQueue | str:
        """The queue, or the topic it is bound to when that is another one."""
        arguments = subscription_arguments(topic, subscription, self._options.delivery_limit)
        if ephemeral:
            arguments["x-expires"] = int(EPHEMERAL_IDLE_SECONDS * 1000)
        try:
            return await channel.declare_queue(subscription, durable=True, arguments=arguments)
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            other_topic = topic_in_conflict(str(exc))
            if other_topic is None:
                message = f"subscription {subscription!r} exists with other settings: {exc}"
                raise Conflict(message) from exc
            return other_topic

    async def _declare_dead_letters(
        self, channel: AbstractChannel, topic: str, subscription: str
    ) -> None:
        exchange = await channel.declare_exchange(
            dead_letter_exchange(topic), aio_pika.ExchangeType.DIRECT, durable=True
        )
        queue = await channel.declare_queue(
            dead_letter_queue(subscription), durable=True, arguments=dead_letter_queue_arguments()
        )
        await queue.bind(exchange, routing_key=subscription)

    @contextlib.asynccontextmanager
    async def _temporary_channel(self) -> AsyncIterator[AbstractChannel]:
        """A channel for declarations, which RabbitMQ closes on a failed one."""
        channel = await _open_channel(self._connected())
        try:
            yield channel
        finally:
            await _close_quietly(channel)

    async def _drop_subscription(self, subscription: str) -> None:
        """Delete a subscription's queue, its dead letters and this process's delay queues;
        nothing if they do not exist."""
        await self._through_outages("drop_subscription", lambda: self._drop(subscription))

    async def _drop(self, subscription: str) -> None:
        delays = [name for name in self._delay_queues if name.startswith(f"{subscription}.")]
        async with self._temporary_channel() as channel:
            for name in [subscription, dead_letter_queue(subscription), *delays]:
                await channel.queue_delete(name)
                self._delay_queues.pop(name, None)
        subscriber = self._subscribers.pop(subscription, None)
        if subscriber is not None:
            await subscriber.close()

    async def delete_topic(self, topic: str) -> None:
        """Delete a topic's exchange and its dead-letter exchange."""
        async with self._temporary_channel() as channel:
            for name in [topic, dead_letter_exchange(topic)]:
                await channel.exchange_delete(name)
        self._exchanges.pop(topic, None)

    # Publishing

    async def _publish(self, topic: str, messages: Sequence[Message]) -> set[str]:
        outgoing = [_outgoing(message) for message in messages]
        await self._through_outages("publish", lambda: self._send(topic, outgoing))
        return set()

    async def _send(self, topic: str, messages: Sequence[aio_pika.Message]) -> None:
        """Send the whole batch, then wait for all its confirms."""
        exchange = await self._exchange(topic)
        await asyncio.gather(*(exchange.publish(m, routing_key="") for m in messages))

    async def _exchange(self, topic: str) -> AbstractExchange:
        """The topic's exchange on the publishing channel, declared once per channel."""
        channel = await self._publishing_channel()
        exchange = self._exchanges.get(topic)
        if exchange is None:
            exchange = await channel.declare_exchange(
                topic, aio_pika.ExchangeType.FANOUT, durable=True
            )
            self._exchanges[topic] = exchange
        return exchange

    async def _publishing_channel(self) -> AbstractChannel:
        """The channel with publisher confirms; its exchanges are declared again on a new one."""
        if self._publisher is None or self._publisher.is_closed:
            self._exchanges.clear()
            self._publisher = await _open_channel(self._connected(), confirms=True)
        return self._publisher

    # Pulling

    async def _pull(
        self, subscription: str, max_messages: int, lease: float, wait: float
    ) -> list[Delivery]:
        subscriber = self._subscriber(subscription)
        try:
            if wait <= 0:
                return self._hand_out(subscriber, await subscriber.get_ready(max_messages), lease)
            return await self._pull_waiting(subscriber, max_messages, lease, wait)
        except OUTAGE_ERRORS as exc:
            return await self._pulled_nothing(subscription, exc, wait)

    async def _pull_waiting(
        self, subscriber: _Subscriber, max_messages: int, lease: float, wait: float
    ) -> list[Delivery]:
        async def claim() -> Claim:
            subscriber.check_consuming()
            return Claim(self._hand_out(subscriber, subscriber.take(max_messages), lease))

        async with subscriber.consumer(prefetch=max_messages):
            found = await shared.pull_waiting(subscriber.signal, claim, wait=wait)
        more = subscriber.take(max_messages - len(found))  # sent before the cancel took effect
        return found + self._hand_out(subscriber, more, lease)

    async def _pulled_nothing(
        self, subscription: str, exc: BaseException, wait: float
    ) -> list[Delivery]:
        """During an outage a pull waits (up to `wait`) for the connection and finds nothing."""
        log.info("pull from %s: RabbitMQ unreachable (%r)", subscription, exc)
        await self._reconnected(time.monotonic() + wait)
        return []

    def _subscriber(self, subscription: str) -> _Subscriber:
        subscriber = self._subscribers.get(subscription)
        if subscriber is None:
            subscriber = _Subscriber(self._connected(), subscription)
            self._subscribers[subscription] = subscriber
        return subscriber

    def _hand_out(
        self, subscriber: _Subscriber, messages: list[AbstractIncomingMessage], lease: float
    ) -> list[Delivery]:
        return [self._delivery(subscriber.name, message, lease) for message in messages]

    def _delivery(
        self, subscription: str, message: AbstractIncomingMessage, lease: float
    ) -> Delivery:
        deliveries = deliveries_of(message.headers)
        receipt = make_receipt(message.message_id or "", shared.new_lease_token())
        self._leases.hold(receipt, _Held(subscription, message, deliveries), lease=lease)
        return Delivery(
            receipt=receipt,
            message_id=message.message_id or "",
            data=message.body,
            attributes=attributes_of(message.headers),
            deliveries=deliveries,
        )

    # Settling

    async def _ack(self, subscription: str, receipts: Sequence[str]) -> None:
        for held in self._take(subscription, receipts):
            await _settle(held.message.ack())

    async def _nack(self, subscription: str, receipts: Sequence[str], delay: float) -> None:
        for held in self._take(subscription, receipts):
            if delay > 0:
                await self._nack_later(held, delay)
            else:
                await _settle(held.message.nack(requeue=True))

    async def _nack_later(self, held: _Held, delay: float) -> None:
        """Send a copy through a delay queue, then ack the original (a crash in between
        delivers it twice, never zero times)."""
        delay_ms = delay_bucket_ms(delay)
        copy = _delayed_copy(held.message, held.deliveries)
        await self._through_outages(
            "nack", lambda: self._send_to_delay_queue(held.subscription, delay_ms, copy)
        )
        await _settle(held.message.ack())

    async def _send_to_delay_queue(
        self, subscription: str, delay_ms: int, copy: aio_pika.Message
    ) -> None:
        name = await self._declare_delay_queue(subscription, delay_ms)
        channel = await self._publishing_channel()
        await channel.default_exchange.publish(copy, routing_key=name)

    async def _declare_delay_queue(self, subscription: str, delay_ms: int) -> str:
        """Declared again now and then: a declaration keeps it from expiring."""
        name = delay_queue(subscription, delay_ms)
        declared_at = self._delay_queues.get(name, -DELAY_QUEUE_REDECLARE_SECONDS)
        if time.monotonic() - declared_at >= DELAY_QUEUE_REDECLARE_SECONDS:
            arguments = delay_queue_arguments(subscription, delay_ms)
            async with self._temporary_channel() as channel:
                await channel.declare_queue(name, durable=True, arguments=arguments)
            self._delay_queues[name] = time.monotonic()
        return name

    async def _extend(self, subscription: str, receipts: Sequence[str], lease: float) -> set[str]:
        """Push the deadlines further; returns the receipts no longer held."""
        held = {r for r in receipts if self._live(subscription, r) is not None}
        for receipt in held:
            self._leases.extend(receipt, lease=lease)
        return set(receipts) - held

    # Leases

    def _take(self, subscription: str, receipts: Sequence[str]) -> list[_Held]:
        """Release the receipts still held (stale ones are ignored) to be settled."""
        live = [r for r in receipts if self._live(subscription, r) is not None]
        return [held for held in map(self._leases.take, live) if held is not None]

    def _live(self, subscription: str, receipt: str) -> _Held | None:
        """What a receipt holds, unless it is stale: not held, of another subscription, or
        of a channel that closed (which requeued its message)."""
        parse_receipt(receipt)  # InvalidInput for what this broker did not issue
        held = self._leases.get(receipt)
        if held is None or held.subscription != subscription:
            return None
        if not held.alive():
            self._leases.take(receipt)
            return None
        return held

    def _requeue_now(self, held: _Held) -> None:
        """A lease passed: the message goes back to its queue (unless its channel did)."""
        if held.alive():
            spawn(self._requeues, _settle(held.message.nack(requeue=True)))
