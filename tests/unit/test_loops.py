"""Background loops: one protocol, started together and stopped together."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from itertools import pairwise

import pytest

from sublim.broker.memory import MemoryBroker
from sublim.config import Settings
from sublim.core.loops import (
    LoopOf,
    Supervised,
    Sweeper,
    UpdatesConsumer,
    run_loops,
    start_loops,
    stopped_within,
)
from sublim.core.service import Service, SweepReport
from sublim.errors import BrokerError
from sublim.store.memory import MemoryStore


@dataclass
class Counting:
    """Counts its turns, one every `every` seconds, until stopped; fails `fails` times first."""

    name: str = "counting"
    every: float = 0.01
    fails: int = 0
    turns: int = 0
    starts: int = field(default=0)

    async def run(self, stop: asyncio.Event) -> None:
        self.starts += 1
        if self.fails:
            self.fails -= 1
            raise RuntimeError("boom")
        while not await stopped_within(stop, self.every):
            self.turns += 1


async def test_loops_started_together_turn_until_stopped_and_then_return() -> None:
    first, second = Counting("first"), Counting("second")
    loops = start_loops([first, second])
    await asyncio.sleep(0.1)
    await loops.stop()
    turns = (first.turns, second.turns)
    await asyncio.sleep(0.05)
    assert min(turns) > 0
    assert (first.turns, second.turns) == turns  # no turn after stop


async def test_run_loops_returns_once_its_stop_event_is_set() -> None:
    stop = asyncio.Event()
    running = asyncio.create_task(run_loops([Counting(), Counting()], stop))
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(running, timeout=1)


async def test_stopping_with_no_grace_cancels_a_loop_that_does_not_watch_its_stop_event() -> None:
    async def deaf(stop: asyncio.Event) -> None:
        await asyncio.sleep(60)

    loops = start_loops([LoopOf("deaf", deaf)])
    await asyncio.wait_for(loops.stop(grace=0), timeout=1)


async def test_a_loop_that_ends_in_an_error_is_logged_by_name_when_stopped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(stop: asyncio.Event) -> None:
        raise RuntimeError("boom")

    loops = start_loops([LoopOf("broken loop", broken)])
    await loops.stop()
    assert "broken loop ended with an error" in caplog.text


async def test_a_supervised_loop_that_fails_is_started_again_after_its_pause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flaky = Counting("flaky", fails=2)
    loops = start_loops([Supervised(flaky, logging.getLogger("sublim.api"), restart_delay=0.01)])
    await asyncio.sleep(0.2)
    await loops.stop()
    assert flaky.starts == 3
    assert flaky.turns > 0
    assert caplog.text.count("flaky failed; starting it again in 0 s") == 2


async def test_a_supervised_loop_stopped_during_its_pause_is_not_started_again() -> None:
    flaky = Counting("flaky", fails=1)
    loops = start_loops([Supervised(flaky, restart_delay=60)])
    await asyncio.sleep(0.05)
    await asyncio.wait_for(loops.stop(), timeout=1)
    assert flaky.starts == 1


class FailingSweeps(Service):
    sweeps = 0

    async def sweep(self) -> SweepReport:
        self.sweeps += 1
        raise RuntimeError("store down")


async def test_the_sweeper_logs_a_failed_sweep_and_sweeps_again_at_the_next_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings(sweep_interval_seconds=0.01)
    service = FailingSweeps(MemoryStore(), MemoryBroker(), settings)
    loops = start_loops([Sweeper(service)])
    await asyncio.sleep(0.1)
    await loops.stop()
    assert service.sweeps > 1
    assert "sweep failed; trying again in 0 s" in caplog.text


class UnreachableUpdates(Service):
    async def record_updates_once(self, *, batch: int = 500, wait: float = 0) -> int:
        raise BrokerError("broker down")


async def test_the_updates_consumer_pauses_through_an_outage_and_stops_when_asked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = UnreachableUpdates(MemoryStore(), MemoryBroker(), Settings())
    loops = start_loops([UpdatesConsumer(service)])
    await asyncio.sleep(0.05)
    await asyncio.wait_for(loops.stop(), timeout=1)
    assert "recording updates paused: broker down; retrying in 1 s" in caplog.text


class Pulling(Service):
    """Pulls one update per call, as when executors report one at a time; notes each wait."""

    def __init__(self, broker: MemoryBroker, linger: float) -> None:
        super().__init__(MemoryStore(), broker, Settings(record_linger_seconds=linger))
        self.pulls: list[float] = []

    async def record_updates_once(self, *, batch: int = 500, wait: float = 0) -> int:
        self.pulls.append(asyncio.get_running_loop().time())
        await asyncio.sleep(0.001)  # the pull and the record
        return 1


class Undeduping(MemoryBroker):
    dedupes_publish = False


async def pull_times(service: Pulling) -> list[float]:
    loops = start_loops([UpdatesConsumer(service, batch=10)])
    await asyncio.sleep(0.3)
    await asyncio.wait_for(loops.stop(), timeout=1)
    return [later - earlier for earlier, later in pairwise(service.pulls)]


async def test_after_a_partial_batch_the_recorder_lingers_before_it_pulls_again() -> None:
    gaps = await pull_times(Pulling(MemoryBroker(), linger=0.05))
    assert 2 <= len(gaps) <= 7
    assert min(gaps) >= 0.05


async def test_the_recorder_never_lingers_where_nodes_wait_for_claim_answers() -> None:
    gaps = await pull_times(Pulling(Undeduping(), linger=0.05))
    assert len(gaps) > 20
