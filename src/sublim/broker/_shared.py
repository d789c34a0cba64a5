"""What the brokers share below their base class (`_base.BaseBroker`): receipts, argument
checks, the `dedupe_window` and other URL options, wake-up signals and the one deadline loop
of `pull`. Leases kept in process are in `_leases`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote_plus

from sublim.broker.base import (
    DEFAULT_DEDUPE_WINDOW_SECONDS,
    Delivery,
)
from sublim.errors import InvalidInput, InvalidUrlOption

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
