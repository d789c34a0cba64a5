"""The chaos driver: on a schedule drawn in advance, kill a random executor with SIGKILL (and
start a replacement), kill the API and start it again on its port, kill the engine and start
it again on its port and data."""

from __future__ import annotations

import asyncio
import random
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.chaos.audit import Chaos
from tests.chaos.processes import ApiServer, Executors
from tests.chaos.record import Kill, read_runs
from tests.own_engines import OwnEngine

#: How long an executor kill waits for an executor that is running an attempt.
BUSY_WAIT_SECONDS = 5.0

#: When (seconds from the start of the plan) and what: executor, api or engine.
Step = tuple[float, str]


@dataclass(frozen=True)
class Plan:
    """When things are killed, in seconds from the start of the run."""

    seconds: float = 20.0
    kill_every: tuple[float, float] = (2.0, 4.0)
    api_restarts_at: tuple[float, ...] = (4.0, 13.0)
    engine_restarts_at: tuple[float, ...] = (8.5,)

    def schedule(self, rng: random.Random, *, with_engine: bool) -> list[Step]:
        at, actions = rng.uniform(*self.kill_every), []
        while at < self.seconds:
            actions.append((at, "executor"))
            at += rng.uniform(*self.kill_every)
        actions += [(at, "api") for at in self.api_restarts_at]
        if with_engine:
            actions += [(at, "engine") for at in self.engine_restarts_at]
        return sorted(actions)


@dataclass
class Driver:
    api: ApiServer
    executors: Executors
    engine: OwnEngine | None
    rng: random.Random
    #: The record file of the runs, to tell busy executors from idle ones.
    record: Path
    kills: list[Kill] = field(default_factory=list)
    api_restarts: int = 0
    engine_restarts: int = 0
    #: What was done when: (seconds from the start of the plan, what).
    timeline: list[tuple[float, str]] = field(default_factory=list)

    def chaos(self) -> Chaos:
        return Chaos(tuple(self.kills), self.api_restarts, self.engine_restarts)

    async def run(self, plan: Plan, stop: asyncio.Event) -> None:
        """Once the executors have started working, carry out the plan until it ends or
        `stop` is set (never midway through a step). Each kind of action keeps its own
        time, so a slow API restart does not hold back the executor kills."""
        if not await self._work_started(stop):
            return
        began = time.monotonic()
        schedule = plan.schedule(self.rng, with_engine=self.engine is not None)
        kinds = sorted({action for _, action in schedule})
        lanes = [[step for step in schedule if step[1] == kind] for kind in kinds]
        await asyncio.gather(*(self._lane(steps, began, stop) for steps in lanes))

    async def _lane(self, steps: list[Step], began: float, stop: asyncio.Event) -> None:
        for at, action in steps:
            delay = began + at - time.monotonic()
            if delay > 0 and await _stopped_within(stop, delay):
                return
            await asyncio.to_thread(self._action(action))
            self.timeline.append((round(time.monotonic() - began, 2), self._done(action)))

    def _done(self, action: str) -> str:
        if action == "executor":
            return f"killed executor {self.kills[-1].pid}"
        return f"{action} restarted"

    async def _work_started(self, stop: asyncio.Event) -> bool:
        """Wait until a run has started (executors start slowly on a loaded machine); False
        if `stop` came first."""
        while not read_runs(self.record):
            if await _stopped_within(stop, 0.1):
                return False
        return True

    def _action(self, name: str) -> Callable[[], None]:
        actions = {
            "executor": self.kill_an_executor,
            "api": self.restart_api,
            "engine": self.restart_engine,
        }
        return actions[name]

    def kill_an_executor(self) -> None:
        """SIGKILL an executor, one running attempts if any is within a few seconds, and start
        another. (Waiting for a busy one keeps kills from all landing on idle executors while
        a loaded machine, or an API restart, holds attempts back.)"""
        victim = self._busy_executor(time.monotonic() + BUSY_WAIT_SECONDS)
        # The moment of the signal, taken before it is sent: a broker that sees the dead
        # connection may redeliver within a millisecond, before `wait()` even returns, and
        # nothing of the victim runs after this moment.
        killed_at = time.time()
        victim.kill()
        victim.wait()
        self.kills.append(Kill(victim.pid, killed_at))
        self.executors.start_chaos_node()

    def _busy_executor(self, deadline: float) -> subprocess.Popen[bytes]:
        """A live executor running an attempt, waiting for one until `deadline`; then any."""
        while True:
            alive = self.executors.alive()
            busy = {run.pid for run in read_runs(self.record) if run.end is None}
            running = [p for p in alive if p.pid in busy]
            if running or time.monotonic() >= deadline:
                return self.rng.choice(running or alive)
            time.sleep(0.05)

    def restart_api(self) -> None:
        self.api.kill()
        self.api.start()
        self.api_restarts += 1

    def restart_engine(self) -> None:
        assert self.engine is not None
        self.engine.restart()
        self.engine_restarts += 1


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True
