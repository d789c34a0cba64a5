"""A task whose every attempt kills its executor process is quarantined, not looped on."""

from __future__ import annotations

import asyncio
import subprocess

from sublim.core.model import TaskStatus
from sublim.core.service import Service
from tests.e2e.conftest import ExecutorProcesses
from tests.e2e.flow import enqueue

S = TaskStatus


async def test_a_task_that_keeps_killing_its_executor_ends_in_error_as_poison(
    service: Service, executors: ExecutorProcesses
) -> None:
    [poison] = await enqueue(service, "Crash", [{}])
    stop = asyncio.Event()
    loops = asyncio.gather(service.consume_updates(stop), service.run_sweeper(stop))
    try:
        for _ in range(12):  # an operator (or a supervisor) restarts the dying executor
            process = executors.start()
            if await _finished_before_exit(service, poison, process):
                break
    finally:
        stop.set()
        await loops
    quarantined = await service.get_execution(poison)
    assert quarantined.status == S.ERROR
    assert quarantined.error is not None
    assert quarantined.error.type == "PoisonTask"
    # A worker may die before its Running report leaves it: the lost attempts are named in
    # the reason of the last event, whether or not each one was seen running.
    assert "quarantined as poison" in (quarantined.events[-1].reason or "")
    assert quarantined.attempt == quarantined.max_attempts


async def _finished_before_exit(
    service: Service, execution_id: str, process: subprocess.Popen[bytes]
) -> bool:
    """Watch until the execution finishes (True) or the executor process dies (False)."""
    for _ in range(300):
        if (await service.get_execution(execution_id)).finished:
            return True
        if process.poll() is not None:
            return False
        await asyncio.sleep(0.2)
    raise AssertionError("the executor neither finished the execution nor died")
