"""`BaseBroker`: the `Broker` protocol's public methods written once (name and argument
checks, empty batches, the subscription-on-another-topic conflict, message sizes, the one
"not open" error), over the few primitives each engine writes
(docs/decisions/028-broker-base.md)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

from sublim.broker._shared import check_delay, check_lease, check_pull_arguments
from sublim.broker.base import Delivery, Message, check_name, message_size, publish_within
from sublim.errors import BrokerError, Conflict

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

    async def publish_and_ack(
        self, topic: str, messages: Sequence[Message], acks: Mapping[str, Sequence[str]]
    ) -> set[str]:
        self._check_name("topic", topic)
        acks = {self._check_name("subscription", s): r for s, r in acks.items() if r}
        limit = self.max_message_bytes
        if not messages or not acks or any(message_size(m) > limit for m in messages):
            return await self._publish_then_ack(topic, messages, acks)
        return await self._publish_and_ack(topic, messages, acks)

    async def _publish_then_ack(
        self, topic: str, messages: Sequence[Message], acks: Mapping[str, Sequence[str]]
    ) -> set[str]:
        dropped = await self.publish(topic, messages)
        for subscription, receipts in acks.items():
            await self.ack(subscription, receipts)
        return dropped

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

    async def _publish_and_ack(
        self, topic: str, messages: Sequence[Message], acks: Mapping[str, Sequence[str]]
    ) -> set[str]:
        """Messages that fit and acks of valid names, neither empty. By default `publish`
        then `ack`; an engine that can do both in one transaction does."""
        return await self._publish_then_ack(topic, messages, acks)

    @abstractmethod
    async def _extend(self, subscription: str, receipts: Sequence[str], lease: float) -> set[str]:
        """The receipts no longer held."""
