"""What the brokers share: `BaseBroker` (the public methods, written once, over a few
primitives each engine writes; docs/decisions/028-broker-base.md), receipts, argument checks,
the `dedupe_window` URL option, wake-up signals, the one deadline loop of `pull`, and
per-delivery leases kept in process over an engine's coarser deadline."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import unquote_plus

from sublim.broker.base import (
    DEFAULT_DEDUPE_WINDOW_SECONDS,
    Delivery,
    Message,
    check_name,
    publish_within,
)
from sublim.errors import BrokerError, Conflict, InvalidInput, InvalidUrlOption

T = TypeVar("T")

_RECEIPT_SEPARATOR = ":"


def new_lease_token() -> str:
    return secrets.token_hex(8)


def make_receipt(message_id: str, lease_token: str) -> str:
    """A receipt names one delivery: the message and the lease it was handed out under."""
    return f"{message_id}{_RECEIPT_SEPARATOR}{lease_token}"


def parse_receipt(receipt: str) -> tuple[str, str]:
    """`make_receipt`'s inverse: (message id, lease token)."""
    message_id, separator, lease_token = receipt.partition(_RECEIPT_SEPARATOR)
    if not (separator and message_id and lease_token):
        raise InvalidInput(f"not a receipt of this broker: {receipt!r}")
    return message_id, lease_token


def parse_numeric_receipt(receipt: str) -> tuple[int, str]:
    """(message id as an integer, lease token), for brokers whose ids are row numbers."""
    message_id, lease_token = parse_receipt(receipt)
    if not message_id.isdigit():
        raise InvalidInput(f"not a receipt of this broker: {receipt!r}")
    return int(message_id), lease_token


def row_delivery(row: Sequence[Any], token: str) -> Delivery:
    """The delivery of a row of the database brokers (SQLite, PostgreSQL): its id, data,
    attributes (JSON) and deliveries."""
    message_id, data, attributes, deliveries = row
    return Delivery(
        receipt=make_receipt(str(message_id), token),
        message_id=str(message_id),
        data=bytes(data),
        attributes=json.loads(attributes),
        deliveries=deliveries,
    )


def check_pull_arguments(max_messages: int, lease: float, wait: float) -> None:
    if max_messages < 1:
        raise InvalidInput(f"max_messages must be at least 1, got {max_messages}")
    check_lease(lease)
    if wait < 0:
        raise InvalidInput(f"wait must not be negative, got {wait}")


def check_lease(lease: float) -> None:
    if lease <= 0:
        raise InvalidInput(f"lease must be positive, got {lease}")


def check_delay(delay: float) -> None:
    if delay < 0:
        raise InvalidInput(f"delay must not be negative, got {delay}")


# The dedupe window


DEDUPE_WINDOW_OPTION = "dedupe_window"


def check_dedupe_window(seconds: float) -> float:
    """A dedupe window is a positive, finite number of seconds."""
    if not (0 < seconds < math.inf):
        raise InvalidInput(f"{DEDUPE_WINDOW_OPTION} must be positive seconds, got {seconds}")
    return float(seconds)


def parse_dedupe_window(value: str | None) -> float:
    """The `dedupe_window` URL option's value (seconds), or the default when it is absent."""
    if value is None:
        return DEFAULT_DEDUPE_WINDOW_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        message = f"{DEDUPE_WINDOW_OPTION} must be a number of seconds, got {value!r}"
        raise InvalidInput(message) from None
    return check_dedupe_window(seconds)


def take_dedupe_window(options: UrlOptions) -> float:
    """The `dedupe_window` option (seconds), or the default when the URL has none."""
    return options.take(DEDUPE_WINDOW_OPTION, parse_dedupe_window, DEFAULT_DEDUPE_WINDOW_SECONDS)


# URL options


class UrlOptions:
    """A broker URL's query options, for the one rule of every broker: the options a broker
    names are taken out (`take`) and parsed, a bad value being `InvalidUrlOption`. Then the
    rest goes on to the engine's client where that client reads options from its URL
    (`for_driver`: redis-py, aio-pika and libpq take `ssl`, `heartbeat`, `search_path` …),
    and is refused with `InvalidUrlOption` where nothing would read it (`refuse_the_rest`:
    memory, SQLite, NATS, Pub/Sub), so that a misspelt option never passes silently.

    The URL left keeps the other options as written, so that two URLs of one database still
    compare equal once a broker's options are taken out (the same-database outbox compares
    them)."""

    def __init__(self, url: str, engine: str) -> None:
        self._engine = engine
        base, _, rest = url.partition("?")
        query, hash_, fragment = rest.partition("#")
        self._base, self._tail = base, hash_ + fragment
        self._items = [item for item in query.split("&") if item]

    def take(self, name: str, parse: Callable[[str], T], default: T) -> T:
        """The option's value parsed (the last one when it is given twice), or `default`."""
        kept, values = [], []
        for item, (key, raw) in zip(self._items, self._pairs(), strict=True):
            if key == name:
                values.append(raw)
            else:
                kept.append(item)
        self._items = kept
        if not values:
            return default
        try:
            return parse(values[-1])
        except (ValueError, InvalidInput) as exc:
            message = f"{self._engine} URL option {name}={values[-1]!r}: {exc}"
            raise InvalidUrlOption(message) from None

    def for_driver(self) -> str:
        """The URL with the options not taken, for a client that reads them."""
        rest = "&".join(self._items)
        return self._base + (f"?{rest}" if rest else "") + self._tail

    def refuse_the_rest(self) -> str:
        """The URL, if no option is left; else `InvalidUrlOption` naming those left."""
        if self._items:
            unknown = ", ".join(sorted({key for key, _ in self._pairs()}))
            raise InvalidUrlOption(f"unknown {self._engine} URL options: {unknown}")
        return self.for_driver()

    def _pairs(self) -> list[tuple[str, str]]:
        pairs = [item.partition("=") for item in self._items]
        return [(unquote_plus(key), unquote_plus(raw)) for key, _, raw in pairs]


class Signal:
    """Wakes the tasks waiting for one subscription.

    A waiter takes a ticket *before* looking for messages and waits on it afterwards, so a
    notification that comes in between is not missed.
    """

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def ticket(self) -> asyncio.Event:
        loop = asyncio.get_running_loop()
        # An event is bound to the loop it was first awaited in; a broker may outlive a loop
        # (one event loop per test, for instance).
        if self._event is None or self._loop is not loop:
            self._event, self._loop = asyncio.Event(), loop
        return self._event

    def notify(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = None


class Signals:
    """One `Signal` per subscription name."""

    def __init__(self) -> None:
        self._signals: dict[str, Signal] = {}

    def of(self, subscription: str) -> Signal:
        return self._signals.setdefault(subscription, Signal())

    def notify(self, subscriptions: Iterable[str]) -> None:
        for subscription in subscriptions:
            signal = self._signals.get(subscription)
            if signal is not None:
                signal.notify()

    def notify_all(self) -> None:
        self.notify(list(self._signals))


@dataclass(frozen=True, slots=True)
class Claim:
    """What one attempt to claim messages found."""

    deliveries: list[Delivery]
    #: Seconds until the earliest leased or delayed message becomes available; None if none.
    retry_in: float | None = None


async def wait_on(ticket: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await ticket.wait()


C = TypeVar("C", bound=Claim)


async def pull_loop(
    claim: Callable[[float], Awaitable[C]],
    pause: Callable[[C, float], Awaitable[None]],
    *,
    wait: float,
) -> list[Delivery]:
    """The deadline loop of every `pull`: `claim` (given the seconds left, for an engine that
    blocks in the claim: NATS, Pub/Sub); when it found nothing and time is left, `pause`
    (given what it found and the seconds left: wait on a signal, block in the engine, or
    nothing), and claim again, until `wait` seconds have passed."""
    deadline = time.monotonic() + wait
    while True:
        found = await claim(max(deadline - time.monotonic(), 0.0))
        remaining = deadline - time.monotonic()
        if found.deliveries or remaining <= 0:
            return found.deliveries
        await pause(found, remaining)


async def no_pause(_found: Claim, _remaining: float) -> None:
    """The pause of an engine whose claim itself waits."""


async def pull_waiting(
    signal: Signal,
    claim: Callable[[], Awaitable[Claim]],
    *,
    wait: float,
    poll_interval: float = math.inf,
) -> list[Delivery]:
    """`pull_loop` for the engines woken in process: claim messages; when none are available,
    sleep until notified, until the earliest leased or delayed message comes due, or at most
    `poll_interval`, and claim again, until `wait` seconds have passed."""
    tickets: list[asyncio.Event] = []

    async def claim_after_ticket(_remaining: float) -> Claim:
        tickets[:] = [signal.ticket()]  # before looking, so a notification is not missed
        return await claim()

    async def sleep(found: Claim, remaining: float) -> None:
        retry_in = math.inf if found.retry_in is None else max(found.retry_in, 0.0)
        await wait_on(tickets[0], min(remaining, retry_in, poll_interval))

    return await pull_loop(claim_after_ticket, sleep, wait=wait)


# The base class of the brokers

NOT_OPEN = "the broker is not open: call `await broker.open()` first"


def not_open() -> BrokerError:
    """What every broker raises when used before `open` (or after `close`)."""
    return BrokerError(NOT_OPEN)


class BaseBroker(ABC):
    """The `Broker` protocol's public methods, written once: name checks, argument checks,
    empty batches, the subscription-on-another-topic conflict, message sizes; then a call to
    the engine's primitive (`_open`, `_close`, `_ensure_subscription`, `_drop_subscription`,
    `_publish`, `_pull`, `_ack`, `_nack`, `_extend`). A primitive gets valid names and
    arguments and, for `_publish`, `_ack`, `_nack` and `_extend`, a batch that is not empty;
    `_pull` waits with `pull_loop` (or `pull_waiting`). An engine that is not open raises
    `not_open()` from where it reaches for its connection."""

    #: True when `publish` drops a keyed message already published within the dedupe window.
    dedupes_publish: bool
    #: The largest message (`message_size`) this broker publishes.
    max_message_bytes: int

    @staticmethod
    def _check_name(kind: str, name: str) -> str:
        """The name rule (`check_name`); an engine may add to it (RabbitMQ: no `amq.`)."""
        return check_name(kind, name)

    async def open(self) -> None:
        """Connect; idempotent."""
        await self._open()

    async def close(self) -> None:
        await self._close()

    async def ensure_subscription(
        self, topic: str, subscription: str, *, ephemeral: bool = False
    ) -> None:
        self._check_name("topic", topic)
        self._check_name("subscription", subscription)
        existing = await self._ensure_subscription(topic, subscription, ephemeral)
        if existing != topic:
            raise Conflict(f"subscription {subscription!r} exists on topic {existing!r}")

    async def drop_subscription(self, subscription: str) -> None:
        self._check_name("subscription", subscription)
        await self._drop_subscription(subscription)

    async def publish(self, topic: str, messages: Sequence[Message]) -> set[str]:
        self._check_name("topic", topic)
        if not messages:
            return set()
        return await publish_within(
            self.max_message_bytes, messages, lambda fitting: self._publish(topic, fitting)
        )

    async def pull(
        self, subscription: str, max_messages: int, *, lease: float, wait: float
    ) -> list[Delivery]:
        self._check_name("subscription", subscription)
        check_pull_arguments(max_messages, lease, wait)
        return await self._pull(subscription, max_messages, lease, wait)

    async def ack(self, subscription: str, receipts: Sequence[str]) -> None:
        self._check_name("subscription", subscription)
        if receipts:
            await self._ack(subscription, receipts)

    async def nack(self, subscription: str, receipts: Sequence[str], *, delay: float = 0.0) -> None:
        self._check_name("subscription", subscription)
        check_delay(delay)
        if receipts:
            await self._nack(subscription, receipts, delay)

    async def extend(self, subscription: str, receipts: Sequence[str], *, lease: float) -> set[str]:
        self._check_name("subscription", subscription)
        check_lease(lease)
        if not receipts:
            return set()
        return await self._extend(subscription, receipts, lease)

    # -- the primitives --------------------------------------------------------------------

    @abstractmethod
    async def _open(self) -> None:
        """Connect, if not connected yet."""

    @abstractmethod
    async def _close(self) -> None:
        """Disconnect, waking waiting pulls; nothing if not open."""

    @abstractmethod
    async def _ensure_subscription(self, topic: str, subscription: str, ephemeral: bool) -> str:
        """Create the topic and subscription where missing; the topic the subscription is on
        (another one than `topic` is a conflict, which the caller raises)."""

    @abstractmethod
    async def _drop_subscription(self, subscription: str) -> None: ...

    @abstractmethod
    async def _publish(self, topic: str, messages: Sequence[Message]) -> set[str]:
        """Publish messages that fit; the keys dropped as already published."""

    @abstractmethod
    async def _pull(
        self, subscription: str, max_messages: int, lease: float, wait: float
    ) -> list[Delivery]:
        """Claim and wait with `pull_loop` or `pull_waiting`."""

    @abstractmethod
    async def _ack(self, subscription: str, receipts: Sequence[str]) -> None: ...

    @abstractmethod
    async def _nack(self, subscription: str, receipts: Sequence[str], delay: float) -> None: ...

    @abstractmethod
    async def _extend(self, subscription: str, receipts: Sequence[str], lease: float) -> set[str]:
        """The receipts no longer held."""


# Leases kept in this process, over an engine that only knows a coarser deadline (or none)


H = TypeVar("H")

#: Renewals of an engine's deadline are sent this long before it passes, at least.
MIN_RENEW_MARGIN = 0.5
#: ... and at most (a window of 600 s is renewed 10 s before its end).
MAX_RENEW_MARGIN = 10.0


def renew_margin(engine_window: float) -> float:
    """How long before the engine's own deadline to renew it: a fifth of the window."""
    return min(max(engine_window / 5, MIN_RENEW_MARGIN), MAX_RENEW_MARGIN)


@dataclass(slots=True)
class KeptLease(Generic[H]):
    """One delivery this process holds: the engine's `handle` of it and two deadlines."""

    handle: H
    #: `loop.time()` when the lease passes and the message must be released.
    deadline: float
    #: `loop.time()` when the engine redelivers unless it hears from us first (inf: never).
    engine_until: float
    #: The engine's window as last set: `engine_until` is that long after we last told it.
    engine_window: float
    timer: asyncio.TimerHandle | None = None


def renew_before_the_engine(kept: KeptLease[Any]) -> float:
    """When to renew the engine's deadline (Pub/Sub): `renew_margin` of what is left of it,
    before it passes."""
    left = max(kept.engine_until - time_of_loop(), 0.0)
    return kept.engine_until - renew_margin(left)


def time_of_loop() -> float:
    return asyncio.get_running_loop().time()


class LeaseTable(Generic[H]):
    """Per-delivery leases, by receipt, each with a timer, for the engines that do not keep
    a lease per delivery (RabbitMQ, NATS JetStream, Pub/Sub). When a lease passes, `expire`
    is called with its handle (the engine should redeliver it now). When the engine's own
    deadline (`engine_window` after a delivery or a renewal; none by default) comes due
    while the lease runs on, at the time `renew_at` says, `renew` is called with the
    receipt, the handle and the seconds left, and must answer with `renewed`,
    `retry_renewal` or `take`. A receipt not in the table is stale."""

    def __init__(
        self,
        expire: Callable[[H], None],
        renew: Callable[[str, H, float], None] | None = None,
        *,
        renew_at: Callable[[KeptLease[H]], float] = renew_before_the_engine,
    ) -> None:
        self._leases: dict[str, KeptLease[H]] = {}
        self._expire = expire
        self._renew = renew
        self._renew_at = renew_at

    def __len__(self) -> int:
        return len(self._leases)

    def hold(
        self, receipt: str, handle: H, *, lease: float, engine_window: float = math.inf
    ) -> None:
        now = time_of_loop()
        kept = KeptLease(handle, now + lease, now + engine_window, engine_window)
        self._leases[receipt] = kept
        self._schedule(receipt, kept)

    def get(self, receipt: str) -> H | None:
        kept = self._leases.get(receipt)
        return None if kept is None else kept.handle

    def take(self, receipt: str) -> H | None:
        """Stop holding a delivery (acked, released or lost); None if its receipt is stale."""
        kept = self._leases.pop(receipt, None)
        if kept is None:
            return None
        if kept.timer is not None:
            kept.timer.cancel()
        return kept.handle

    def extend(self, receipt: str, *, lease: float, engine_window: float | None = None) -> bool:
        """The lease runs `lease` seconds from now; the engine was told `engine_window` (None:
        the engine was not told, so its deadline stands and is renewed in time). False if the
        receipt is stale."""
        kept = self._leases.get(receipt)
        if kept is None:
            return False
        now = time_of_loop()
        kept.deadline = now + lease
        if engine_window is not None:
            kept.engine_until, kept.engine_window = now + engine_window, engine_window
        self._schedule(receipt, kept)
        return True

    def renewed(self, receipt: str, engine_window: float | None = None) -> None:
        """The engine was told: its deadline is `engine_window` (by default the last one) away."""
        kept = self._leases.get(receipt)
        if kept is not None:
            if engine_window is not None:
                kept.engine_window = engine_window
            kept.engine_until = time_of_loop() + kept.engine_window
            self._schedule(receipt, kept)

    def retry_renewal(self, receipt: str, after: float) -> None:
        kept = self._leases.get(receipt)
        if kept is not None:
            self._schedule(receipt, kept, at=min(time_of_loop() + after, kept.deadline))

    def receipts_where(self, holds: Callable[[H], bool]) -> list[str]:
        return [receipt for receipt, kept in self._leases.items() if holds(kept.handle)]

    def forget_all(self) -> None:
        """Stop every timer (closing): the engine redelivers at its own deadline."""
        for receipt in list(self._leases):
            self.take(receipt)

    def _schedule(self, receipt: str, kept: KeptLease[H], at: float | None = None) -> None:
        if kept.timer is not None:
            kept.timer.cancel()
        when = min(kept.deadline, self._renew_at(kept)) if at is None else at
        kept.timer = asyncio.get_running_loop().call_at(when, self._on_timer, receipt)

    def _on_timer(self, receipt: str) -> None:
        kept = self._leases.get(receipt)
        if kept is None:
            return
        left = kept.deadline - time_of_loop()
        if left <= 0:
            self.take(receipt)
            self._expire(kept.handle)
            return
        kept.timer = None
        if self._renew is None:  # an engine without a deadline of its own: never due
            self._schedule(receipt, kept)
        else:
            self._renew(receipt, kept.handle, left)


def spawn(tasks: set[asyncio.Task[None]], work: Coroutine[Any, Any, None]) -> None:
    """Run `work` in the background, kept in `tasks` until done (a lease's timer cannot
    await its release or renewal)."""
    task = asyncio.create_task(work)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
