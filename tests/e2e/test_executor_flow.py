"""End to end on each deployment: real executor processes, its store and its broker."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sublim.core.model import TaskStatus
from sublim.core.service import Service
from tests.e2e.conftest import ExecutorProcesses
from tests.e2e.flow import enqueue, runs_per_task, wait_for_running, wait_until_finished

S = TaskStatus
HAPPY_PATHS = (
    [S.INITIALIZED, S.READY_FOR_DISPATCH, S.DISPATCHED, S.RUNNING, S.PASSED],
    # the worker's Running may be recorded before the publish is
    [S.INITIALIZED, S.READY_FOR_DISPATCH, S.RUNNING, S.PASSED],
)


async def test_a_thousand_executions_each_pass_exactly_once(
    service: Service, executors: ExecutorProcesses, record_file: Path
) -> None:
    executors.start()
    ids = await enqueue(service, "Noop", [{"n": n} for n in range(1000)])
    executions = await wait_until_finished(service, ids, timeout=120)
    assert Counter(e.status for e in executions) == {S.PASSED: 1000}
    assert all(e.attempt == 1 for e in executions)
    assert all([ev.status for ev in e.events] in HAPPY_PATHS for e in executions)
    assert sorted(e.result["n"] for e in executions) == list(range(1000))
    assert runs_per_task(record_file) == Counter(range(1000))


async def test_killing_an_executor_mid_run_redelivers_its_attempts(
    service: Service, executors: ExecutorProcesses, record_file: Path
) -> None:
    first = executors.start()
    ids = await enqueue(service, "Nap", [{"n": n, "seconds": 1.5} for n in range(16)])
    await wait_for_running(service, ids, at_least=4)
    first.kill()  # SIGKILL: no chance to release anything
    first.wait()
    executors.start()
    executions = await wait_until_finished(service, ids, timeout=90)
    assert Counter(e.status for e in executions) == {S.PASSED: 16}
    interrupted = [e for e in executions if e.attempt > 1]
    assert interrupted, "the kill interrupted no attempt"
    for execution in interrupted:
        statuses = [(ev.status, ev.attempt) for ev in execution.events]
        assert (S.INCOMPLETE, 1) in statuses
        assert statuses[-1] == (S.PASSED, execution.attempt)
    assert set(runs_per_task(record_file)) == set(range(16))
