"""Background loops on one small protocol: a `Loop` has a name and runs until its stop event
is set. `run_loops` runs a set of them to the end; `start_loops` starts them as tasks and its
`stop` ends them together. `Supervised` starts a failed loop again after a pause.

The service's loops are here, one class each: the `Sweeper` and the `UpdatesConsumer` (the
API runs both, `sublim.api.app.background_loops`). The executor's are its consumers and its
`Control` listener (`sublim.executor`; an attempt's heartbeat is a timer, not a loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from sublim.errors import BackendError

if TYPE_CHECKING:
    from sublim.core.service import Service

log = logging.getLogger("sublim.loops")

#: The pause before a `Supervised` loop that failed is started again.
RESTART_DELAY_SECONDS = 1.0


class Loop(Protocol):
    """A background loop: runs until `stop` is set, then returns (soon)."""

    @property
    def name(self) -> str: ...

    async def run(self, stop: asyncio.Event) -> None: ...


async def stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Wait until `stop` is set or `seconds` have passed; whether it is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()


async def run_loops(loops: Iterable[Loop], stop: asyncio.Event) -> None:
    """Run every loop until `stop` is set and each has returned."""
    await asyncio.gather(*(loop.run(stop) for loop in loops))


class StartedLoops:
    """Loops running as tasks, ended together by `stop`."""

    def __init__(self, loops: Iterable[Loop], stop: asyncio.Event) -> None:
        self._stop = stop
        self._tasks = {asyncio.create_task(loop.run(stop), name=loop.name): loop for loop in loops}

    async def stop(self, *, grace: float | None = None) -> None:
        """Set the stop event and wait for every loop to return; with `grace`, cancel those
        still running after `grace` seconds (0: at once). A loop's error is logged."""
        self._stop.set()
        tasks = list(self._tasks)
        if grace is not None and tasks:
            _, late = await asyncio.wait(tasks, timeout=grace) if grace > 0 else ((), tasks)
            for task in late:
                task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for task, result in zip(tasks, results, strict=True):
            if isinstance(result, Exception):
                log.warning("%s ended with an error: %r", self._tasks[task].name, result)


def start_loops(loops: Iterable[Loop], stop: asyncio.Event | None = None) -> StartedLoops:
    """Start the loops as tasks, sharing `stop` (a new event when None)."""
    return StartedLoops(loops, stop if stop is not None else asyncio.Event())


@dataclass(frozen=True, slots=True)
class LoopOf:
    """A loop made of a named function of the stop event."""

    name: str
    body: Callable[[asyncio.Event], Awaitable[None]]

    async def run(self, stop: asyncio.Event) -> None:
        await self.body(stop)


@dataclass(frozen=True, slots=True)
class Supervised:
    """`loop`, started again `restart_delay` seconds after it fails, until `stop` is set."""

    loop: Loop
    logger: logging.Logger = log
    restart_delay: float = RESTART_DELAY_SECONDS

    @property
    def name(self) -> str:
        return self.loop.name

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.loop.run(stop)
            except Exception:
                self.logger.exception(
                    "%s failed; starting it again in %.0f s", self.name, self.restart_delay
                )
                await stopped_within(stop, self.restart_delay)


# -- the service's loops -------------------------------------------------------------------------

service_log = logging.getLogger("sublim.service")


@dataclass(frozen=True, slots=True)
class Sweeper:
    """Sweeps the service every `sweep_interval_seconds` (see `Service.sweep`); a failed
    sweep is logged and tried again at the next interval."""

    service: Service
    name: str = "sweeper"

    async def run(self, stop: asyncio.Event) -> None:
        interval = self.service.settings.sweep_interval_seconds
        while not stop.is_set():
            try:
                await self.service.sweep()
            except Exception:
                service_log.exception("sweep failed; trying again in %.0f s", interval)
            await stopped_within(stop, interval)


#: How long an updates consumer's pull waits for updates, and its pause after an outage.
UPDATES_PULL_WAIT_SECONDS = 0.5
UPDATES_OUTAGE_PAUSE_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class UpdatesConsumer:
    """Records the executors' updates pulled from the updates topic. Through an outage of
    an engine it pauses: unacked updates are redelivered once it is back, nothing is lost.

    After a partial batch it lingers `record_linger_seconds` before it pulls again, so that
    updates arriving one at a time are recorded a few per transaction
    (docs/decisions/036-record-linger.md); never where nodes wait for their claims' answers
    (brokers that cannot dedupe), which must not wait longer.
    """

    service: Service
    batch: int = 500
    name: str = "updates consumer"

    def _linger(self) -> float:
        if not self.service.broker.dedupes_publish:
            return 0.0
        return self.service.settings.record_linger_seconds

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                pulled = await self.service.record_updates_once(
                    batch=self.batch, wait=UPDATES_PULL_WAIT_SECONDS
                )
                if 0 < pulled < self.batch and (linger := self._linger()) > 0:
                    await stopped_within(stop, linger)
            except BackendError as exc:
                service_log.warning("recording updates paused: %s; retrying in 1 s", exc)
                await stopped_within(stop, UPDATES_OUTAGE_PAUSE_SECONDS)
