"""An in-process broker with leases: for tests and single-process use (`memory://`).

It keeps the contract of the real backends: fan-out, leases, redelivery, stale receipts,
delayed nacks, pulls woken by a notification rather than by a polling loop, and publishes
de-duplicated by key (`memory://?dedupe_window=SECONDS`, default
`DEFAULT_DEDUPE_WINDOW_SECONDS`): each topic remembers the keys it saw with their expiry, in
expiry order, and forgets them as they pass.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from sublim.broker import _shared as shared
from sublim.broker._base import BaseBroker
from sublim.broker._shared import Claim, make_receipt, parse_numeric_receipt
from sublim.broker.base import (
    DEFAULT_DEDUPE_WINDOW_SECONDS,
    EMBEDDED_MAX_MESSAGE_BYTES,
    Delivery,
    Message,
)
from sublim.errors import BrokerError


@dataclass(slots=True)
class _Entry:
    """One message in one subscription."""

    id: int
    data: bytes
    attributes: dict[str, str]
    available_at: float
    lease_token: str | None = None
    deliveries: int = 0

    def deliver(self, now: float, lease: float) -> Delivery:
        self.available_at = now + lease
        self.lease_token = shared.new_lease_token()
        self.deliveries += 1
        return Delivery(
            receipt=make_receipt(str(self.id), self.lease_token),
            message_id=str(self.id),
            data=self.data,
            attributes=dict(self.attributes),
            deliveries=self.deliveries,
        )


@dataclass(slots=True)
class _Subscription:
    topic: str
    #: By message id: insertion order is id order, hence first-in first-out.
    entries: dict[int, _Entry] = field(default_factory=dict)

    def available(self, now: float) -> Iterator[_Entry]:
        return (entry for entry in self.entries.values() if entry.available_at <= now)

    def retry_in(self, now: float) -> float | None:
        return min((entry.available_at - now for entry in self.entries.values()), default=None)

    def held(self, receipts: Sequence[str]) -> dict[str, _Entry]:
        """The entries that receipts still hold, by receipt; stale receipts are left out."""
        held = {}
        for receipt in receipts:
            message_id, lease_token = parse_numeric_receipt(receipt)
            entry = self.entries.get(message_id)
            if entry is not None and entry.lease_token == lease_token:
                held[receipt] = entry
        return held


def _forget_passed(seen: dict[str, float], now: float) -> None:
    """Drop the keys whose window passed: they are the first ones, in expiry order."""
    passed = list(itertools.takewhile(lambda key: seen[key] <= now, seen))
    for key in passed:
        del seen[key]


class MemoryBroker(BaseBroker):
    """Topics and subscriptions in this process's memory; nothing survives the process."""

    dedupes_publish = True
    max_message_bytes = EMBEDDED_MAX_MESSAGE_BYTES

    def __init__(self, *, dedupe_window: float = DEFAULT_DEDUPE_WINDOW_SECONDS) -> None:
        self.dedupe_window = shared.check_dedupe_window(dedupe_window)
        self._subscriptions: dict[str, _Subscription] = {}
        self._ids = itertools.count(1)
        self._signals = shared.Signals()
        #: Per topic, the keys published within the window and when each expires, in expiry
        #: order (one window for all, and a key seen again after it passed moves to the end).
        self._keys: dict[str, dict[str, float]] = {}

    @classmethod
    def from_url(cls, url: str) -> MemoryBroker:
        """`memory://`, or `memory://?dedupe_window=SECONDS`; no other option."""
        options = shared.UrlOptions(url, "memory")
        dedupe_window = shared.take_dedupe_window(options)
        options.refuse_the_rest()
        return cls(dedupe_window=dedupe_window)

    async def _open(self) -> None:
        pass

    async def _close(self) -> None:
        pass

    async def _ensure_subscription(self, topic: str, subscription: str, ephemeral: bool) -> str:
        return self._subscriptions.setdefault(subscription, _Subscription(topic)).topic

    async def _drop_subscription(self, subscription: str) -> None:
        self._subscriptions.pop(subscription, None)

    async def _publish(self, topic: str, messages: Sequence[Message]) -> set[str]:
        now = time.monotonic()
        messages, dropped = self._first_copies(topic, messages, now)
        targets = [name for name, sub in self._subscriptions.items() if sub.topic == topic]
        for name in targets:
            self._append(self._subscriptions[name], messages, now)
        self._signals.notify(targets)
        return dropped

    def _first_copies(
        self, topic: str, messages: Sequence[Message], now: float
    ) -> tuple[Sequence[Message], set[str]]:
        """The messages whose key is not remembered (they are remembered from now on), and
        the keys of those left out. A subclass that sets `dedupes_publish = False` publishes
        every copy, as RabbitMQ and Pub/Sub do (tests model those brokers so)."""
        if not self.dedupes_publish or all(message.key is None for message in messages):
            return messages, set()
        seen = self._keys.setdefault(topic, {})
        _forget_passed(seen, now)
        expires_at = now + self.dedupe_window
        kept, dropped = [], set()
        for message in messages:
            if message.key is None:
                kept.append(message)
            elif message.key in seen:
                dropped.add(message.key)
            else:
                seen[message.key] = expires_at
                kept.append(message)
        return kept, dropped

    def _append(self, subscription: _Subscription, messages: Sequence[Message], now: float) -> None:
        for message in messages:
            entry = _Entry(next(self._ids), message.data, dict(message.attributes), now)
            subscription.entries[entry.id] = entry

    async def _pull(
        self, subscription: str, max_messages: int, lease: float, wait: float
    ) -> list[Delivery]:
        queue = self._subscriptions.get(subscription)
        if queue is None:
            raise BrokerError(f"no subscription named {subscription!r}")

        async def claim() -> Claim:
            return self._claim(queue, max_messages, lease)

        return await shared.pull_waiting(self._signals.of(subscription), claim, wait=wait)

    def _claim(self, queue: _Subscription, max_messages: int, lease: float) -> Claim:
        now = time.monotonic()
        entries = list(itertools.islice(queue.available(now), max_messages))
        if not entries:
            return Claim([], queue.retry_in(now))
        return Claim([entry.deliver(now, lease) for entry in entries])

    async def _ack(self, subscription: str, receipts: Sequence[str]) -> None:
        queue = self._existing_or_empty(subscription)
        for entry in queue.held(receipts).values():
            del queue.entries[entry.id]

    async def _nack(self, subscription: str, receipts: Sequence[str], delay: float) -> None:
        available_at = time.monotonic() + delay
        for entry in self._existing_or_empty(subscription).held(receipts).values():
            entry.available_at, entry.lease_token = available_at, None
        # Waiting pullers recompute when to look again, even for a delayed message.
        self._signals.notify([subscription])

    async def _extend(self, subscription: str, receipts: Sequence[str], lease: float) -> set[str]:
        held = self._existing_or_empty(subscription).held(receipts)
        until = time.monotonic() + lease
        for entry in held.values():
            entry.available_at = until
        return set(receipts) - held.keys()

    def _existing_or_empty(self, name: str) -> _Subscription:
        """Receipts for an unknown subscription are all stale."""
        return self._subscriptions.get(name) or _Subscription(topic="")
