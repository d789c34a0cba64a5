"""Sending updates and acknowledgements from an executor, in batches.

Updates of one attempt are published in the order they were made (a batch keeps submission
order), and an outcome is published before its request message is acknowledged. Updates and
acks share one batcher: a batch publishes its updates and acks its deliveries in one broker
call (`publish_and_ack`, one transaction where the engine can), so an attempt's outcome and
its ack cost one call, not two (docs/decisions/034-cheaper-attempts.md). A batch retried
after a passing outage may publish its updates twice: the store ignores the copy.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sublim.broker.base import Broker, Message, message_size
from sublim.core.batching import Batcher
from sublim.core.messages import update_message
from sublim.core.model import Update
from sublim.core.policy import too_large
from sublim.errors import BrokerError

log = logging.getLogger("sublim.executor")

RETRY_DELAYS = (0.05, 0.2, 0.5, 1.0, 2.0, 5.0)


@dataclass(frozen=True, slots=True)
class _Outgoing:
    """An update to publish, a delivery to ack (once the update is published), or both."""

    update: Update | None = None
    subscription: str = ""
    receipt: str | None = None


class Reporter:
    """Publishes updates and acks deliveries for one node, batching concurrent calls."""

    def __init__(self, broker: Broker, updates_topic: str) -> None:
        self._broker = broker
        self._topic = updates_topic
        self._outgoing: Batcher[_Outgoing, None] = Batcher(self._flush, name="updates and acks")

    def send(self, update: Update) -> asyncio.Future[None]:
        """Queue an update for publishing; await the result to know it is published."""
        return self._outgoing.submit(_Outgoing(update))

    async def ack(self, subscription: str, receipt: str) -> None:
        """Ack a delivery, after every update queued before it is published."""
        await self._outgoing.submit(_Outgoing(None, subscription, receipt))

    async def send_and_ack(self, update: Update, subscription: str, receipt: str) -> None:
        """Publish an attempt's last update, then ack its delivery."""
        await self._outgoing.submit(_Outgoing(update, subscription, receipt))

    async def close(self) -> None:
        await self._outgoing.close()

    async def _flush(self, batch: Sequence[_Outgoing]) -> list[None]:
        """Publish the batch's updates, then ack its deliveries: an ack never goes before an
        update queued ahead of it (a failed publish acks nothing)."""
        messages = [self._message_of(o.update) for o in batch if o.update is not None]
        acks = _receipts_by_subscription(batch)
        publish_and_ack = functools.partial(
            self._broker.publish_and_ack, self._topic, messages, acks
        )
        await _with_retries(publish_and_ack, "publish updates and ack")
        return [None] * len(batch)

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


def _receipts_by_subscription(batch: Sequence[_Outgoing]) -> dict[str, list[str]]:
    receipts: dict[str, list[str]] = {}
    for outgoing in batch:
        if outgoing.receipt is not None:
            receipts.setdefault(outgoing.subscription, []).append(outgoing.receipt)
    return receipts


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
