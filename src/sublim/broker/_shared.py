"""Pure helpers shared by the embedded brokers: receipts, argument checks, wake-up signals
and the wait loop of `pull`."""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from sublim.broker.base import Delivery
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
