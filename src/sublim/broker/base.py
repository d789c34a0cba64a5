"""The Broker protocol: topics, subscriptions and leased deliveries.

Semantics, shared by every backend (and checked by one contract suite):

- A message published on a topic is copied to every subscription of that topic existing at
  that moment; a topic without subscriptions drops it (as Pub/Sub does).
- `pull` hands out up to N available messages of one subscription, each under a lease: until
  the lease passes, no other consumer receives it. It waits up to `wait` seconds for the first
  message, woken by a notification, never by a fixed sleep.
- `ack` removes a delivered message; `nack` makes it available again (after `delay`);
  `extend` pushes its lease further. A receipt is stale once its lease has passed and the
  message was handed out again (or once it was acked or nacked): `ack` and `nack` ignore it
  and `extend` reports it lost, so a slow consumer cannot remove a message that was handed to
  another one. A receipt whose lease passed while nobody took the message yet may still be
  honoured, as most engines do.
- A message whose lease passes without an ack is delivered again, with `deliveries` one
  higher (at-least-once). Order is first-in first-out per subscription, as far as the engine
  keeps it.
- A broker that `dedupes_publish` drops a keyed message whose key was published on the same
  topic within its dedupe window (`DEFAULT_DEDUPE_WINDOW_SECONDS` unless its URL says
  otherwise), whether or not that first message was delivered or acked since; `publish`
  returns the keys it dropped. A broker that cannot dedupe publishes every copy, and execution
  nodes on it claim each attempt before they run it (docs/decisions/019-one-attempt-at-a-time.md).
- A broker takes messages up to `max_message_bytes` (by `message_size`). `publish` refuses a
  larger one without sending it, publishes the others of the call, then raises
  `MessageTooLarge` naming the refused ones (docs/decisions/024-message-size.md).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from sublim.errors import InvalidInput, MessageTooLarge

#: How long a dedupe broker remembers a published key, unless its URL sets `dedupe_window`:
#: far longer than the outbox grace, after which a sweeper publishes a request again.
DEFAULT_DEDUPE_WINDOW_SECONDS = 900.0

#: Idle time after which an engine may delete an ephemeral subscription.
EPHEMERAL_IDLE_SECONDS = 600.0

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,199}")


def check_name(kind: str, name: str) -> str:
    """Topic and subscription names: a letter, then letters, digits, '.', '_' or '-'."""
    # fullmatch: with match and '$', a trailing newline would pass.
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f"invalid {kind} name {name!r}: "
            "use a letter, then up to 199 letters, digits, '.', '_' or '-'"
        )
    return name


@dataclass(frozen=True, slots=True)
class Message:
    """A message to publish. `key`, when set, names this message so that the engine can
    de-duplicate it; `order`, when set, names a sequence: messages of one order are
    delivered in publish order where the engine orders only on request (Pub/Sub ordering
    keys; the other engines keep a subscription's order anyway)."""

    data: bytes
    attributes: Mapping[str, str] = field(default_factory=dict)
    key: str | None = None
    order: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message handed to a consumer under a lease; `receipt` names this delivery."""

    receipt: str
    message_id: str
    data: bytes
    attributes: Mapping[str, str]
    #: 1 on the first delivery, one more on each redelivery.
    deliveries: int


#: The stated limit of the brokers that keep messages in a database or in memory (SQLite,
#: PostgreSQL, memory): far under what their engines hold (1 GB), and half the largest gRPC
#: message of `sublim datastore`, which carries the execution with its payload.
EMBEDDED_MAX_MESSAGE_BYTES = 32 * 1024 * 1024

#: Kept free, under an engine's hard limit on a whole message, for what the broker adds around
#: a message's own bytes (NATS headers, the topic path of a Pub/Sub request).
ENVELOPE_RESERVE_BYTES = 4096

PublishFn = Callable[[Sequence[Message]], Awaitable[set[str]]]


def message_size(message: Message) -> int:
    """What a message weighs against `max_message_bytes`: its data, and its key, order and
    attributes (names and values) in UTF-8."""
    texts = (message.key or "", message.order or "", *message.attributes.keys())
    extra = sum(len(text.encode()) for text in (*texts, *message.attributes.values()))
    return len(message.data) + extra


def too_large(what: str, size: int, limit: int) -> MessageTooLarge:
    return MessageTooLarge(
        f"the {what} is {size} bytes, more than the broker's limit of {limit} bytes", limit=limit
    )


def check_fits(message: Message, limit: int, what: str = "message") -> Message:
    """The message, if it fits `limit`; else `MessageTooLarge` saying both sizes."""
    size = message_size(message)
    if size > limit:
        raise too_large(what, size, limit)
    return message


async def publish_within(limit: int, messages: Sequence[Message], publish: PublishFn) -> set[str]:
    """`publish` the messages that fit `limit`; when some do not, `MessageTooLarge` naming
    them, raised once the others are published (one message never fails its batch)."""
    refused = {i for i, message in enumerate(messages) if message_size(message) > limit}
    if not refused:
        return await publish(messages)
    fitting = [message for i, message in enumerate(messages) if i not in refused]
    dropped = await publish(fitting) if fitting else set()
    raise MessageTooLarge(
        f"{len(refused)} of {len(messages)} messages are larger than the broker's limit of "
        f"{limit} bytes and were not published (the others were)",
        limit=limit,
        refused=tuple(sorted(refused)),
        dropped=frozenset(dropped),
    )


@runtime_checkable
class Broker(Protocol):
    """A message broker with leases. Every method may raise `BrokerError`."""

    #: True when `publish` drops a keyed message already published within the dedupe window.
    dedupes_publish: bool
    #: The largest message (`message_size`) this broker publishes; see each engine's page.
    max_message_bytes: int

    async def open(self) -> None:
        """Connect; idempotent."""

    async def close(self) -> None: ...

    async def ensure_subscription(
        self, topic: str, subscription: str, *, ephemeral: bool = False
    ) -> None:
        """Create the topic and a subscription to it where they do not exist. An `ephemeral`
        subscription belongs to one process (an execution node's control subscription): where
        the engine can, it deletes the subscription with what it holds once nobody consumed
        from it for `EPHEMERAL_IDLE_SECONDS` (a node that died without dropping it)."""

    async def drop_subscription(self, subscription: str) -> None:
        """Delete a subscription and the messages it holds; nothing if it does not exist.
        (Executors drop their per-node control subscription when they stop.)"""

    async def publish(self, topic: str, messages: Sequence[Message]) -> set[str]:
        """Publish messages durably (they survive a crash once this returns); returns the keys
        of the messages dropped as already published (always empty unless `dedupes_publish`).
        Messages over `max_message_bytes` are refused: `MessageTooLarge`, once the others
        are published."""

    async def pull(
        self, subscription: str, max_messages: int, *, lease: float, wait: float
    ) -> list[Delivery]:
        """Up to `max_messages` deliveries, leased for `lease` seconds; waits up to `wait`
        seconds for the first one; an empty list when none came."""

    async def ack(self, subscription: str, receipts: Sequence[str]) -> None: ...

    async def publish_and_ack(
        self, topic: str, messages: Sequence[Message], acks: Mapping[str, Sequence[str]]
    ) -> set[str]:
        """`publish` the messages, then `ack` the receipts of `acks` (by subscription), in one
        transaction where the engine can: nothing is acked unless every message is published.
        Returns what `publish` returns."""

    async def nack(
        self, subscription: str, receipts: Sequence[str], *, delay: float = 0.0
    ) -> None: ...

    async def extend(self, subscription: str, receipts: Sequence[str], *, lease: float) -> set[str]:
        """Extend leases; returns the receipts that were no longer held (lost)."""
