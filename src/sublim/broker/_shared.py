"""Helpers shared by the brokers: receipts, argument checks, the `dedupe_window` URL option,
wake-up signals, the wait loop of `pull`, and per-delivery leases kept in process over an
engine's coarser deadline."""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import unquote_plus

from sublim.broker.base import DEFAULT_DEDUPE_WINDOW_SECONDS, Delivery
from sublim.errors import InvalidInput

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


def split_dedupe_window(url: str) -> tuple[str, float]:
    """The URL without its `dedupe_window` option, and the window it names (or the default).

    The rest of the URL is kept as written, so that two URLs of one database still compare
    equal once the option is taken out (the same-database outbox compares them)."""
    base, question, query = url.partition("?")
    if not question:
        return url, DEFAULT_DEDUPE_WINDOW_SECONDS
    query, hash_, fragment = query.partition("#")
    kept, value = [], None
    for item in query.split("&"):
        name, _, raw = item.partition("=")
        if name == DEDUPE_WINDOW_OPTION:
            value = unquote_plus(raw)
        elif item:
            kept.append(item)
    rest = "&".join(kept)
    stripped = base + (f"?{rest}" if rest else "") + (hash_ + fragment)
    return stripped, parse_dedupe_window(value)


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


async def pull_waiting(
    signal: Signal,
    claim: Callable[[], Awaitable[Claim]],
    *,
    wait: float,
    poll_interval: float = math.inf,
) -> list[Delivery]:
    """Claim messages; when none are available, sleep until notified, until the earliest
    leased or delayed message comes due, or at most `poll_interval`, and claim again, until
    `wait` seconds have passed."""
    deadline = time.monotonic() + wait
    while True:
        ticket = signal.ticket()
        found = await claim()
        remaining = deadline - time.monotonic()
        if found.deliveries or remaining <= 0:
            return found.deliveries
        retry_in = math.inf if found.retry_in is None else max(found.retry_in, 0.0)
        await wait_on(ticket, min(remaining, retry_in, poll_interval))


# Leases kept in this process, over an engine that only knows a coarser deadline


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
    #: `loop.time()` when the engine redelivers unless it hears from us first.
    engine_until: float
    timer: asyncio.TimerHandle | None = None

    def next_event(self) -> float:
        window = max(self.engine_until - time_of_loop(), 0.0)
        return min(self.deadline, self.engine_until - renew_margin(window))


def time_of_loop() -> float:
    return asyncio.get_running_loop().time()


class LeaseTable(Generic[H]):
    """Per-delivery leases, by receipt, each with a timer: when a lease passes, `expire` is
    called with its handle (the engine should redeliver it now); when the engine's own
    deadline comes near while the lease runs on, `renew` is called with the receipt, the
    handle and the seconds left, and must answer with `renewed`, `retry_renewal` or `take`.
    A receipt not in the table is stale."""

    def __init__(
        self,
        expire: Callable[[H], None],
        renew: Callable[[str, H, float], None],
    ) -> None:
        self._leases: dict[str, KeptLease[H]] = {}
        self._expire = expire
        self._renew = renew

    def __len__(self) -> int:
        return len(self._leases)

    def hold(self, receipt: str, handle: H, *, lease: float, engine_window: float) -> None:
        now = time_of_loop()
        kept = KeptLease(handle, deadline=now + lease, engine_until=now + engine_window)
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

    def extend(self, receipt: str, *, lease: float, engine_window: float | None) -> None:
        """The lease runs `lease` seconds from now; the engine was told `engine_window` (None:
        the engine was not reached, so its deadline stands and is renewed in time)."""
        kept = self._leases.get(receipt)
        if kept is not None:
            now = time_of_loop()
            kept.deadline = now + lease
            if engine_window is not None:
                kept.engine_until = now + engine_window
            self._schedule(receipt, kept)

    def renewed(self, receipt: str, engine_window: float) -> None:
        kept = self._leases.get(receipt)
        if kept is not None:
            kept.engine_until = time_of_loop() + engine_window
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
        when = kept.next_event() if at is None else at
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
        self._renew(receipt, kept.handle, left)
