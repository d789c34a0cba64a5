"""The services as separate processes: `sublim datastore`, `sublim api --store grpc://…` and
two `sublim executor` processes; executions enqueued over HTTP."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import ApiProcess, start_api
from tests.datastore_process import DatastoreProcess
from tests.e2e.conftest import ROOT, ExecutorProcesses
from tests.e2e.flow import runs_per_task


@dataclass
class Topology:
    datastore: DatastoreProcess
    api: ApiProcess
    executors: ExecutorProcesses
    record: Path


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    datastore = DatastoreProcess(tmp_path / "datastore")
    datastore.directory.mkdir()
    datastore.start()
    store_url = datastore.wait_ready()
    api = start_api(tmp_path / "api", {}, store_url=store_url)
    record = tmp_path / "ran.txt"
    executors = ExecutorProcesses(_executor_env(tmp_path / "api", record), tmp_path)
    try:
        yield Topology(datastore, api, executors, record)
    finally:
        executors.stop_all()
        api.stop()
        datastore.stop()


def _executor_env(api_folder: Path, record: Path) -> dict[str, str]:
    broker = f"sqlite:///{api_folder / 'sublim.db'}"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SUBLIM_")}
    return clean | {
        "SUBLIM_BROKER_URL": broker,
        "SUBLIM_TEST_RECORD": str(record),
        "PYTHONPATH": str(ROOT),
    }


async def enqueue_over_http(url: str, count: int, concurrency: int = 16) -> list[str]:
    gate = asyncio.Semaphore(concurrency)
    timeout = httpx.Timeout(60, pool=None)
    async with httpx.AsyncClient(base_url=url, timeout=timeout) as client:

        async def create(n: int) -> httpx.Response:
            async with gate:
                body = {"topic": "Noop", "payload": {"n": n}, "execute": True}
                return await client.post("/v1/tasks", json=body)

        responses = await asyncio.gather(*(create(n) for n in range(count)))
    assert {r.status_code for r in responses} == {201}
    return [r.json()["execution"]["id"] for r in responses]


def wait_until_finished(client: httpx.Client, ids: list[str], timeout: float) -> list[dict]:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while True:
        executions = [client.get(f"/v1/executions/{i}").json() for i in ids]
        if all(e["finished_at"] for e in executions):
            return executions
        assert time.monotonic() < deadline, "executions did not finish in time"
        time.sleep(0.5)


def test_a_thousand_executions_over_http_through_a_remote_datastore_pass_exactly_once(
    topology: Topology,
) -> None:
    topology.executors.start()
    topology.executors.start()
    ids = asyncio.run(enqueue_over_http(topology.api.url, 1000))
    with topology.api.client() as client:
        executions = wait_until_finished(client, ids, timeout=180)
    assert Counter(e["status"] for e in executions) == {"Passed": 1000}
    assert {e["attempt"] for e in executions} == {1}
    assert runs_per_task(topology.record) == Counter(range(1000))
    assert len({e["worker"]["pid"] for e in executions}) == 2  # both executors worked


def test_the_api_answers_503_while_the_datastore_is_down_and_recovers(topology: Topology) -> None:
    with topology.api.client() as client:
        assert client.get("/v1/tasks").status_code == 200
        topology.datastore.stop()
        down = client.get("/v1/tasks")
        assert down.status_code == 503
        assert down.headers["content-type"].startswith("application/problem+json")
        assert int(down.headers["retry-after"]) > 0
        topology.datastore.start()
        topology.datastore.wait_ready()
        for _ in range(60):
            if client.get("/v1/tasks").status_code == 200:
                break
            time.sleep(0.5)
        assert client.get("/v1/tasks").status_code == 200
