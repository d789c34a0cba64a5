"""SIGTERM drains an executor: short work finishes, long work is released and redelivered."""

from __future__ import annotations

import signal

from sublim.core.model import TaskStatus
from sublim.core.service import Service
from tests.e2e.conftest import ExecutorProcesses
from tests.e2e.flow import enqueue, wait_for_running, wait_until_finished

S = TaskStatus


async def test_sigterm_finishes_short_attempts_and_releases_long_ones(
    service: Service, executors: ExecutorProcesses
) -> None:
    executors.env["SUBLIM_SHUTDOWN_GRACE_SECONDS"] = "1.0"
    first = executors.start()
    short = await enqueue(service, "Nap", [{"n": n, "seconds": 0.3} for n in range(3)])
    long = await enqueue(service, "Nap", [{"n": 100 + n, "seconds": 4.0} for n in range(3)])
    await wait_for_running(service, short + long, at_least=6)
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=20) == 0
    # Record what the node said as it left before any sweep can judge its silence.
    await service.record_pending_updates()
    executors.start()
    executions = {e.id: e for e in await wait_until_finished(service, short + long, timeout=60)}
    assert {executions[i].status for i in short + long} == {S.PASSED}
    assert all(executions[i].attempt == 1 for i in short)
    for execution_id in long:
        released = [ev for ev in executions[execution_id].events if ev.status == S.INCOMPLETE]
        assert released, "a long attempt was not released at shutdown"
        assert "released at shutdown" in (released[0].reason or "")
        assert executions[execution_id].attempt == 2
