"""Control messages reaching a node from the API, on the control topic: cancellations, and
the answers to the claims of attempts (on brokers that cannot dedupe a request).

Each node consumes the control topic through a subscription of its own (created when it
starts, dropped when it stops), so every node hears every message. A node remembers the
executions cancelled lately, so that a request still queued is never started, and it stops
the attempts it is running for them. An attempt waiting for its claim's answer waits on a
future here, resolved when the answer names its token.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from typing import Protocol

from sublim.broker.base import Broker
from sublim.core.ids import new_ulid
from sublim.core.messages import ClaimAnswers, ControlMessage, decode_control
from sublim.errors import InvalidInput

log = logging.getLogger("sublim.executor")

REMEMBERED_CANCELLATIONS = 10_000
CONTROL_LEASE_SECONDS = 30.0
CONTROL_WAIT_SECONDS = 1.0


class Cancellable(Protocol):
    def cancel(self, by: str, *, grace: float) -> None: ...


class Control:
    """A node's view of cancellations: which executions to skip, which attempts to stop."""

    def __init__(self, broker: Broker, topic: str, node_name: str, grace: float) -> None:
        self.broker = broker
        self.topic = topic
        self.subscription = _subscription_name(topic, node_name)
        self.grace = grace
        self._cancelled: OrderedDict[str, str] = OrderedDict()
        self._running: dict[str, Cancellable] = {}
        self._claims: dict[str, asyncio.Future[bool]] = {}

    def cancelled_by(self, execution_id: str) -> str | None:
        """Who cancelled this execution, if a cancellation reached this node."""
        return self._cancelled.get(execution_id)

    def is_running(self, execution_id: str) -> bool:
        return execution_id in self._running

    def running(self, execution_id: str, attempt: Cancellable) -> None:
        self._running[execution_id] = attempt

    def finished(self, execution_id: str) -> None:
        self._running.pop(execution_id, None)

    def await_claim(self, token: str) -> asyncio.Future[bool]:
        """The answer to the claim named `token`: True when the attempt may run."""
        answer = self._claims[token] = asyncio.get_running_loop().create_future()
        answer.add_done_callback(lambda _: self._claims.pop(token, None))
        return answer

    def answer(self, answers: ClaimAnswers) -> None:
        for tokens, granted in ((answers.granted, True), (answers.denied, False)):
            for token in tokens:
                waiting = self._claims.get(token)
                if waiting is not None and not waiting.done():
                    waiting.set_result(granted)

    def cancel(self, execution_id: str, by: str) -> None:
        self._cancelled[execution_id] = by
        while len(self._cancelled) > REMEMBERED_CANCELLATIONS:
            self._cancelled.popitem(last=False)
        attempt = self._running.get(execution_id)
        if attempt is not None:
            log.info("cancelling the running attempt of %s (by %s)", execution_id, by)
            attempt.cancel(by, grace=self.grace)

    async def start(self) -> None:
        await self.broker.ensure_subscription(self.topic, self.subscription, ephemeral=True)

    @property
    def name(self) -> str:
        return "control listener"

    async def run(self, stop: asyncio.Event) -> None:
        """Apply control messages until `stop` is set, then drop the subscription (a `Loop`)."""
        try:
            while not stop.is_set():
                await self._receive_once()
        finally:
            await self.broker.drop_subscription(self.subscription)

    async def _receive_once(self) -> None:
        try:
            deliveries = await self.broker.pull(
                self.subscription, 100, lease=CONTROL_LEASE_SECONDS, wait=CONTROL_WAIT_SECONDS
            )
        except Exception:
            log.exception("control: pull failed; retrying in 1 s")
            await asyncio.sleep(1.0)
            await self._ensure_quietly()  # an engine may have let it expire (ephemeral)
            return
        for delivery in deliveries:
            self._apply(delivery.data)
        if deliveries:
            await self.broker.ack(self.subscription, [d.receipt for d in deliveries])

    async def _ensure_quietly(self) -> None:
        try:
            await self.start()
        except Exception as exc:
            log.warning("control: subscription not ensured: %s", exc)

    def _apply(self, data: bytes) -> None:
        try:
            message = decode_control(data)
        except InvalidInput as exc:
            log.error("control: ignoring an undecodable message: %s", exc)
            return
        if isinstance(message, ControlMessage):
            self.cancel(message.execution_id, message.by)
        else:
            self.answer(message)


def _subscription_name(topic: str, node_name: str) -> str:
    node = re.sub(r"[^A-Za-z0-9._-]", "-", node_name)[:100]
    return f"{topic}-{node}-{new_ulid()[-8:]}"
