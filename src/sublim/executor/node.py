"""The execution node: consumers pull requests for free worker slots and run them on pools."""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sublim.broker.base import Broker, Delivery
from sublim.config import EventLoopKind
from sublim.core import runner
from sublim.core.loops import Loop, LoopOf, StartedLoops, start_loops
from sublim.core.messages import control_topic
from sublim.core.model import WorkerInfo
from sublim.core.shutdown import stop_on_signals
from sublim.core.task import PoolKind
from sublim.executor.attempt import Attempt, AttemptContext, Consumer
from sublim.executor.control import Control
from sublim.executor.pools import Pool, make_pool
from sublim.executor.reporter import Reporter

log = logging.getLogger("sublim.executor")

#: How long an idle consumer's pull waits for a message, holding one slot.
PULL_WAIT_SECONDS = 1.0
#: The shortest such wait, on a node with many more consumers than slots.
MIN_PULL_WAIT_SECONDS = 0.05
#: On a node with more consumers than slots, while some consumer has work, how long an idle
#: consumer waits before it looks at its subscription again (a pull that does not wait).
IDLE_RECHECK_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Grant:
    """A consumer's turn: pull up to `count` messages, waiting up to `wait` seconds."""

    count: int
    wait: float
    #: Whether the consumer was idle (its last pull brought nothing) when it asked.
    idle: bool


@dataclass(eq=False, slots=True)
class _Waiter:
    """A consumer waiting for its turn. Turns go by `key` (a time), then by arrival."""

    idle: bool
    key: float
    arrival: int
    granted: asyncio.Future[Grant]


def _turn_order(waiter: _Waiter) -> tuple[float, int]:
    return waiter.key, waiter.arrival


class Slots:
    """The node's worker slots, handed to its consumers in turn
    (docs/decisions/020-fair-slots.md).

    A busy consumer (its last pull brought work) takes its share of the free slots, in the
    order the consumers asked. An idle one takes one slot for a waiting pull. With more
    consumers than slots ("scarce"), an idle consumer gives way to busy ones: while any
    consumer is busy it looks again, without waiting, once `IDLE_RECHECK_SECONDS` passed
    (or as soon as the node turns busy), and while none is, idle consumers take turns at
    waiting pulls short enough for each to have one every `PULL_WAIT_SECONDS` or so.
    """

    def __init__(self, size: int, consumers: int) -> None:
        self.size = size
        self.free = size
        self.scarce = consumers > size
        self.idle_wait = _idle_wait(size, consumers)
        #: Consumers whose last pull brought work: all of them until they pulled.
        self._busy = consumers
        self._queue: list[_Waiter] = []
        self._arrivals = itertools.count()
        self._closed = False

    async def take(self, idle: bool) -> Grant:
        """Wait for this consumer's turn; once the node stops, a turn of no slots."""
        if self._closed:
            return Grant(0, 0.0, idle)
        waiter = self._enqueue(idle)
        try:
            return await waiter.granted
        except asyncio.CancelledError:
            self._forfeit(waiter)
            raise

    def pulled(self, grant: Grant, got: int) -> None:
        """After the pull of `grant` brought `got` deliveries: give the unused slots back."""
        self._busy += (got > 0) - (not grant.idle)
        if got and grant.idle and self._busy == 1:
            self._recheck_idle()
        self.give_back(grant.count - got)

    def give_back(self, count: int) -> None:
        self.free += count
        self._hand_out()

    def close(self) -> None:
        """Hand out no more slots: every consumer waiting for a turn gets one of no slots."""
        self._closed = True
        for waiter in self._queue:
            if not waiter.granted.done():
                waiter.granted.set_result(Grant(0, 0.0, waiter.idle))
        self._queue.clear()

    def _enqueue(self, idle: bool) -> _Waiter:
        now = time.monotonic()
        key = now + IDLE_RECHECK_SECONDS if idle else now
        future = asyncio.get_running_loop().create_future()
        waiter = _Waiter(idle, key, next(self._arrivals), future)
        self._queue.append(waiter)
        self._hand_out()
        return waiter

    def _forfeit(self, waiter: _Waiter) -> None:
        """The consumer was cancelled waiting for its turn, or just after it got one."""
        if not waiter.granted.cancel() and not waiter.granted.cancelled():
            self.give_back(waiter.granted.result().count)

    def _recheck_idle(self) -> None:
        """The node turned busy: what idle consumers saw is stale, let them look again now."""
        now = time.monotonic()
        for waiter in self._queue:
            waiter.key = min(waiter.key, now)

    def _hand_out(self) -> None:
        now = time.monotonic()
        while self.free and (waiter := self._next()) and self._may_pull(waiter, now):
            self._queue.remove(waiter)
            grant = self._grant(waiter, now)
            self.free -= grant.count
            waiter.granted.set_result(grant)

    def _next(self) -> _Waiter | None:
        """The first consumer in turn (forgetting those cancelled while they waited)."""
        self._queue = [w for w in self._queue if not w.granted.done()]
        return min(self._queue, key=_turn_order, default=None)

    def _may_pull(self, waiter: _Waiter, now: float) -> bool:
        """Whether `waiter` may have a free slot now (else none behind it may either)."""
        gives_way = self.scarce and waiter.idle and self._busy > 0
        return not gives_way or waiter.key <= now

    def _grant(self, waiter: _Waiter, now: float) -> Grant:
        if not waiter.idle:
            return Grant(self._share(now), 0.0, idle=False)
        looks_only = self.scarce and self._busy > 0
        return Grant(1, 0.0 if looks_only else self.idle_wait, idle=True)

    def _share(self, now: float) -> int:
        """The free slots split evenly between this consumer and those that may pull now."""
        others = sum(self._may_pull(w, now) for w in self._queue)
        return max(1, self.free // (1 + others))


def _idle_wait(size: int, consumers: int) -> float:
    """An idle consumer's waiting pull: shorter with more consumers than slots, so that each
    one's turn comes about every `PULL_WAIT_SECONDS` (never under `MIN_PULL_WAIT_SECONDS`)."""
    if consumers <= size:
        return PULL_WAIT_SECONDS
    return max(MIN_PULL_WAIT_SECONDS, PULL_WAIT_SECONDS * size / consumers)


class ExecutionNode:
    """Runs task types' executions on `workers` slots until stopped (SIGTERM/SIGINT)."""

    def __init__(
        self,
        *,
        broker: Broker,
        consumers: Sequence[Consumer],
        workers: int,
        updates_topic: str,
        lease_seconds: float,
        heartbeat_seconds: float,
        shutdown_grace_seconds: float,
        cancel_grace_seconds: float = 5.0,
        name: str | None = None,
        owns_broker: bool = True,
        event_loop: EventLoopKind = "auto",
    ) -> None:
        self.broker = broker
        self.event_loop: EventLoopKind = event_loop
        self.owns_broker = owns_broker
        self.consumers = list(consumers)
        self.workers = workers
        self.updates_topic = updates_topic
        self.shutdown_grace_seconds = shutdown_grace_seconds
        self.cancel_grace_seconds = cancel_grace_seconds
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self._lease = lease_seconds
        self._heartbeat = heartbeat_seconds
        self._pools: dict[PoolKind, Pool] = {}
        self._attempts: dict[asyncio.Task[None], Attempt] = {}
        self._stopping = asyncio.Event()
        self._slots = Slots(workers, len(self.consumers))

    def use_broker(self, broker: Broker, *, owned: bool) -> None:
        """Consume from `broker` instead (before the node runs); `owned`: close it at the end."""
        self.broker = broker
        self.owns_broker = owned

    def run(self) -> None:
        """Run until SIGTERM or SIGINT, then drain gracefully. Blocks. The event loop is the
        one the settings' `event_loop` names (uvloop where installed)."""
        runner.run(self._run_with_signals(), self.event_loop)

    async def _run_with_signals(self) -> None:
        await self.serve(stop_on_signals())

    async def serve(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set, then shut down gracefully."""
        ctx = await self._start()
        loops = start_loops([*self._consumer_loops(ctx), ctx.control], self._stopping)
        log.info(
            "node %s: %d workers on %s",
            self.name,
            self.workers,
            ", ".join(c.subscription for c in self.consumers),
        )
        await stop.wait()
        await self._shutdown(ctx, loops)

    async def _start(self) -> AttemptContext:
        await self.broker.open()
        for consumer in self.consumers:
            await self.broker.ensure_subscription(consumer.task_type.topic, consumer.subscription)
        for kind in {c.task_type.pool_kind() for c in self.consumers}:
            self._pools[kind] = make_pool(kind, self.workers)
            await self._pools[kind].start()
        worker = WorkerInfo(node=self.name, host=socket.gethostname(), pid=os.getpid())
        reporter = Reporter(self.broker, self.updates_topic)
        control = Control(
            self.broker, control_topic(self.updates_topic), self.name, self.cancel_grace_seconds
        )
        await control.start()
        return AttemptContext(self.broker, reporter, worker, self._lease, self._heartbeat, control)

    def _consumer_loops(self, ctx: AttemptContext) -> list[Loop]:
        return [
            LoopOf(f"consumer of {c.subscription}", functools.partial(self._consume, ctx, c))
            for c in self.consumers
        ]

    async def _consume(self, ctx: AttemptContext, consumer: Consumer, stop: asyncio.Event) -> None:
        """In each of its turns, pull as many requests as the slots granted (see `Slots`)."""
        idle = False
        while not stop.is_set():
            grant = await self._slots.take(idle)
            try:
                deliveries = await self._pull(consumer, grant.count, wait=grant.wait)
            except Exception:
                self._slots.give_back(grant.count)
                log.exception("pull from %s failed; retrying in 1 s", consumer.subscription)
                await asyncio.sleep(1.0)
                continue
            self._slots.pulled(grant, len(deliveries))
            idle = not deliveries
            for delivery in deliveries:
                self._start_attempt(Attempt(ctx, consumer, delivery))

    async def _pull(self, consumer: Consumer, wanted: int, *, wait: float) -> list[Delivery]:
        if self._stopping.is_set() or not wanted:
            return []
        return await self.broker.pull(consumer.subscription, wanted, lease=self._lease, wait=wait)

    def _start_attempt(self, attempt: Attempt) -> None:
        pool = self._pools[attempt.consumer.task_type.pool_kind()]
        task = asyncio.create_task(attempt.run(pool))
        self._attempts[task] = attempt
        task.add_done_callback(self._attempt_done)

    def _attempt_done(self, task: asyncio.Task[None]) -> None:
        self._attempts.pop(task, None)
        self._slots.give_back(1)
        if not task.cancelled() and task.exception() is not None:
            log.error("attempt failed in the executor itself", exc_info=task.exception())

    async def _shutdown(self, ctx: AttemptContext, loops: StartedLoops) -> None:
        self._stopping.set()
        self._slots.close()
        await loops.stop()
        in_flight = list(self._attempts)
        log.info(
            "node %s stopping: %d attempts in flight, %.0f s grace",
            self.name,
            len(in_flight),
            self.shutdown_grace_seconds,
        )
        if in_flight:
            _, late = await asyncio.wait(in_flight, timeout=self.shutdown_grace_seconds)
            await self._release(late)
        for pool in self._pools.values():
            await pool.close(grace=0)
        await ctx.reporter.close()
        if self.owns_broker:
            await self.broker.close()

    async def _release(self, late: set[asyncio.Task[None]]) -> None:
        attempts = [self._attempts[t] for t in late if t in self._attempts]
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        reason = f"released at shutdown after {self.shutdown_grace_seconds:.0f} s grace"
        await asyncio.gather(*(a.release(reason) for a in attempts), return_exceptions=True)
