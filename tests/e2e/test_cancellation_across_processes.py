"""A cancellation made through the service reaches a running attempt in another process."""

from __future__ import annotations

from pathlib import Path

from sublim.core.model import TaskStatus
from sublim.core.service import Service
from tests.e2e.conftest import ExecutorProcesses
from tests.e2e.flow import enqueue, runs_per_task, wait_for_running, wait_until_finished

S = TaskStatus


async def test_a_running_attempt_in_an_executor_process_is_stopped_by_a_cancel(
    service: Service, executors: ExecutorProcesses, record_file: Path
) -> None:
    executors.start()
    [long] = await enqueue(service, "Nap", [{"n": 1, "seconds": 20}])
    await wait_for_running(service, [long], at_least=1)
    await service.cancel(long, by="carol")
    [short] = await enqueue(service, "Nap", [{"n": 2, "seconds": 0.1}])
    executions = await wait_until_finished(service, [long, short], timeout=30)
    cancelled = executions[0]
    assert cancelled.status == S.CANCELLED
    assert cancelled.events[-1].reason == "cancelled by carol"
    assert runs_per_task(record_file) == {2: 1}  # the long nap never completed
