"""The execution node: consumers pull requests for free worker slots and run them on pools."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Sequence

from sublim.broker.base import Broker, Delivery
from sublim.executor.attempt import Attempt, AttemptContext, Consumer
from sublim.executor.control import Control
from sublim.executor.pools import Pool, make_pool
from sublim.executor.reporter import Reporter
from sublim.messages import control_topic
from sublim.model import WorkerInfo
from sublim.task import PoolKind

log = logging.getLogger("sublim.executor")

PULL_WAIT_SECONDS = 1.0


class Slots:
    """The node's free worker slots, shared by its consumers."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.free = size
        self._freed = asyncio.Event()

    async def take_up_to(self, wanted: int) -> int:
        """Wait for at least one free slot, then take as many as free, up to `wanted`."""
        while self.free == 0:
            self._freed.clear()
            await self._freed.wait()
        taken = min(wanted, self.free)
        self.free -= taken
        return taken

    def give_back(self, count: int) -> None:
        self.free += count
        self._freed.set()


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
    ) -> None:
        self.broker = broker
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

    def use_broker(self, broker: Broker, *, owned: bool) -> None:
        """Consume from `broker` instead (before the node runs); `owned`: close it at the end."""
        self.broker = broker
        self.owns_broker = owned

    def run(self) -> None:
        """Run until SIGTERM or SIGINT, then drain gracefully. Blocks."""
        asyncio.run(self._run_with_signals())

    async def _run_with_signals(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await self.serve(stop)

    async def serve(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set, then shut down gracefully."""
        ctx = await self._start()
        slots = Slots(self.workers)
        loops = [asyncio.create_task(self._consume(ctx, c, slots)) for c in self.consumers]
        loops.append(asyncio.create_task(ctx.control.listen(self._stopping)))
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
        return AttemptContext(
            self.broker, reporter, worker, self._lease, self._heartbeat, control
        )

    async def _consume(self, ctx: AttemptContext, consumer: Consumer, slots: Slots) -> None:
        """Pull as many requests as there are free slots. While the subscription is idle,
        wait for the next message holding one slot only, so other consumers keep theirs."""
        idle = False
        while not self._stopping.is_set():
            wanted = await slots.take_up_to(1 if idle else slots.size)
            try:
                deliveries = await self._pull(
                    consumer, wanted, wait=PULL_WAIT_SECONDS if idle else 0
                )
            except Exception:
                slots.give_back(wanted)
                log.exception("pull from %s failed; retrying in 1 s", consumer.subscription)
                await asyncio.sleep(1.0)
                continue
            slots.give_back(wanted - len(deliveries))
            idle = not deliveries
            for delivery in deliveries:
                self._start_attempt(Attempt(ctx, consumer, delivery), slots)

    async def _pull(self, consumer: Consumer, wanted: int, *, wait: float) -> list[Delivery]:
        if self._stopping.is_set():
            return []
        return await self.broker.pull(consumer.subscription, wanted, lease=self._lease, wait=wait)

    def _start_attempt(self, attempt: Attempt, slots: Slots) -> None:
        pool = self._pools[attempt.consumer.task_type.pool_kind()]
        task = asyncio.create_task(attempt.run(pool))
        self._attempts[task] = attempt
        task.add_done_callback(lambda t: self._attempt_done(t, slots))

    def _attempt_done(self, task: asyncio.Task[None], slots: Slots) -> None:
        self._attempts.pop(task, None)
        slots.give_back(1)
        if not task.cancelled() and task.exception() is not None:
            log.error("attempt failed in the executor itself", exc_info=task.exception())

    async def _shutdown(self, ctx: AttemptContext, loops: list[asyncio.Task[None]]) -> None:
        self._stopping.set()
        await asyncio.gather(*loops, return_exceptions=True)
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
