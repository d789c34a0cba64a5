"""The engine restart scenario, shared by the engines that have one: executor processes work
through a run while the test kills its own engine server and starts it again."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

from sublim.api.app import run_background_loops
from sublim.core.model import TaskStatus
from sublim.core.service import Service
from tests.e2e.conftest import ExecutorProcesses
from tests.e2e.flow import enqueue, runs_per_task
from tests.own_engines import OwnEngine

S = TaskStatus
EXECUTIONS = 300
NAP_SECONDS = 0.1


@contextlib.asynccontextmanager
async def background_loops(service: Service) -> AsyncIterator[None]:
    """The API's updates consumer and sweeper, restarted after failures as in production."""
    stop = asyncio.Event()
    loops = asyncio.create_task(run_background_loops(service, stop))
    try:
        yield
    finally:
        stop.set()
        await loops


async def count_passed(service: Service, ids: list[str]) -> int:
    executions = [await service.get_execution(i) for i in ids]
    return sum(e.status == S.PASSED for e in executions)


async def wait_for_passed(service: Service, ids: list[str], at_least: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (passed := await count_passed(service, ids)) < at_least:
        assert time.monotonic() < deadline, f"only {passed} of {len(ids)} passed in {timeout} s"
        await asyncio.sleep(0.1)


async def run_through_a_restart(
    engine: OwnEngine, service: Service, executors: ExecutorProcesses, record_file: Path
) -> None:
    """Start two executors and a run, restart the engine a fifth of the way through, and
    check that every execution passed exactly once (in the store) and ran at least once."""
    executors.start()
    executors.start()
    payloads = [{"n": n, "seconds": NAP_SECONDS} for n in range(EXECUTIONS)]
    ids = await enqueue(service, "Nap", payloads)
    async with background_loops(service):
        await wait_for_passed(service, ids, at_least=EXECUTIONS // 5, timeout=60)
        assert await count_passed(service, ids) < EXECUTIONS, "the run ended before the restart"
        await asyncio.to_thread(engine.restart)
        await wait_for_passed(service, ids, at_least=EXECUTIONS, timeout=120)
    executions = [await service.get_execution(i) for i in ids]
    assert Counter(e.status for e in executions) == {S.PASSED: EXECUTIONS}
    assert all(sum(ev.status == S.PASSED for ev in e.events) == 1 for e in executions)
    assert sorted(e.result["n"] for e in executions) == list(range(EXECUTIONS))
    # At least once: a delivery whose ack the restart lost runs again (its update is refused,
    # the execution having passed); the store records each execution passed exactly once.
    assert set(runs_per_task(record_file)) == set(range(EXECUTIONS))
