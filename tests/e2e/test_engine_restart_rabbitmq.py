"""RabbitMQ restarted mid-run: every execution still passes once, nothing is lost.

The test starts a RabbitMQ node of its own (the shared engine is never restarted), runs
executors on it and restarts it while they work. Attempts in flight when the connection drops
are requeued by RabbitMQ and delivered again (an ack sent just before the node stopped can be
lost too: AMQP acks are not confirmed), so a task body may run again, at most once per slot that
was busy; no execution is lost, and none records two outcomes.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from sublim.core.model import Execution, TaskStatus
from sublim.core.service import Service
from tests.e2e.conftest import ExecutorProcesses
from tests.e2e.deployments import Deployment
from tests.e2e.flow import enqueue, runs_per_task, wait_until_finished
from tests.rabbitmq import OwnRabbitNode, own_rabbit_node

S = TaskStatus
TASKS = 400
#: Slots of the executor (tests/e2e/tasks.py): at most this many attempts are in flight.
WORKERS = 8


@pytest.fixture
def rabbit_node(tmp_path: Path) -> Iterator[OwnRabbitNode]:
    with own_rabbit_node(tmp_path / "rabbitmq") as node:
        yield node


@pytest.fixture
def deployment(rabbit_node: OwnRabbitNode, tmp_path: Path) -> Deployment:
    """Overrides the parametrized deployments: a SQLite store and this test's own node."""
    broker_url = f"{rabbit_node.url}?reconnect_interval=0.5"
    return Deployment(f"sqlite:///{tmp_path / 'sublim.db'}", broker_url)


def runs_recorded(record_file: Path) -> int:
    return len(record_file.read_text().splitlines()) if record_file.exists() else 0


async def wait_for_runs(record_file: Path, at_least: int) -> None:
    for _ in range(600):
        if await asyncio.to_thread(runs_recorded, record_file) >= at_least:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} runs were recorded")


def restart(node: OwnRabbitNode) -> None:
    node.stop()
    node.start()


def passes(execution: Execution) -> int:
    return sum(event.status == S.PASSED for event in execution.events)


async def test_a_restart_of_rabbitmq_mid_run_loses_and_duplicates_nothing(
    service: Service,
    executors: ExecutorProcesses,
    record_file: Path,
    rabbit_node: OwnRabbitNode,
    tmp_path: Path,
) -> None:
    executors.start()
    ids = await enqueue(service, "Nap", [{"n": n, "seconds": 0.1} for n in range(TASKS)])
    finished = asyncio.create_task(wait_until_finished(service, ids, timeout=120))
    await wait_for_runs(record_file, at_least=40)

    await asyncio.to_thread(restart, rabbit_node)
    executions = await finished

    assert Counter(e.status for e in executions) == {S.PASSED: TASKS}
    assert all(passes(e) == 1 for e in executions)
    runs = runs_per_task(record_file)
    assert set(runs) == set(range(TASKS)), "some task never ran"
    reruns = sum(runs.values()) - TASKS
    assert reruns <= WORKERS, f"{reruns} re-runs: more than the attempts in flight at the restart"
    assert "RabbitMQ connection restored" in (tmp_path / "executor-0.log").read_text()
