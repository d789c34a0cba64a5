"""The NATS JetStream broker: `nats://host:port?prefix=sublim&max_deliveries=N&dedupe_window=S`.

Layout (docs/decisions/015-nats-layout.md): one stream per topic, on the single subject
`<prefix>.topic.<topic>`, with interest retention; one durable pull consumer per subscription
(deliver policy "new", explicit acks). Publishing is one JetStream publish, so fan-out is
atomic and done by the server; a message is removed once every subscription acked it; a
topic without subscriptions has no stream, and its messages are dropped. Which stream holds a
subscription's consumer is kept in the key-value bucket `<prefix>_subscriptions`.

Leases: the consumer's AckWait follows the lease of the first pull of each broker, and a
`LeaseTable` makes each delivery's own lease exact while this process lives: JetStream
redelivers a message AckWait after its delivery or its last in-progress ack, so while a lease
runs an in-progress ack goes out every third of AckWait (so a lease longer than AckWait
holds), and when it passes the message is nakked (so a lease shorter than AckWait ends on
time). If the process dies, the timers die with it and JetStream redelivers within AckWait.
JetStream accepts an ack even from a delivery whose message was handed out again since, so a
receipt is honoured only while this process holds its delivery. Pulls are JetStream pull requests on
a private inbox: a no-wait request for what is there, else one waiting request for the first
message, woken by the server. `Message.key` becomes `Nats-Msg-Id`, de-duplicated by the stream
within its `duplicate_window`, which `ensure_subscription` sets to the broker's `dedupe_window`
(updating a stream created with another one); a PubAck marked `duplicate` names a dropped key.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar
from urllib.parse import urlsplit

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.kv import KeyValue

from sublim.broker import _shared as shared
from sublim.broker._base import BaseBroker, not_open
from sublim.broker._leases import KeptLease, LeaseTable, spawn
from sublim.broker._shared import Claim, make_receipt, parse_receipt
from sublim.broker.base import (
    DEFAULT_DEDUPE_WINDOW_SECONDS,
    ENVELOPE_RESERVE_BYTES,
    Delivery,
    Message,
)
from sublim.config import Settings
from sublim.errors import BrokerError, InvalidInput

log = logging.getLogger("sublim.broker.nats")

T = TypeVar("T")

DEFAULT_PREFIX = "sublim"
#: The AckWait of a new consumer, until the first pull sets it to its lease.
DEFAULT_ACK_WAIT = 30.0
#: How long to wait for JetStream's answer beyond a request's own expiry.
REPLY_TIMEOUT = 5
ATTRIBUTES_HEADER = "Sublim-Attributes"
MESSAGE_ID_HEADER = "Nats-Msg-Id"
#: Pull-request statuses that end a request: no messages, request expired, and 409s such as
#: "Exceeded MaxWaiting" or "Leadership Change" (the next pull asks again).
_END_STATUSES = {"404", "408", "409"}
_HEARTBEAT_STATUS = "100"
#: JetStream's answer to creating a stream that exists with another configuration.
_STREAM_NAME_IN_USE = 10058
_PREFIX = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class NatsOptions:
    """The broker's own options, taken out of the URL's query."""

    url: str
    prefix: str = DEFAULT_PREFIX
    #: Deliveries after which a message goes to the dead-letter stream; None: never.
    max_deliveries: int | None = None
    #: Seconds a published key is remembered: the `duplicate_window` of the topics' streams.
    dedupe_window: float = DEFAULT_DEDUPE_WINDOW_SECONDS

    def __post_init__(self) -> None:
        shared.check_dedupe_window(self.dedupe_window)


def parse_url(url: str, max_deliveries: int | None = None) -> NatsOptions:
    """`prefix`, `max_deliveries` (by default `max_deliveries`) and `dedupe_window`; no
    other option (nats-py reads none)."""
    options = shared.UrlOptions(url, "NATS")
    prefix = options.take("prefix", _prefix, DEFAULT_PREFIX)
    max_deliveries = options.take("max_deliveries", _max_deliveries, max_deliveries)
    dedupe_window = shared.take_dedupe_window(options)
    return NatsOptions(options.refuse_the_rest(), prefix, max_deliveries, dedupe_window)


def _prefix(prefix: str) -> str:
    if not _PREFIX.match(prefix):
        raise InvalidInput(f"invalid NATS prefix {prefix!r}: letters, digits, '_' or '-'")
    return prefix


def _max_deliveries(value: str) -> int | None:
    """An empty value is no limit, as when the option is absent."""
    return int(value) if value else None


def _name_token(name: str) -> str:
    """A topic or subscription name as a stream or consumer name, which cannot hold '.'
    ('~' cannot appear in our names, so this is one-to-one)."""
    return name.replace(".", "~")


@dataclass(frozen=True, slots=True)
class Route:
    """Where a subscription's messages are: its topic's stream and its durable consumer."""

    stream: str
    consumer: str

    @property
    def next_subject(self) -> str:
        return f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{self.consumer}"


def _status(msg: Msg) -> str | None:
    return msg.headers.get("Status") if msg.headers else None


def _attributes(msg: Msg) -> dict[str, str]:
    raw = msg.headers.get(ATTRIBUTES_HEADER) if msg.headers else None
    return dict(json.loads(raw)) if raw else {}


def _headers(message: Message) -> dict[str, str]:
    headers = {ATTRIBUTES_HEADER: json.dumps(dict(message.attributes))}
    if message.key is not None:
        headers[MESSAGE_ID_HEADER] = message.key
    return headers


def _delivery(msg: Msg, receipt: str) -> Delivery:
    return Delivery(
        receipt=receipt,
        message_id=str(msg.metadata.sequence.stream),
        data=msg.data,
        attributes=_attributes(msg),
        deliveries=msg.metadata.num_delivered,
    )


def _checked_receipts(receipts: Sequence[str]) -> Sequence[str]:
    for receipt in receipts:
        parse_receipt(receipt)  # InvalidInput for what this broker did not issue
    return receipts


#: The server's `max_payload` (headers and data) unless its INFO says otherwise: 1 MiB.
DEFAULT_MAX_PAYLOAD = 1024 * 1024


class NatsBroker(BaseBroker):
    """Topics and subscriptions in NATS JetStream; see the module's documentation."""

    dedupes_publish = True
    #: Until `open` reads the server's `max_payload`, that of a server with default settings.
    max_message_bytes = DEFAULT_MAX_PAYLOAD - ENVELOPE_RESERVE_BYTES

    def __init__(self, options: NatsOptions) -> None:
        self._options = options
        self._prefix = options.prefix
        self._connection: Client | None = None
        self._jetstream: JetStreamContext | None = None
        self._registry: KeyValue | None = None
        self._routes: dict[str, Route] = {}
        self._ack_waits: dict[Route, float] = {}
        self._leases: LeaseTable[Msg] = LeaseTable(
            self._nak_now, self._keep_alive, renew_at=_keepalive_due
        )
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def from_url(cls, url: str, settings: Settings | None = None) -> NatsBroker:
        """The broker of `url`; without `max_deliveries` in it, the settings'
        `broker_max_deliveries` (none: no dead letters)."""
        return cls(parse_url(url, None if settings is None else settings.broker_max_deliveries))

    # -- connection ------------------------------------------------------------------------

    async def _open(self) -> None:
        if self._connection is not None:
            return
        try:
            self._connection = await nats.connect(self._options.url, **self._callbacks())
        except (OSError, nats.errors.Error) as exc:
            raise BrokerError(f"cannot reach NATS at {self._address()}: {exc}") from exc
        self._jetstream = self._connection.jetstream()
        self.max_message_bytes = self._connection.max_payload - ENVELOPE_RESERVE_BYTES
        self._registry = await self._call(self._jetstream.create_key_value(self._registry_config()))

    def _registry_config(self) -> KeyValueConfig:
        return KeyValueConfig(
            bucket=f"{self._prefix}_subscriptions", history=1, storage=StorageType.FILE
        )

    def _callbacks(self) -> dict[str, Any]:
        """Reconnect forever, saying so in the log."""
        address = self._address()

        async def disconnected() -> None:
            if self._connection is not None:  # not while closing
                log.warning("NATS broker %s: disconnected; reconnecting", address)

        async def reconnected() -> None:
            log.warning("NATS broker %s: reconnected", address)

        async def error(exc: Exception) -> None:
            log.info("NATS broker %s: %s", address, exc)

        return {
            "disconnected_cb": disconnected,
            "reconnected_cb": reconnected,
            "error_cb": error,
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": 0.5,
        }

    def _address(self) -> str:
        parts = urlsplit(self._options.url)
        return f"{parts.hostname}:{parts.port or 4222}"

    async def _close(self) -> None:
        if self._connection is None:
            return
        connection, self._connection, self._jetstream = self._connection, None, None
        self._leases.forget_all()
        self._routes.clear()
        self._ack_waits.clear()
        await connection.drain()

    # -- names -----------------------------------------------------------------------------

    def _subject(self, topic: str) -> str:
        return f"{self._prefix}.topic.{topic}"

    def _route_of(self, topic: str, subscription: str) -> Route:
        return Route(f"{self._prefix}_topic_{_name_token(topic)}", _name_token(subscription))

    def _dead_letter_subject(self, subscription: str) -> str:
        return f"{self._prefix}.dlq.{subscription}"

    # -- subscriptions ---------------------------------------------------------------------

    async def _ensure_subscription(self, topic: str, subscription: str, ephemeral: bool) -> str:
        registered = await self._register(topic, subscription)
        if registered != topic:
            return registered
        route = self._route_of(topic, subscription)
        await self._ensure_stream(topic, route)
        await self._ensure_consumer(route)
        self._routes[subscription] = route
        return topic

    async def _drop_subscription(self, subscription: str) -> None:
        """Delete the consumer (interest retention then drops what only it held) and the
        registry entry; in-flight receipts of it go stale."""
        topic = await self._registered_topic(subscription)
        if topic is None:
            return
        route = self._route_of(topic, subscription)
        await self._ignoring_not_found(
            self._open_jetstream().delete_consumer(route.stream, route.consumer)
        )
        await self._call(self._open_registry().delete(subscription))
        self._routes.pop(subscription, None)
        self._ack_waits.pop(route, None)

    async def _ignoring_not_found(self, call: Awaitable[Any]) -> None:
        try:
            await self._call(call)
        except BrokerError as exc:
            if not isinstance(exc.__cause__, nats.js.errors.NotFoundError):
                raise

    async def _register(self, topic: str, subscription: str) -> str:
        """The topic the registry names for the subscription, registering it if new."""
        registry = self._open_registry()
        try:
            await self._call(registry.create(subscription, topic.encode()))
            return topic
        except BrokerError as exc:
            if not isinstance(exc.__cause__, nats.js.errors.KeyWrongLastSequenceError):
                raise
        entry = await self._call(registry.get(subscription))
        return (entry.value or b"").decode()

    async def _ensure_stream(self, topic: str, route: Route) -> None:
        config = StreamConfig(
            name=route.stream,
            subjects=[self._subject(topic)],
            retention=RetentionPolicy.INTEREST,
            storage=StorageType.FILE,
            duplicate_window=self._options.dedupe_window,
        )
        try:
            await self._call(self._open_jetstream().add_stream(config))
        except BrokerError as exc:
            cause = exc.__cause__
            if not (
                isinstance(cause, nats.js.errors.BadRequestError)
                and cause.err_code == _STREAM_NAME_IN_USE
            ):
                raise
            await self._set_duplicate_window(route.stream)

    async def _set_duplicate_window(self, stream: str) -> None:
        """The stream exists with another configuration (made by an older sublim, by a broker
        with another `dedupe_window`, or given limits by hand, which it keeps): give it this
        broker's window."""
        jetstream = self._open_jetstream()
        info = await self._call(jetstream.stream_info(stream))
        window = self._options.dedupe_window
        if info.config.duplicate_window == window:
            return
        log.info(
            "stream %s: duplicate_window %s s -> %s s (dedupe_window)",
            stream,
            info.config.duplicate_window,
            window,
        )
        await self._call(jetstream.update_stream(replace(info.config, duplicate_window=window)))

    async def _ensure_consumer(self, route: Route) -> None:
        jetstream = self._open_jetstream()
        try:
            await self._call(jetstream.consumer_info(route.stream, route.consumer))
            return
        except BrokerError as exc:
            if not isinstance(exc.__cause__, nats.js.errors.NotFoundError):
                raise
        await self._call(jetstream.add_consumer(route.stream, _consumer_config(route.consumer)))

    async def _route(self, subscription: str) -> Route:
        route = self._routes.get(subscription)
        if route is not None:
            return route
        topic = await self._registered_topic(subscription)
        if topic is None:
            raise BrokerError(f"no subscription named {subscription!r}")
        route = self._route_of(topic, subscription)
        self._routes[subscription] = route
        return route

    async def _registered_topic(self, subscription: str) -> str | None:
        try:
            entry = await self._call(self._open_registry().get(subscription))
        except BrokerError as exc:
            if isinstance(exc.__cause__, nats.js.errors.NotFoundError):
                return None
            raise
        return (entry.value or b"").decode()

    async def _adopt_lease(self, route: Route, lease: float) -> float:
        """The consumer's AckWait; on this broker's first pull, set to the pull's lease."""
        known = self._ack_waits.get(route)
        if known is not None:
            return known
        jetstream = self._open_jetstream()
        info = await self._call(jetstream.consumer_info(route.stream, route.consumer))
        if info.config.ack_wait != lease:
            config = replace(info.config, ack_wait=lease)
            await self._call(jetstream.add_consumer(route.stream, config))
        self._ack_waits[route] = lease
        return lease

    # -- publish ---------------------------------------------------------------------------

    async def _publish(self, topic: str, messages: Sequence[Message]) -> set[str]:
        jetstream, subject = self._open_jetstream(), self._subject(topic)
        pending = [
            await self._call(jetstream.publish_async(subject, bytes(m.data), headers=_headers(m)))
            for m in messages
        ]
        try:
            acks = await self._call(asyncio.wait_for(asyncio.gather(*pending), REPLY_TIMEOUT))
        except BrokerError as exc:
            await self._unless_topic_has_no_subscriptions(topic, exc)
            return set()
        return {m.key for m, ack in zip(messages, acks, strict=True) if ack.duplicate and m.key}

    async def _unless_topic_has_no_subscriptions(self, topic: str, error: BrokerError) -> None:
        """A topic without subscriptions has no stream, so nothing answered: the messages
        are dropped, as the protocol says. Any other failure is raised."""
        if not isinstance(error.__cause__, nats.js.errors.NoStreamResponseError):
            raise error
        stream = self._route_of(topic, "x").stream
        try:
            await self._call(self._open_jetstream().stream_info(stream))
        except BrokerError as exc:
            if isinstance(exc.__cause__, nats.js.errors.NotFoundError):
                return
        raise error

    # -- pull ------------------------------------------------------------------------------

    async def _pull(
        self, subscription: str, max_messages: int, lease: float, wait: float
    ) -> list[Delivery]:
        """The fetch waits in the server (`no_pause`)."""
        route = await self._route(subscription)
        ack_wait = await self._adopt_lease(route, lease)

        async def fetch(remaining: float) -> Claim:
            msgs = await self._fetch(route, max_messages, remaining)
            return Claim(await self._accept(subscription, msgs, lease, ack_wait))

        return await shared.pull_loop(fetch, shared.no_pause, wait=wait)

    async def _fetch(self, route: Route, max_messages: int, wait: float) -> list[Msg]:
        """What is available now; else, within `wait`, the first message to come and
        whatever is available with it."""
        msgs = await self._request(route, {"batch": max_messages, "no_wait": True}, 0.0)
        if msgs or wait < 0.001:
            return msgs
        first = await self._request(route, {"batch": 1, "expires": int(wait * 1e9)}, wait)
        if not first or max_messages == 1:
            return first
        return first + await self._request(route, {"batch": max_messages - 1, "no_wait": True}, 0.0)

    async def _request(self, route: Route, body: dict[str, Any], expires: float) -> list[Msg]:
        """Send one pull request on a private inbox and collect its messages until it ends."""
        connection = self._open_connection()
        inbox = connection.new_inbox()
        subscription = await connection.subscribe(inbox)
        try:
            await connection.publish(route.next_subject, json.dumps(body).encode(), reply=inbox)
            return await self._collect(subscription, int(body["batch"]), expires + REPLY_TIMEOUT)
        finally:
            await subscription.unsubscribe()

    async def _collect(self, subscription: Subscription, batch: int, timeout: float) -> list[Msg]:
        msgs: list[Msg] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(msgs) < batch:
            try:
                msg = await subscription.next_msg(timeout=max(deadline - loop.time(), 0.001))
            except nats.errors.TimeoutError:
                return self._timed_out(msgs)
            status = _status(msg)
            if status is None:
                msgs.append(msg)
            elif status in _END_STATUSES:
                return msgs
            elif status != _HEARTBEAT_STATUS:
                raise BrokerError(f"NATS pull request failed: {status} {msg.headers}")
        return msgs

    def _timed_out(self, msgs: list[Msg]) -> list[Msg]:
        if msgs or (self._connection is not None and self._connection.is_connected):
            return msgs
        raise BrokerError(f"NATS broker {self._address()} is not connected")

    async def _accept(
        self, subscription: str, msgs: list[Msg], lease: float, ack_wait: float
    ) -> list[Delivery]:
        """Lease the messages to the caller; dead-letter those delivered too often."""
        deliveries = []
        for msg in msgs:
            if self._too_often_delivered(msg):
                await self._dead_letter(subscription, msg)
                continue
            receipt = make_receipt(str(msg.metadata.sequence.stream), shared.new_lease_token())
            self._leases.hold(receipt, msg, lease=lease, engine_window=ack_wait)
            deliveries.append(_delivery(msg, receipt))
        return deliveries

    def _too_often_delivered(self, msg: Msg) -> bool:
        limit = self._options.max_deliveries
        return limit is not None and msg.metadata.num_delivered > limit

    async def _dead_letter(self, subscription: str, msg: Msg) -> None:
        """Copy the message to `<prefix>.dlq.<subscription>`, then ack the original."""
        await self._ensure_dead_letter_stream()
        headers = {**(msg.headers or {}), "Sublim-Deliveries": str(msg.metadata.num_delivered - 1)}
        headers.pop(MESSAGE_ID_HEADER, None)
        subject = self._dead_letter_subject(subscription)
        await self._call(self._open_jetstream().publish(subject, msg.data, headers=headers))
        await self._call(msg.ack())
        log.warning(
            "message %s of %s delivered %d times: moved to %s",
            msg.metadata.sequence.stream,
            subscription,
            msg.metadata.num_delivered - 1,
            subject,
        )

    async def _ensure_dead_letter_stream(self) -> None:
        config = StreamConfig(
            name=f"{self._prefix}_dead_letters",
            subjects=[f"{self._prefix}.dlq.>"],
            storage=StorageType.FILE,
        )
        await self._call(self._open_jetstream().add_stream(config))

    # -- ack, nack, extend -----------------------------------------------------------------

    async def _ack(self, subscription: str, receipts: Sequence[str]) -> None:
        await self._settle(self._take(receipts), b"+ACK")

    async def _nack(self, subscription: str, receipts: Sequence[str], delay: float) -> None:
        delayed = b" " + json.dumps({"delay": int(delay * 1e9)}).encode() if delay else b""
        payload = b"-NAK" + delayed
        await self._settle(self._take(receipts), payload)

    async def _extend(self, subscription: str, receipts: Sequence[str], lease: float) -> set[str]:
        return {r for r in _checked_receipts(receipts) if not self._leases.extend(r, lease=lease)}

    def _take(self, receipts: Sequence[str]) -> list[Msg]:
        """The messages of the receipts this process still holds; stale ones are ignored."""
        taken = (self._leases.take(receipt) for receipt in _checked_receipts(receipts))
        return [msg for msg in taken if msg is not None]

    async def _settle(self, msgs: list[Msg], payload: bytes) -> None:
        """Ack or nak, each answered by JetStream once applied (so a pull right after sees
        a nacked message again), all at once."""
        connection = self._open_connection()
        answers = [connection.request(msg.reply, payload, timeout=REPLY_TIMEOUT) for msg in msgs]
        await self._call(asyncio.gather(*answers))

    # -- lease timers ----------------------------------------------------------------------

    def _nak_now(self, msg: Msg) -> None:
        """A lease passed: JetStream redelivers the message at once."""
        spawn(self._tasks, _quietly(msg.nak, "nak a delivery whose lease passed"))

    def _keep_alive(self, receipt: str, msg: Msg, _left: float) -> None:
        """A lease outlives a third of AckWait: an in-progress ack starts AckWait again."""
        spawn(self._tasks, _quietly(msg.in_progress, "extend a delivery's AckWait"))
        self._leases.renewed(receipt)

    # -- calls -----------------------------------------------------------------------------

    def _open_connection(self) -> Client:
        if self._connection is None:
            raise not_open()
        return self._connection

    def _open_jetstream(self) -> JetStreamContext:
        self._open_connection()
        assert self._jetstream is not None
        return self._jetstream

    def _open_registry(self) -> KeyValue:
        self._open_connection()
        assert self._registry is not None
        return self._registry

    async def _call(self, call: Awaitable[T]) -> T:
        """Await a NATS call, translating its errors into `BrokerError`."""
        try:
            return await call
        except (nats.errors.Error, TimeoutError, OSError) as exc:
            raise BrokerError(f"NATS broker {self._address()}: {exc!r}") from exc


#: In-progress acks never go out more often than this, whatever AckWait is.
MIN_KEEPALIVE_INTERVAL = 0.05


def _keepalive_due(kept: KeptLease[Msg]) -> float:
    """A third of AckWait after JetStream last heard of the delivery (at least
    `MIN_KEEPALIVE_INTERVAL`), rather than `renew_margin` before its deadline as Pub/Sub
    does: an in-progress ack is cheap and AckWait may be short."""
    touched = kept.engine_until - kept.engine_window
    return touched + max(kept.engine_window / 3, MIN_KEEPALIVE_INTERVAL)


async def _quietly(call: Callable[[], Awaitable[None]], what: str) -> None:
    """Fire-and-forget acks: when one is lost, JetStream's own AckWait takes over."""
    try:
        await call()
    except Exception as exc:
        log.debug("could not %s: %s", what, exc)


def _consumer_config(name: str) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=name,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.NEW,
        ack_wait=DEFAULT_ACK_WAIT,
        max_deliver=-1,
        max_ack_pending=-1,
    )
