"""Sending updates and acknowledgements from an executor, in batches.

Updates of one attempt are published in the order they were made (a batch keeps submission
order), and an outcome is awaited before its request message is acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sublim.broker.base import Broker, Message, message_size
from sublim.core.batching import Batcher, BatchFn
from sublim.core.messages import update_message
from sublim.core.model import Update
from sublim.core.policy import too_large
from sublim.errors import BrokerError

log = logging.getLogger("sublim.executor")

RETRY_DELAYS = (0.05, 0.2, 0.5, 1.0, 2.0, 5.0)


class Reporter:
    """Publishes updates and acks deliveries for one node, batching concurrent calls."""

    def __init__(self, broker: Broker, updates_topic: str) -> None:
        self._broker = broker
        self._topic = updates_topic
        self._updates: Batcher[Update, None] = Batcher(self._publish, name="updates")
        self._acks: dict[str, Batcher[str, None]] = {}

    def send(self, update: Update) -> asyncio.Future[None]:
        """Queue an update for publishing; await the result to know it is published."""
        return self._updates.submit(update)

    async def ack(self, subscription: str, receipt: str) -> None:
        batcher = self._acks.get(subscription)
        if batcher is None:
            batcher = Batcher(self._acker(subscription), name=f"ack:{subscription}")
            self._acks[subscription] = batcher
        await batcher(receipt)

    async def close(self) -> None:
        await self._updates.close()
        for batcher in self._acks.values():
            await batcher.close()

    async def _publish(self, updates: Sequence[Update]) -> list[None]:
        messages = [self._message_of(u) for u in updates]
        await _with_retries(lambda: self._broker.publish(self._topic, messages), "publish updates")
        return [None] * len(updates)

    def _message_of(self, update: Update) -> Message:
        """The update's message; for one over the broker's limit (a result too large), an
        Error update of the attempt in its place: the record ends Error, saying why, where
        the publish would fail the whole batch, again and again."""
        message = update_message(update)
        size, limit = message_size(message), self._broker.max_message_bytes
        if size <= limit:
            return message
        log.error("update of execution %s is %d bytes, over %d", update.execution_id, size, limit)
        return update_message(too_large(update, of="update", size=size, limit=limit))

    def _acker(self, subscription: str) -> BatchFn[str, None]:
        async def ack_batch(receipts: Sequence[str]) -> list[None]:
            await _with_retries(lambda: self._broker.ack(subscription, receipts), "ack")
            return [None] * len(receipts)

        return ack_batch


async def _with_retries(call: Callable[[], Awaitable[Any]], what: str) -> None:
    """Retry a broker call through passing outages: losing an update would lose a record."""
    for delay in RETRY_DELAYS:
        try:
            await call()
            return
        except BrokerError as exc:
            log.warning("%s failed (%s); retrying in %.2f s", what, exc, delay)
            await asyncio.sleep(delay)
    await call()
