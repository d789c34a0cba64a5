"""Per-delivery leases over JetStream's per-consumer AckWait, kept by this process.

JetStream redelivers a message AckWait after its delivery or its last in-progress ack; the
protocol wants a lease per delivery instead. So each delivery this process holds has a timer:
while its lease runs it sends in-progress acks every third of AckWait (so a lease longer than
AckWait holds), and when its lease passes it naks the message (so a lease shorter than
AckWait ends on time and the message is redelivered at once). If the process dies, the timers
die with it and JetStream redelivers within AckWait.

JetStream accepts an ack even from a delivery whose message was handed out again since, so
receipts are checked here: a receipt is honoured only while this process holds its delivery.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nats.aio.msg import Msg

log = logging.getLogger("sublim.broker.nats")

#: In-progress acks never go out more often than this, whatever AckWait is.
MIN_KEEPALIVE_INTERVAL = 0.05


@dataclass(slots=True)
class Held:
    """One delivery this process holds."""

    msg: Msg
    #: `loop.time()` when the lease passes.
    deadline: float
    #: When JetStream last heard of it (delivery or in-progress ack), `loop.time()`.
    touched: float
    #: The consumer's AckWait: JetStream redelivers this long after `touched`.
    ack_wait: float
    timer: asyncio.TimerHandle | None = None

    def next_event(self) -> float:
        """When to act next: at the lease's end, or in time to keep JetStream waiting."""
        keepalive = self.touched + max(self.ack_wait / 3, MIN_KEEPALIVE_INTERVAL)
        return min(self.deadline, keepalive)


class Leases:
    """The deliveries this process holds, by receipt, each with its own timer."""

    def __init__(self) -> None:
        self._held: dict[str, Held] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, receipt: str, msg: Msg, *, lease: float, ack_wait: float) -> None:
        now = asyncio.get_running_loop().time()
        held = Held(msg, deadline=now + lease, touched=now, ack_wait=ack_wait)
        self._held[receipt] = held
        self._schedule(receipt, held)

    def take(self, receipt: str) -> Msg | None:
        """Stop holding a delivery (to ack or nak it); None if its receipt is stale."""
        held = self._held.pop(receipt, None)
        if held is None:
            return None
        if held.timer is not None:
            held.timer.cancel()
        return held.msg

    def extend(self, receipt: str, lease: float) -> bool:
        """Move a held delivery's lease end; False if its receipt is stale."""
        held = self._held.get(receipt)
        if held is None:
            return False
        held.deadline = asyncio.get_running_loop().time() + lease
        self._schedule(receipt, held)
        return True

    def forget_all(self) -> None:
        """Stop every timer (closing): JetStream redelivers within AckWait."""
        for receipt in list(self._held):
            self.take(receipt)

    def _schedule(self, receipt: str, held: Held) -> None:
        if held.timer is not None:
            held.timer.cancel()
        loop = asyncio.get_running_loop()
        held.timer = loop.call_at(held.next_event(), self._on_timer, receipt)

    def _on_timer(self, receipt: str) -> None:
        held = self._held.get(receipt)
        if held is None:
            return
        now = asyncio.get_running_loop().time()
        if now >= held.deadline:
            del self._held[receipt]
            self._spawn(held.msg.nak, "nak a delivery whose lease passed")
            return
        held.touched = now
        self._spawn(held.msg.in_progress, "extend a delivery's AckWait")
        self._schedule(receipt, held)

    def _spawn(self, call: Callable[[], Awaitable[None]], what: str) -> None:
        task = asyncio.create_task(_quietly(call, what))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _quietly(call: Callable[[], Awaitable[None]], what: str) -> None:
    """Fire-and-forget acks: when one is lost, JetStream's own AckWait takes over."""
    try:
        await call()
    except Exception as exc:
        log.debug("could not %s: %s", what, exc)
