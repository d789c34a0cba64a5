"""Per-delivery leases kept in this process, over an engine that only knows a coarser
deadline (Pub/Sub's ack deadline, NATS's AckWait) or none (RabbitMQ): one `LeaseTable` for
the three."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

H = TypeVar("H")

#: Renewals of an engine's deadline are sent this long before it passes, at least.
MIN_RENEW_MARGIN = 0.5
#: ... and at most (a window of 600 s is renewed 10 s before its end).
MAX_RENEW_MARGIN = 10.0


def renew_margin(engine_window: float) -> float:
    """How long before the engine's own deadline to renew it: a fifth of the window."""
    return min(max(engine_window / 5, MIN_RENEW_MARGIN), MAX_RENEW_MARGIN)


@dataclass(slots=True)
class KeptLease(Generic[H]):
    """One delivery this process holds: the engine's `handle` of it and two deadlines."""

    handle: H
    #: `loop.time()` when the lease passes and the message must be released.
    deadline: float
    #: `loop.time()` when the engine redelivers unless it hears from us first (inf: never).
    engine_until: float
    #: The engine's window as last set: `engine_until` is that long after we last told it.
    engine_window: float
    timer: asyncio.TimerHandle | None = None


def renew_before_the_engine(kept: KeptLease[Any]) -> float:
    """When to renew the engine's deadline (Pub/Sub): `renew_margin` of what is left of it,
    before it passes."""
    left = max(kept.engine_until - time_of_loop(), 0.0)
    return kept.engine_until - renew_margin(left)


def time_of_loop() -> float:
    return asyncio.get_running_loop().time()


class LeaseTable(Generic[H]):
    """Per-delivery leases, by receipt, each with a timer, for the engines that do not keep
    a lease per delivery (RabbitMQ, NATS JetStream, Pub/Sub). When a lease passes, `expire`
    is called with its handle (the engine should redeliver it now). When the engine's own
    deadline (`engine_window` after a delivery or a renewal; none by default) comes due
    while the lease runs on, at the time `renew_at` says, `renew` is called with the
    receipt, the handle and the seconds left, and must answer with `renewed`,
    `retry_renewal` or `take`. A receipt not in the table is stale."""

    def __init__(
        self,
        expire: Callable[[H], None],
        renew: Callable[[str, H, float], None] | None = None,
        *,
        renew_at: Callable[[KeptLease[H]], float] = renew_before_the_engine,
    ) -> None:
        self._leases: dict[str, KeptLease[H]] = {}
        self._expire = expire
        self._renew = renew
        self._renew_at = renew_at

    def __len__(self) -> int:
        return len(self._leases)

    def hold(
        self, receipt: str, handle: H, *, lease: float, engine_window: float = math.inf
    ) -> None:
        now = time_of_loop()
        kept = KeptLease(handle, now + lease, now + engine_window, engine_window)
        self._leases[receipt] = kept
        self._schedule(receipt, kept)

    def get(self, receipt: str) -> H | None:
        kept = self._leases.get(receipt)
        return None if kept is None else kept.handle

    def take(self, receipt: str) -> H | None:
        """Stop holding a delivery (acked, released or lost); None if its receipt is stale."""
        kept = self._leases.pop(receipt, None)
        if kept is None:
            return None
        if kept.timer is not None:
            kept.timer.cancel()
        return kept.handle

    def extend(self, receipt: str, *, lease: float, engine_window: float | None = None) -> bool:
        """The lease runs `lease` seconds from now; the engine was told `engine_window` (None:
        the engine was not told, so its deadline stands and is renewed in time). False if the
        receipt is stale."""
        kept = self._leases.get(receipt)
        if kept is None:
            return False
        now = time_of_loop()
        kept.deadline = now + lease
        if engine_window is not None:
            kept.engine_until, kept.engine_window = now + engine_window, engine_window
        self._schedule(receipt, kept)
        return True

    def renewed(self, receipt: str, engine_window: float | None = None) -> None:
        """The engine was told: its deadline is `engine_window` (by default the last one) away."""
        kept = self._leases.get(receipt)
        if kept is not None:
            if engine_window is not None:
                kept.engine_window = engine_window
            kept.engine_until = time_of_loop() + kept.engine_window
            self._schedule(receipt, kept)

    def retry_renewal(self, receipt: str, after: float) -> None:
        kept = self._leases.get(receipt)
        if kept is not None:
            self._schedule(receipt, kept, at=min(time_of_loop() + after, kept.deadline))

    def receipts_where(self, holds: Callable[[H], bool]) -> list[str]:
        return [receipt for receipt, kept in self._leases.items() if holds(kept.handle)]

    def forget_all(self) -> None:
        """Stop every timer (closing): the engine redelivers at its own deadline."""
        for receipt in list(self._leases):
            self.take(receipt)

    def _schedule(self, receipt: str, kept: KeptLease[H], at: float | None = None) -> None:
        if kept.timer is not None:
            kept.timer.cancel()
        when = min(kept.deadline, self._renew_at(kept)) if at is None else at
        kept.timer = asyncio.get_running_loop().call_at(when, self._on_timer, receipt)

    def _on_timer(self, receipt: str) -> None:
        kept = self._leases.get(receipt)
        if kept is None:
            return
        left = kept.deadline - time_of_loop()
        if left <= 0:
            self.take(receipt)
            self._expire(kept.handle)
            return
        kept.timer = None
        if self._renew is None:  # an engine without a deadline of its own: never due
            self._schedule(receipt, kept)
        else:
            self._renew(receipt, kept.handle, left)


def spawn(tasks: set[asyncio.Task[None]], work: Coroutine[Any, Any, None]) -> None:
    """Run `work` in the background, kept in `tasks` until done (a lease's timer cannot
    await its release or renewal)."""
    task = asyncio.create_task(work)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
