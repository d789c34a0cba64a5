"""Real `sublim api` processes on a SQLite store and broker, and HTTP clients for them."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sublim.api.app import create_app
from sublim.core.service import Service

ROOT = Path(__file__).resolve().parents[2]
#: Secrets are 16 characters or more (shorter ones are refused at start).
PUSH_TOKEN = "push-secret-0123456789"
READER, WRITER, BOSS = "reader-0123456789", "writer-0123456789", "boss-0123456789ab"
TOKENS = {READER: ["read"], WRITER: ["write"], BOSS: ["admin"]}
STARTUP_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ApiProcess:
    """A running `sublim api`; `url` is its base URL, `log` its output."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0, **kwargs)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUBLIM_") and k != "PORT"}
    return env | {"PYTHONPATH": str(ROOT)} | extra


def _wait_healthy(api: ApiProcess) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if api.proc.poll() is not None:
            raise RuntimeError(f"sublim api exited: {api.log.read_text()}")
        try:
            if httpx.get(f"{api.url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"sublim api did not answer in {STARTUP_SECONDS} s: {api.log.read_text()}")


def start_api(
    folder: Path,
    env: dict[str, str],
    command: str = "api",
    options: Sequence[str] = (),
    store_url: str | None = None,
) -> ApiProcess:
    """Start `sublim <command> [options]` on a free port with a SQLite broker in `folder` and
    a SQLite store there too, unless `store_url` names another."""
    folder.mkdir(parents=True, exist_ok=True)
    port, db = free_port(), f"sqlite:///{folder / 'sublim.db'}"
    log = folder / f"{command}.log"
    args = [sys.executable, "-m", "sublim.cli", command, *options, "--port", str(port)]
    proc = subprocess.Popen(
        [*args, "--store", store_url or db, "--broker", db],
        cwd=folder,
        env=_clean_env(env),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    api = ApiProcess(url=f"http://127.0.0.1:{port}", proc=proc, log=log)
    try:
        _wait_healthy(api)
    except Exception:
        api.stop()
        raise
    return api


@pytest.fixture(scope="session")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    """One open API (loopback, no tokens) with a push token, shared by the session."""
    process = start_api(tmp_path_factory.mktemp("api"), {"SUBLIM_PUSH_TOKEN": PUSH_TOKEN})
    yield process
    process.stop()


@pytest.fixture(scope="session")
def secured_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    """An API that requires bearer tokens: READER (read), WRITER (write), BOSS (admin)."""
    env = {"SUBLIM_AUTH": "required", "SUBLIM_API_TOKENS": json.dumps(TOKENS)}
    process = start_api(tmp_path_factory.mktemp("secured-api"), env)
    yield process
    process.stop()


@pytest.fixture
def client(api: ApiProcess) -> Iterator[httpx.Client]:
    with api.client() as http:
        yield http


@pytest.fixture
def topic(request: pytest.FixtureRequest) -> str:
    """A topic of this test's own, so that tests sharing one API do not see each other."""
    name = request.node.name.replace("[", "_").replace("]", "").replace("-", "_")
    return f"T{name[:60]}{time.monotonic_ns() % 1_000_000}"


def create_task(client: httpx.Client, topic: str, **fields: Any) -> dict[str, Any]:
    response = client.post("/v1/tasks", json={"topic": topic, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def enqueue(client: httpx.Client, task_id: str) -> dict[str, Any]:
    response = client.post(f"/v1/tasks/{task_id}/executions")
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def push_envelope(update: dict[str, Any], message_id: str = "1") -> dict[str, Any]:
    data = base64.b64encode(json.dumps(update).encode()).decode()
    return {
        "message": {"data": data, "messageId": message_id, "attributes": {}},
        "subscription": "projects/p/subscriptions/TaskExecutionUpdates-push",
    }


def update_of(execution: dict[str, Any], seq: int, status: str, **fields: Any) -> dict[str, Any]:
    return {
        "execution_id": execution["id"],
        "task_id": execution["task_id"],
        "attempt": 1,
        "seq": seq,
        "status": status,
        **fields,
    }


def push(client: httpx.Client, update: dict[str, Any], token: str = PUSH_TOKEN) -> httpx.Response:
    return client.post(f"/task_execution_update?token={token}", json=push_envelope(update))


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is an application/problem+json of `status`, without a traceback."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    assert "Traceback" not in response.text
    return body


@asynccontextmanager
async def in_process_http(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of `create_app(service)` called in this process, as from loopback."""
    app = create_app(service, service.settings, manage_service=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client
