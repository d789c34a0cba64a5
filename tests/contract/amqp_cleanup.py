"""A RabbitMQ broker for tests that deletes the exchanges and queues it declared."""

from __future__ import annotations

from collections.abc import Sequence

from sublim.broker.amqp import AmqpBroker
from sublim.broker.base import Message


class CleaningAmqpBroker(AmqpBroker):
    """Remembers the topics and subscriptions a test used, to delete them afterwards."""

    topics: set[str]
    subscriptions: set[str]

    async def ensure_subscription(
        self, topic: str, subscription: str, *, ephemeral: bool = False
    ) -> None:
        await super().ensure_subscription(topic, subscription, ephemeral=ephemeral)
        self._remember(topic, subscription)

    async def publish(self, topic: str, messages: Sequence[Message]) -> set[str]:
        dropped = await super().publish(topic, messages)
        self._remember(topic)
        return dropped

    def _remember(self, topic: str, subscription: str | None = None) -> None:
        vars(self).setdefault("topics", set()).add(topic)
        if subscription is not None:
            vars(self).setdefault("subscriptions", set()).add(subscription)

    async def delete_everything_declared(self) -> None:
        for subscription in vars(self).get("subscriptions", set()):
            await self.drop_subscription(subscription)
        for topic in vars(self).get("topics", set()):
            await self.delete_topic(topic)
