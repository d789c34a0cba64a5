"""The API dies after it published an execution request and before it recorded the execution
Dispatched (SIGKILL right inside the publish, tests/e2e/publish_crash.py); a real `sublim api`
then starts, and its sweeper publishes the request again. Only then do two executor nodes of
one worker each start, so that both copies, where two exist, can be taken by two nodes at
once. The execution must still run exactly once, and the event log must show the sweeper's
publish.

One test per broker, each with a SQLite store: `sqlite-broker-file` (the SQLite broker in a
file of its own), `redis`, `nats`, `amqp`, `pubsub` (the emulator), and `postgresql-broker` (a
PostgreSQL broker beside the SQLite store), so that a publish and its record are two steps.
With store and broker on one PostgreSQL database, or in one SQLite file (the embedded
default), an enqueue records the execution Dispatched and its message in one transaction:
there is no gap to die in, which the last test asserts.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sublim.core.backends import broker_from_url, store_from_url
from sublim.core.model import Execution, TaskStatus
from sublim.core.service import ALREADY_HELD
from sublim.store.base import ExecutionQuery
from tests.chaos.audit import concurrent_duplicates, log_problems
from tests.chaos.processes import ApiServer, chaos_env
from tests.chaos.record import Run, read_runs
from tests.e2e.conftest import ROOT, ExecutorProcesses
from tests.e2e.crash_tasks import NODE, Solo
from tests.e2e.deployments import DEPLOYMENTS, Deployment
from tests.gcp_emulators import require_pubsub_emulator, unique_project
from tests.own_engines import free_port
from tests.pg_databases import fresh_database_sync

pytestmark = pytest.mark.timeout(240)

S = TaskStatus
N = 7
#: A run long enough for the second node to take the second copy while the first runs.
RUN_MS = 1500
#: The sweeper publishes what was recorded this long ago and never published.
TIMING = {"SUBLIM_OUTBOX_GRACE_SECONDS": "1", "SUBLIM_SWEEP_INTERVAL_SECONDS": "0.5"}
#: After the execution finished: time for an idle node to take a copy still queued (the
#: lease is 2 s), before the nodes are stopped.
SETTLE_SECONDS = 4.0


@contextmanager
def postgresql_broker(tmp_path: Path) -> Iterator[Deployment]:
    """A SQLite store and a PostgreSQL broker on a fresh database of the shared engine."""
    with fresh_database_sync() as url:
        yield Deployment(f"sqlite:///{tmp_path / 'store.db'}", url)


@contextmanager
def sqlite_broker_file(tmp_path: Path) -> Iterator[Deployment]:
    """A SQLite store, and the SQLite broker in another file (no same-file outbox)."""
    yield Deployment(f"sqlite:///{tmp_path / 'store.db'}", f"sqlite:///{tmp_path / 'broker.db'}")


@contextmanager
def pubsub(tmp_path: Path) -> Iterator[Deployment]:
    """A SQLite store and the Pub/Sub emulator, in a project of the test's own."""
    require_pubsub_emulator()
    yield Deployment(f"sqlite:///{tmp_path / 'store.db'}", f"pubsub://{unique_project('crash')}")


#: Deployments where the publish and the record of Dispatched are two steps.
WITH_A_GAP: dict[str, Callable[[Path], AbstractContextManager[Deployment]]] = {
    "sqlite-broker-file": sqlite_broker_file,
    "redis": DEPLOYMENTS["redis"],
    "nats": DEPLOYMENTS["nats"],
    "amqp": DEPLOYMENTS["amqp"],
    "postgresql-broker": postgresql_broker,
    "pubsub": pubsub,
}


@pytest.mark.parametrize("name", list(WITH_A_GAP))
def test_a_request_the_sweeper_publishes_again_after_the_api_died_runs_once(
    name: str, tmp_path: Path
) -> None:
    with WITH_A_GAP[name](tmp_path) as deployment:
        env = run_env(deployment, tmp_path)
        at_death = crash_right_after_publish(deployment, env)
        assert at_death.status == S.READY_FOR_DISPATCH
        assert [e.status for e in at_death.events] == [S.INITIALIZED, S.READY_FOR_DISPATCH]

        after = recover(deployment, env, tmp_path, at_death.id, wait_for_sweeper=True)

    assert after.execution["status"] == S.PASSED, after.execution["events"]
    assert after.execution["attempt"] == 1
    assert sweeper_events(after.execution), after.execution["events"]
    assert log_problems(after.execution) == []
    assert concurrent_duplicates(after.runs, []) == [], f"two runs at once: {after.runs}"
    assert len(after.runs) == 1, f"ran {len(after.runs)} times: {after.runs}"
    assert after.copies_left == 0, "a copy of the request is still queued, to run again"


@pytest.mark.parametrize("name", ["postgresql", "sqlite"])
def test_on_one_database_the_api_cannot_die_between_publish_and_record(
    name: str, tmp_path: Path
) -> None:
    with DEPLOYMENTS[name](tmp_path) as deployment:
        env = run_env(deployment, tmp_path)
        at_death = crash_right_after_publish(deployment, env)
        # Dead right after the transaction that held both the publish and the record.
        assert at_death.status == S.DISPATCHED

        after = recover(deployment, env, tmp_path, at_death.id, wait_for_sweeper=False)

    assert after.execution["status"] == S.PASSED, after.execution["events"]
    assert sweeper_events(after.execution) == []  # nothing was left for it to publish
    assert log_problems(after.execution) == []
    assert len(after.runs) == 1, f"ran {len(after.runs)} times: {after.runs}"
    assert after.copies_left == 0


# -- the steps --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Aftermath:
    #: The execution at the end, as `GET /v1/executions/{id}` returns it.
    execution: dict[str, Any]
    #: What really ran (tests/chaos/record.py).
    runs: list[Run]
    #: Copies of the request still queued once the nodes stopped.
    copies_left: int


def run_env(deployment: Deployment, folder: Path) -> dict[str, str]:
    """The environment of every process of the test, the chaos suite's timing, and a short
    outbox grace."""
    record = folder / "runs.txt"
    return chaos_env(deployment.store_url, deployment.broker_url, record, workers=1) | TIMING


def crash_right_after_publish(deployment: Deployment, env: dict[str, str]) -> Execution:
    """Run the dying API (tests/e2e/publish_crash.py); the execution as it left it in the store."""
    payload = json.dumps({"n": N, "ms": RUN_MS})
    command = [sys.executable, "-m", "tests.e2e.publish_crash", deployment.store_url]
    command += [deployment.broker_url, Solo.topic, payload]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, f"exit {done.returncode}: {done.stderr[-3000:]}"
    [execution] = asyncio.run(executions_of(deployment.store_url, done.stdout.split()[0]))
    return execution


async def executions_of(store_url: str, task_id: str) -> list[Execution]:
    """A task's executions, with their event logs, read from the store itself."""
    store = store_from_url(store_url)
    await store.open()
    try:
        page = await store.list_executions(ExecutionQuery(task_id=task_id))
        return [await store.get_execution(e.id) for e in page.items]
    finally:
        await store.close()


def recover(
    deployment: Deployment,
    env: dict[str, str],
    folder: Path,
    execution_id: str,
    *,
    wait_for_sweeper: bool,
) -> Aftermath:
    """Start `sublim api`; (once its sweeper has published the request again) two executor
    nodes; wait until the execution finished, and a little more; stop them."""
    api = ApiServer(free_port(), env, folder)
    executors = ExecutorProcesses(env, folder)
    api.start()
    try:
        with httpx.Client(base_url=api.url, timeout=30.0) as http:
            if wait_for_sweeper:
                wait_for(http, execution_id, "published again by the sweeper", sweeper_events)
            executors.start(NODE)
            executors.start(NODE)
            wait_for(http, execution_id, "finished", lambda e: e["finished_at"] is not None)
            time.sleep(SETTLE_SECONDS)
            executors.stop_all()
            execution = http.get(f"/v1/executions/{execution_id}").raise_for_status().json()
    finally:
        executors.stop_all()
        api.stop()
    runs = [run for run in read_runs(folder / "runs.txt") if run.n == N]
    left = asyncio.run(copies_queued(deployment.broker_url, Solo.topic))
    return Aftermath(execution, runs, left)


def wait_for(
    http: httpx.Client,
    execution_id: str,
    what: str,
    done: Callable[[dict[str, Any]], object],
    timeout: float = 90.0,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        execution: dict[str, Any] = (
            http.get(f"/v1/executions/{execution_id}").raise_for_status().json()
        )
        if done(execution):
            return execution
        assert time.monotonic() < deadline, (
            f"not {what} within {timeout} s: {execution['status']}, {execution['events']}"
        )
        time.sleep(0.2)


def sweeper_events(execution: dict[str, Any]) -> list[dict[str, Any]]:
    """The Dispatched events the sweeper's publish recorded: published by it, or found
    already on the broker (a broker that dedupes dropped its copy)."""
    return [
        event
        for event in execution["events"]
        if event["status"] == S.DISPATCHED and _by_the_sweeper(event["reason"] or "")
    ]


def _by_the_sweeper(reason: str) -> bool:
    return "sweeper" in reason or reason == ALREADY_HELD


async def copies_queued(broker_url: str, topic: str) -> int:
    """How many requests of `topic` its subscription still holds (pulled, and left leased)."""
    broker = broker_from_url(broker_url)
    await broker.open()
    try:
        subscription = f"{topic}-sub"
        await broker.ensure_subscription(topic, subscription)
        return len(await broker.pull(subscription, 10, lease=30.0, wait=1.0))
    finally:
        await broker.close()
