"""The original's topology on Google's emulators, as real processes:

sublim datastore --store firestore://PROJECT          (Firestore emulator)
sublim api --store grpc://DATASTORE --broker pubsub://PROJECT   (updates by push only)
sublim gcp provision ... --push-endpoint http://API/task_execution_update?token=…
sublim executor tests.e2e.tasks:node  (two of them, on pubsub://PROJECT)
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.api.conftest import ApiProcess, _wait_healthy, free_port
from tests.datastore_process import DatastoreProcess
from tests.e2e.conftest import ExecutorProcesses
from tests.gcp_emulators import fresh_firestore_project, require_pubsub_emulator

ROOT = Path(__file__).resolve().parents[2]
PUSH_TOKEN = "e2e-push-token-0123456789"
#: Pushes answered with an error this often are dead-lettered.
PUSH_MAX_DELIVERIES = 5
TASK_TOPICS = ("Noop", "Nap")
TIMING = {
    "SUBLIM_LEASE_SECONDS": "2",
    "SUBLIM_HEARTBEAT_SECONDS": "0.5",
    "SUBLIM_HEARTBEAT_TIMEOUT_SECONDS": "5",
    "SUBLIM_SWEEP_INTERVAL_SECONDS": "1",
    "SUBLIM_SHUTDOWN_GRACE_SECONDS": "5",
}
UNFINISHED = ("Initialized", "ReadyForDispatch", "Blocked", "Dispatched", "Running")


class FirestoreDatastore(DatastoreProcess):
    """`sublim datastore --store firestore://PROJECT`."""

    def __init__(self, directory: Path, project: str) -> None:
        super().__init__(directory)
        self.project = project

    @property
    def store_url(self) -> str:
        return f"firestore://{self.project}"


def base_env(project: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUBLIM_") and k != "PORT"}
    return env | TIMING | {"PYTHONPATH": str(ROOT), "GOOGLE_PROJECT_ID": project}


def start_api(folder: Path, env: dict[str, str], datastore_url: str, project: str) -> ApiProcess:
    port = free_port()
    log = folder / "api.log"
    command = [sys.executable, "-m", "sublim.cli", "api", "--port", str(port)]
    command += ["--store", datastore_url, "--broker", f"pubsub://{project}"]
    api_env = env | {"SUBLIM_PUSH_TOKEN": PUSH_TOKEN, "SUBLIM_PULL_UPDATES": "false"}
    proc = subprocess.Popen(
        command, cwd=folder, env=api_env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    api = ApiProcess(url=f"http://127.0.0.1:{port}", proc=proc, log=log)
    _wait_healthy(api)
    return api


def provision(env: dict[str, str], api_url: str) -> None:
    endpoint = f"{api_url}/task_execution_update?token={PUSH_TOKEN}"
    topics = [option for topic in TASK_TOPICS for option in ("--topic", topic)]
    command = [sys.executable, "-m", "sublim.cli", "gcp", "provision", *topics]
    result = subprocess.run(
        [*command, "--push-endpoint", endpoint, "--max-deliveries", str(PUSH_MAX_DELIVERIES)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


@dataclass
class GcpStack:
    """The running processes of one test's deployment."""

    project: str
    api: ApiProcess
    executors: ExecutorProcesses
    record_file: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.api.url, timeout=60.0)


@contextmanager
def gcp_stack(folder: Path) -> Iterator[GcpStack]:
    require_pubsub_emulator()
    project = fresh_firestore_project()
    env = base_env(project)
    datastore = FirestoreDatastore(folder, project)
    datastore.start()
    api: ApiProcess | None = None
    executors = ExecutorProcesses(env | executor_env(project, folder), folder)
    try:
        api = start_api(folder, env, datastore.wait_ready(), project)
        provision(env, api.url)
        yield GcpStack(project, api, executors, folder / "ran.txt")
    finally:
        executors.stop_all()
        if api is not None:
            api.stop()
        datastore.stop()
        delete_subscriptions(project)


def delete_subscriptions(project: str) -> None:
    """The emulator keeps pushing to a stopped API forever: delete the project's
    subscriptions (it has no reset)."""
    from google.pubsub_v1 import SubscriberClient

    subscriber = SubscriberClient()
    for subscription in subscriber.list_subscriptions(project=f"projects/{project}"):
        subscriber.delete_subscription(subscription=subscription.name)


def executor_env(project: str, folder: Path) -> dict[str, str]:
    return {
        "SUBLIM_BROKER_URL": f"pubsub://{project}",
        "SUBLIM_TEST_RECORD": str(folder / "ran.txt"),
    }


# Through the HTTP API


async def enqueue(
    client: httpx.AsyncClient, topic: str, payloads: list[dict[str, Any]]
) -> list[str]:
    """Create and enqueue one task per payload (50 requests at a time); execution ids."""
    gate = asyncio.Semaphore(50)

    async def one(payload: dict[str, Any]) -> str:
        async with gate:
            response = await client.post(
                "/v1/tasks", json={"topic": topic, "payload": payload, "execute": True}
            )
        assert response.status_code == 201, response.text
        execution_id: str = response.json()["execution"]["id"]
        return execution_id

    return list(await asyncio.gather(*(one(p) for p in payloads)))


async def executions_of(client: httpx.AsyncClient, topic: str) -> list[dict[str, Any]]:
    """Every execution of `topic`, page by page."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"topic": topic, "limit": 500}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/executions", params=params)).json()
        found.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return found


async def wait_until_finished(
    client: httpx.AsyncClient, topic: str, count: int, timeout: float
) -> list[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        executions = await executions_of(client, topic)
        unfinished = [e for e in executions if e["status"] in UNFINISHED]
        if len(executions) == count and not unfinished:
            return executions
        assert loop.time() < deadline, f"{len(unfinished)} of {count} unfinished"
        await asyncio.sleep(0.5)
