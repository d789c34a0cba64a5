"""The Google Cloud Pub/Sub broker: `pubsub://PROJECT?max_deliveries=100&ack_deadline=30`.

With `PUBSUB_EMULATOR_HOST` set, the official client talks to the emulator; otherwise to
Pub/Sub with Application Default Credentials. Calls go through the client's asyncio
(grpc.aio) clients, so nothing blocks the event loop.

Layout (`sublim.engines.pubsub`): a topic per task type; a pull subscription per consumer,
created with exactly-once delivery and a dead-letter policy (topic `<subscription>-dlq`,
after `max_deliveries`), so that Pub/Sub counts deliveries (`delivery_attempt` is set only
under a dead-letter policy). Subscriptions of the topics in `ordered_topics` (by default the
configured updates topic, `updates_topic`) have message ordering on, and a message's `order`
is its ordering key: the updates of one execution are recorded in the order they were sent.

Pull (docs/decisions/017-pubsub-pull.md): synchronous pulls, with a short deadline when the
caller does not wait, else one long poll per remaining wait. Leases are kept in this process
(`LeaseTable`), over Pub/Sub's ack deadline: the deadline follows the lease in whole seconds
(at most 600 s, renewed before it passes for longer leases), and when a lease passes the
message is released at once (ack deadline 0). `extend` and `nack` are ack-deadline changes;
`ack` is one Acknowledge, whose exactly-once answer names the acks that failed (logged: those
messages come back). A receipt this process no longer holds is stale and ignored.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import google.auth.exceptions
import grpc
from google.api_core import exceptions as gexc
from google.pubsub_v1 import PublisherAsyncClient, SubscriberAsyncClient
from google.pubsub_v1.services.publisher.transports.grpc_asyncio import (
    PublisherGrpcAsyncIOTransport,
)
from google.pubsub_v1.services.subscriber.transports.grpc_asyncio import (
    SubscriberGrpcAsyncIOTransport,
)
from google.pubsub_v1.types import PubsubMessage, PullRequest, ReceivedMessage, Subscription

from sublim.broker import _shared as shared
from sublim.broker._base import BaseBroker, not_open
from sublim.broker._leases import LeaseTable, spawn
from sublim.broker._shared import Claim, make_receipt, parse_receipt
from sublim.broker.base import ENVELOPE_RESERVE_BYTES, Delivery, Message
from sublim.config import DEFAULT_UPDATES_TOPIC, Settings
from sublim.core.batching import Batcher
from sublim.engines.pubsub import (
    DEFAULT_ACK_DEADLINE,
    DEFAULT_MAX_DELIVERIES,
    MAX_ACK_DEADLINE,
    MAX_MAX_DELIVERIES,
    MIN_ACK_DEADLINE,
    MIN_MAX_DELIVERIES,
    PubSubAdmin,
    PullSpec,
    get_subscription,
    short_name,
    subscription_path,
    topic_path,
)
from sublim.errors import BrokerError, InvalidInput

log = logging.getLogger("sublim.broker.pubsub")

T = TypeVar("T")

#: A pull that may wait less than this asks for what is there now ...
MIN_LONG_POLL = 0.05
#: ... with this deadline (an empty answer comes at once from the emulator, and as a
#: deadline passed from Pub/Sub).
IMMEDIATE_TIMEOUT = 0.5
#: A long poll's RPC deadline is its wait plus this: Pub/Sub answers an empty long poll
#: shortly before the deadline (the emulator about a second before).
LONG_POLL_GRACE = 1.0
#: After an empty long poll that came back early, pause this long before the next one.
EMPTY_POLL_PAUSE = 0.05
#: Ack ids per Acknowledge or ModifyAckDeadline request (well under its 512 kB limit).
ACK_IDS_PER_REQUEST = 1000
#: Messages and bytes per Publish request (Pub/Sub: 1,000 and 10 MB).
MESSAGES_PER_PUBLISH, BYTES_PER_PUBLISH = 1000, 9_000_000
#: Pub/Sub takes a message of at most 10 MB (10,000,000 bytes), in a Publish request of at most
#: as much: what a message may weigh, with the request around it.
MAX_MESSAGE_BYTES = 10_000_000 - ENVELOPE_RESERVE_BYTES
#: A renewal that could not reach Pub/Sub is tried again this much later.
RENEW_RETRY_SECONDS = 1.0
#: Tries of an Acknowledge whose exactly-once answer says "transient failure".
ACK_TRIES = 3
EXACTLY_ONCE_FAILURE = "EXACTLY_ONCE_ACKID_FAILURE"

# Outcomes of one ack id in an ack-deadline change.
DONE, INVALID, RETRY = "done", "invalid", "retry"


@dataclass(frozen=True, slots=True)
class PubSubOptions:
    """The project and the options of the broker's URL."""

    project: str
    max_deliveries: int = DEFAULT_MAX_DELIVERIES
    ack_deadline: int = DEFAULT_ACK_DEADLINE
    ordered_topics: frozenset[str] = frozenset({DEFAULT_UPDATES_TOPIC})


def parse_url(
    url: str,
    updates_topic: str = DEFAULT_UPDATES_TOPIC,
    max_deliveries: int = DEFAULT_MAX_DELIVERIES,
) -> PubSubOptions:
    """`pubsub://PROJECT?max_deliveries=N&ack_deadline=S&ordered_topics=A,B`; without
    `ordered_topics`, only `updates_topic` is ordered."""
    parts = urlsplit(url)
    if not parts.netloc:
        raise InvalidInput(f"a Pub/Sub URL names its project: pubsub://PROJECT, not {url!r}")
    options = shared.UrlOptions(url, "Pub/Sub")
    ordered = options.take("ordered_topics", str, updates_topic)
    max_deliveries = options.take(
        "max_deliveries", _between(MIN_MAX_DELIVERIES, MAX_MAX_DELIVERIES), max_deliveries
    )
    ack_deadline = options.take(
        "ack_deadline", _between(MIN_ACK_DEADLINE, MAX_ACK_DEADLINE), DEFAULT_ACK_DEADLINE
    )
    options.refuse_the_rest()
    return PubSubOptions(
        project=parts.netloc,
        max_deliveries=max_deliveries,
        ack_deadline=ack_deadline,
        ordered_topics=frozenset(name for name in ordered.split(",") if name),
    )


def _max_deliveries(settings: Settings) -> int:
    """The settings' `broker_max_deliveries` within what Pub/Sub takes; Pub/Sub's default
    when they leave it unset."""
    wanted = settings.broker_max_deliveries
    if wanted is None:
        return DEFAULT_MAX_DELIVERIES
    return min(max(wanted, MIN_MAX_DELIVERIES), MAX_MAX_DELIVERIES)


def _between(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise InvalidInput(f"an integer from {low} to {high}")
        return int(raw)

    return parse


def engine_seconds(seconds: float) -> int:
    """A lease as an ack deadline: whole seconds, from 1 to Pub/Sub's 600."""
    return min(max(math.ceil(seconds), 1), MAX_ACK_DEADLINE)


@dataclass(frozen=True, slots=True)
class Known:
    """A subscription as this broker found or created it."""

    path: str
    topic: str
    ack_deadline: int


@dataclass(frozen=True, slots=True)
class Handle:
    """What Pub/Sub needs to settle one delivery."""

    subscription: str
    ack_id: str
    message_id: str


#: One ack-deadline change: (subscription path, ack id, seconds).
Modack = tuple[str, str, int]


def failed_ack_ids(exc: gexc.GoogleAPICallError) -> dict[str, str] | None:
    """The ack ids an exactly-once Acknowledge or ModifyAckDeadline refused, with why
    (`PERMANENT_FAILURE_INVALID_ACK_ID`, `TRANSIENT_FAILURE_…`); None for other errors."""
    if exc.reason != EXACTLY_ONCE_FAILURE:
        return None
    return {str(ack_id): str(why) for ack_id, why in (exc.metadata or {}).items()}


def outcome_of(reason: str) -> str:
    return RETRY if reason.startswith("TRANSIENT") else INVALID


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def publish_batches(messages: Sequence[PubsubMessage]) -> Iterator[list[PubsubMessage]]:
    """Messages in Publish-sized batches, in order."""
    batch: list[PubsubMessage] = []
    size = 0
    for message in messages:
        message_size = PubsubMessage.pb(message).ByteSize()
        if batch and (
            len(batch) == MESSAGES_PER_PUBLISH or size + message_size > BYTES_PER_PUBLISH
        ):
            yield batch
            batch, size = [], 0
        batch.append(message)
        size += message_size
    if batch:
        yield batch


#: The channel options of the client's own transport: no gRPC message size limit.
_UNLIMITED = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


def new_clients() -> tuple[PublisherAsyncClient, SubscriberAsyncClient]:
    """Clients of Pub/Sub, or of the emulator at `PUBSUB_EMULATOR_HOST`. For the emulator the
    client would open a channel with gRPC's default 4 MiB receive limit, under which a pull
    of a message over 4 MiB fails every time: it gets a channel without that limit."""
    host = os.environ.get("PUBSUB_EMULATOR_HOST")
    if not host:
        return PublisherAsyncClient(), SubscriberAsyncClient()
    publisher = PublisherGrpcAsyncIOTransport(
        channel=grpc.aio.insecure_channel(host, options=_UNLIMITED)
    )
    subscriber = SubscriberGrpcAsyncIOTransport(
        channel=grpc.aio.insecure_channel(host, options=_UNLIMITED)
    )
    return PublisherAsyncClient(transport=publisher), SubscriberAsyncClient(transport=subscriber)


def to_pubsub(message: Message) -> PubsubMessage:
    return PubsubMessage(
        data=bytes(message.data),
        attributes=dict(message.attributes),
        ordering_key=message.order or "",
    )


def to_delivery(received: ReceivedMessage, receipt: str) -> Delivery:
    return Delivery(
        receipt=receipt,
        message_id=received.message.message_id,
        data=bytes(received.message.data),
        attributes=dict(received.message.attributes),
        deliveries=max(received.delivery_attempt, 1),
    )


class PubSubBroker(BaseBroker):
    """Topics and subscriptions in Google Cloud Pub/Sub; see the module's documentation."""

    dedupes_publish = False
    max_message_bytes = MAX_MESSAGE_BYTES

    def __init__(self, options: PubSubOptions) -> None:
        self.options = options
        self._publisher: PublisherAsyncClient | None = None
        self._subscriber: SubscriberAsyncClient | None = None
        self._known: dict[str, Known] = {}
        self._leases: LeaseTable[Handle] = LeaseTable(self._release_now, self._renew)
        self._modacks: Batcher[Modack, str] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def from_url(cls, url: str, settings: Settings | None = None) -> PubSubBroker:
        """The broker of `url`; `settings` name the updates topic, ordered unless the URL
        names the ordered topics itself, and the dead-letter count unless the URL names
        `max_deliveries` (`broker_max_deliveries`, brought into Pub/Sub's 5 to 100)."""
        if settings is None:
            return cls(parse_url(url))
        return cls(parse_url(url, settings.updates_topic, _max_deliveries(settings)))

    @property
    def project(self) -> str:
        return self.options.project

    # -- connection ------------------------------------------------------------------------

    async def _open(self) -> None:
        if self._subscriber is not None:
            return
        try:
            self._publisher, self._subscriber = new_clients()
        except google.auth.exceptions.GoogleAuthError as exc:
            raise BrokerError(f"cannot reach Pub/Sub for {self.project}: {exc}") from exc
        self._modacks = Batcher(self._modack_batch, max_batch=ACK_IDS_PER_REQUEST, name="modack")

    async def _close(self) -> None:
        if self._subscriber is None or self._publisher is None:
            return
        publisher, subscriber = self._publisher, self._subscriber
        self._publisher = self._subscriber = None
        self._leases.forget_all()
        self._known.clear()
        await self._settle_background()
        await publisher.transport.close()  # type: ignore[no-untyped-call]
        await subscriber.transport.close()  # type: ignore[no-untyped-call]

    async def _settle_background(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._modacks is not None:
            await self._modacks.close()
            self._modacks = None

    def _clients(self) -> tuple[PublisherAsyncClient, SubscriberAsyncClient]:
        if self._publisher is None or self._subscriber is None:
            raise not_open()
        return self._publisher, self._subscriber

    def _admin(self) -> PubSubAdmin:
        return PubSubAdmin(*self._clients(), self.project)

    # -- subscriptions ---------------------------------------------------------------------

    async def _ensure_subscription(self, topic: str, subscription: str, ephemeral: bool) -> str:
        """An ephemeral subscription keeps messages for Pub/Sub's shortest retention and
        expires after its shortest idle time (see `PullSpec.ephemeral`)."""
        known = self._known.get(subscription) or await self._find(subscription)
        if known is None:
            known = await self._create(topic, subscription, ephemeral)
        return known.topic

    async def _drop_subscription(self, subscription: str) -> None:
        """Delete the subscription with its dead letters (topic and keeper); its receipts go
        stale. Nothing if it does not exist."""
        self._known.pop(subscription, None)
        path = subscription_path(self.project, subscription)
        for receipt in self._leases.receipts_where(lambda handle: handle.subscription == path):
            self._leases.take(receipt)
        await self._call(self._admin().delete_subscription(subscription))

    async def _find(self, subscription: str) -> Known | None:
        path = subscription_path(self.project, subscription)
        found = await self._call(get_subscription(self._clients()[1], path))
        return None if found is None else self._remember(subscription, found)

    async def _create(self, topic: str, subscription: str, ephemeral: bool) -> Known:
        spec = PullSpec(
            self.project,
            topic,
            subscription,
            max_deliveries=self.options.max_deliveries,
            ack_deadline=self.options.ack_deadline,
            ordered=topic in self.options.ordered_topics,
            ephemeral=ephemeral,
        )
        existing, created = await self._call(self._admin().subscription(spec.resource()))
        log.info(
            "Pub/Sub: %s",
            ", ".join(f"{p} {'created' if c else 'found'}" for p, c in created.items()),
        )
        return self._remember(subscription, existing)

    def _remember(self, subscription: str, found: Subscription) -> Known:
        if not found.dead_letter_policy.dead_letter_topic:
            log.warning(
                "subscription %s has no dead-letter policy: Pub/Sub does not count its "
                "deliveries, so every delivery reads as the first",
                subscription,
            )
        known = Known(found.name, short_name(found.topic), found.ack_deadline_seconds)
        self._known[subscription] = known
        return known

    async def _known_subscription(self, subscription: str) -> Known:
        known = self._known.get(subscription) or await self._find(subscription)
        if known is None:
            raise BrokerError(f"no subscription named {subscription!r} in project {self.project}")
        return known

    # -- publish ---------------------------------------------------------------------------

    async def _publish(self, topic: str, messages: Sequence[Message]) -> set[str]:
        """Publish in Publish-sized batches, all at once, or one after another when messages
        carry ordering keys (so that a key's order holds across batches)."""
        path = topic_path(self.project, topic)
        batches = list(publish_batches([to_pubsub(m) for m in messages]))
        if any(m.order for m in messages):
            for batch in batches:
                await self._publish_batch(path, batch)
        else:
            await asyncio.gather(*(self._publish_batch(path, batch) for batch in batches))
        return set()

    async def _publish_batch(self, path: str, batch: list[PubsubMessage]) -> None:
        publisher = self._clients()[0]
        try:
            await self._call(publisher.publish(topic=path, messages=batch))
        except BrokerError as exc:
            if not isinstance(exc.__cause__, gexc.NotFound):
                raise
            log.debug(
                "topic %s does not exist: it has no subscriptions, %d dropped", path, len(batch)
            )

    # -- pull ------------------------------------------------------------------------------

    async def _pull(
        self, subscription: str, max_messages: int, lease: float, wait: float
    ) -> list[Delivery]:
        """What is there; else the first messages to come within `wait` seconds: long polls
        (short ones once under `MIN_LONG_POLL` is left), a short pause after an empty one."""
        known = await self._known_subscription(subscription)

        async def claim(remaining: float) -> Claim:
            received = await self._pull_once(known, max_messages, remaining)
            return Claim(await self._hand_out(known, received, lease))

        async def pause(_found: Claim, remaining: float) -> None:
            await asyncio.sleep(min(remaining, EMPTY_POLL_PAUSE))

        return await shared.pull_loop(claim, pause, wait=wait)

    async def _pull_once(
        self, known: Known, max_messages: int, wait: float
    ) -> list[ReceivedMessage]:
        """One synchronous pull: a long poll of `wait` seconds, or a short one for what is
        there now (not the deprecated `return_immediately`)."""
        request = PullRequest(subscription=known.path, max_messages=max_messages)
        timeout = IMMEDIATE_TIMEOUT if wait <= MIN_LONG_POLL else wait + LONG_POLL_GRACE
        try:
            response = await self._call(
                self._clients()[1].pull(request=request, timeout=timeout, retry=None)
            )
        except BrokerError as exc:
            return self._empty_or_raise(known, exc)
        return list(response.received_messages)

    def _empty_or_raise(self, known: Known, error: BrokerError) -> list[ReceivedMessage]:
        """A long poll that outlived its deadline found nothing; a missing subscription is
        forgotten (ensure_subscription creates it again)."""
        if isinstance(error.__cause__, gexc.DeadlineExceeded):
            return []
        if isinstance(error.__cause__, gexc.NotFound):
            self._known.pop(short_name(known.path), None)
        raise error

    async def _hand_out(
        self, known: Known, received: list[ReceivedMessage], lease: float
    ) -> list[Delivery]:
        """Lease the messages to the caller; Pub/Sub's deadline follows the lease."""
        if not received:
            return []
        seconds = engine_seconds(lease)
        outcomes = [DONE] * len(received)
        if seconds != known.ack_deadline:
            outcomes = await self._modack_all(known.path, [r.ack_id for r in received], seconds)
        windows = {DONE: seconds, RETRY: known.ack_deadline}
        return [
            self._hold(known.path, r, lease, windows[outcome])
            for r, outcome in zip(received, outcomes, strict=True)
            if outcome != INVALID
        ]

    def _hold(self, path: str, received: ReceivedMessage, lease: float, window: int) -> Delivery:
        message_id = received.message.message_id
        receipt = make_receipt(message_id, shared.new_lease_token())
        handle = Handle(path, received.ack_id, message_id)
        self._leases.hold(receipt, handle, lease=lease, engine_window=window)
        return to_delivery(received, receipt)

    # -- ack, nack, extend -----------------------------------------------------------------

    async def _ack(self, subscription: str, receipts: Sequence[str]) -> None:
        held = self._held(receipts)
        by_path: dict[str, list[str]] = {}
        for _, handle in held:
            by_path.setdefault(handle.subscription, []).append(handle.ack_id)
        failed: dict[str, str] = {}
        for path, ack_ids in by_path.items():
            failed |= await self._acknowledge(path, ack_ids)
        for receipt, handle in held:
            self._leases.take(receipt)
            if handle.ack_id in failed:
                log.warning(
                    "ack of message %s on %s failed (exactly-once: %s): it will be delivered again",
                    handle.message_id,
                    short_name(handle.subscription),
                    failed[handle.ack_id],
                )

    async def _acknowledge(self, path: str, ack_ids: Sequence[str]) -> dict[str, str]:
        """Acknowledge; the ack ids that failed for good, with why. Transient exactly-once
        failures are tried again."""
        pending, failed = list(ack_ids), dict[str, str]()
        for attempt in range(ACK_TRIES):
            refused = await self._acknowledge_once(path, pending)
            pending = [a for a, why in refused.items() if outcome_of(why) == RETRY]
            failed |= {a: why for a, why in refused.items() if outcome_of(why) == INVALID}
            if not pending:
                return failed
            await asyncio.sleep(0.1 * (attempt + 1))
        return failed | {a: "TRANSIENT_FAILURE (gave up)" for a in pending}

    async def _acknowledge_once(self, path: str, ack_ids: Sequence[str]) -> dict[str, str]:
        refused: dict[str, str] = {}
        subscriber = self._clients()[1]
        for chunk in chunked(ack_ids, ACK_IDS_PER_REQUEST):
            try:
                await subscriber.acknowledge(subscription=path, ack_ids=list(chunk))
            except gexc.GoogleAPICallError as exc:
                failures = failed_ack_ids(exc)
                if failures is None:
                    raise BrokerError(f"Pub/Sub acknowledge on {path}: {exc}") from exc
                refused |= failures
        return refused

    async def _nack(self, subscription: str, receipts: Sequence[str], delay: float) -> None:
        """Release at once (ack deadline 0); with a delay, hold the message in this process
        until it passes (Pub/Sub's deadline set to it in whole seconds, should we die)."""
        held = self._held(receipts)
        seconds = engine_seconds(delay) if delay > 0 else 0
        outcomes = await self._modack_handles([h for _, h in held], seconds)
        for (receipt, handle), outcome in zip(held, outcomes, strict=True):
            self._leases.take(receipt)
            if delay > 0 and outcome == DONE:
                delayed = make_receipt(handle.message_id, "delayed-" + shared.new_lease_token())
                self._leases.hold(delayed, handle, lease=delay, engine_window=seconds)

    async def _extend(self, subscription: str, receipts: Sequence[str], lease: float) -> set[str]:
        """Move Pub/Sub's ack deadline (and this process's lease); a receipt no longer held,
        or whose ack id exactly-once delivery refuses, is lost. If Pub/Sub cannot be reached
        the lease is extended here and its renewal tried again shortly."""
        held = self._held(receipts)
        seconds = engine_seconds(lease)
        outcomes = await self._modack_handles([h for _, h in held], seconds)
        lost = set(receipts) - {receipt for receipt, _ in held}
        for (receipt, _), outcome in zip(held, outcomes, strict=True):
            if outcome == INVALID:
                self._leases.take(receipt)
                lost.add(receipt)
            else:
                window = seconds if outcome == DONE else None
                self._leases.extend(receipt, lease=lease, engine_window=window)
        return lost

    def _held(self, receipts: Sequence[str]) -> list[tuple[str, Handle]]:
        """The receipts this process still holds, with their handles; stale ones left out."""
        held = []
        for receipt in receipts:
            parse_receipt(receipt)  # InvalidInput for what this broker did not issue
            handle = self._leases.get(receipt)
            if handle is not None:
                held.append((receipt, handle))
        return held

    # -- ack-deadline changes, batched -----------------------------------------------------

    async def _modack_handles(self, handles: Sequence[Handle], seconds: int) -> list[str]:
        return await self._submit_modacks([(h.subscription, h.ack_id, seconds) for h in handles])

    async def _modack_all(self, path: str, ack_ids: Sequence[str], seconds: int) -> list[str]:
        return await self._submit_modacks([(path, ack_id, seconds) for ack_id in ack_ids])

    async def _submit_modacks(self, modacks: Sequence[Modack]) -> list[str]:
        if not modacks:
            return []
        if self._modacks is None:
            raise not_open()
        return list(await asyncio.gather(*(self._modacks.submit(m) for m in modacks)))

    async def _modack_batch(self, modacks: Sequence[Modack]) -> list[str]:
        """One ModifyAckDeadline per subscription and deadline; an outcome per change."""
        groups: dict[tuple[str, int], list[str]] = {}
        for path, ack_id, seconds in modacks:
            groups.setdefault((path, seconds), []).append(ack_id)
        outcomes: dict[Modack, str] = {}
        for (path, seconds), ack_ids in groups.items():
            for ack_id, outcome in (await self._modack_rpc(path, ack_ids, seconds)).items():
                outcomes[(path, ack_id, seconds)] = outcome
        return [outcomes[m] for m in modacks]

    async def _modack_rpc(self, path: str, ack_ids: list[str], seconds: int) -> dict[str, str]:
        outcomes = dict.fromkeys(ack_ids, DONE)
        subscriber = self._clients()[1]
        for chunk in chunked(ack_ids, ACK_IDS_PER_REQUEST):
            try:
                await subscriber.modify_ack_deadline(
                    subscription=path, ack_ids=list(chunk), ack_deadline_seconds=seconds
                )
            except gexc.GoogleAPICallError as exc:
                outcomes |= _modack_failures(chunk, exc)
        return outcomes

    # -- lease timers ----------------------------------------------------------------------

    def _release_now(self, handle: Handle) -> None:
        """A lease passed: Pub/Sub redelivers the message at once."""
        self._spawn(self._release(handle))

    async def _release(self, handle: Handle) -> None:
        [outcome] = await self._modack_handles([handle], 0)
        if outcome != DONE:
            log.debug(
                "release of %s: %s (Pub/Sub redelivers it at its deadline)",
                handle.message_id,
                outcome,
            )

    def _renew(self, receipt: str, handle: Handle, left: float) -> None:
        """A lease outlives Pub/Sub's deadline: move the deadline on."""
        self._spawn(self._renew_now(receipt, handle, left))

    async def _renew_now(self, receipt: str, handle: Handle, left: float) -> None:
        seconds = engine_seconds(left)
        [outcome] = await self._modack_handles([handle], seconds)
        if outcome == DONE:
            self._leases.renewed(receipt, seconds)
        elif outcome == RETRY:
            self._leases.retry_renewal(receipt, RENEW_RETRY_SECONDS)
        elif self._leases.take(receipt) is not None:
            log.warning("lease of message %s lost: Pub/Sub refused its ack id", handle.message_id)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        if self._modacks is None:  # closed: Pub/Sub's deadlines take over
            work.close()
            return
        spawn(self._tasks, work)

    # -- calls -----------------------------------------------------------------------------

    async def _call(self, call: Awaitable[T]) -> T:
        """Await a Pub/Sub call, translating its errors."""
        try:
            return await call
        except gexc.InvalidArgument as exc:
            raise InvalidInput(f"Pub/Sub refused the request: {exc.message}") from exc
        except gexc.GoogleAPICallError as exc:
            raise BrokerError(f"Pub/Sub ({self.project}): {exc}") from exc
        except google.auth.exceptions.GoogleAuthError as exc:
            raise BrokerError(f"Pub/Sub ({self.project}): credentials: {exc}") from exc


def _modack_failures(ack_ids: Sequence[str], exc: gexc.GoogleAPICallError) -> dict[str, str]:
    """Outcomes of a refused ModifyAckDeadline: per ack id under exactly-once, else all to
    be tried again."""
    failures = failed_ack_ids(exc)
    if failures is None:
        log.info("Pub/Sub ModifyAckDeadline failed: %s", exc)
        return dict.fromkeys(ack_ids, RETRY)
    return {ack_id: outcome_of(why) for ack_id, why in failures.items() if ack_id in ack_ids}
