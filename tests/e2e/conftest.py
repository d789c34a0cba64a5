"""Real executor processes on a SQLite store and broker in a temporary folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sublim.config import Settings
from sublim.core.service import Service
from tests.e2e.deployments import DEPLOYMENTS, Deployment

ROOT = Path(__file__).resolve().parents[2]


class ExecutorProcesses:
    """Starts `sublim executor` processes and ends them when the test ends."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, node: str = "tests.e2e.tasks:node") -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"executor-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "sublim.cli", "executor", node],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(params=sorted(DEPLOYMENTS))
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    with DEPLOYMENTS[request.param](tmp_path) as made:
        yield made


@pytest.fixture
def record_file(tmp_path: Path) -> Path:
    return tmp_path / "ran.txt"


@pytest.fixture
def e2e_settings(deployment: Deployment) -> Settings:
    return Settings(
        store_url=deployment.store_url,
        broker_url=deployment.broker_url,
        lease_seconds=2.0,
        heartbeat_seconds=0.5,
        heartbeat_timeout_seconds=3.0,
        sweep_interval_seconds=0.5,
        shutdown_grace_seconds=5.0,
    )


@pytest.fixture
def executors(
    e2e_settings: Settings, record_file: Path, tmp_path: Path
) -> Iterator[ExecutorProcesses]:
    env = dict(os.environ)
    env.update(
        {
            "SUBLIM_BROKER_URL": e2e_settings.broker_url,
            "SUBLIM_STORE_URL": e2e_settings.store_url,
            "SUBLIM_LEASE_SECONDS": str(e2e_settings.lease_seconds),
            "SUBLIM_HEARTBEAT_SECONDS": str(e2e_settings.heartbeat_seconds),
            "SUBLIM_SHUTDOWN_GRACE_SECONDS": str(e2e_settings.shutdown_grace_seconds),
            "SUBLIM_TEST_RECORD": str(record_file),
            "PYTHONPATH": str(ROOT),
        }
    )
    processes = ExecutorProcesses(env, tmp_path)
    yield processes
    processes.stop_all()


@pytest.fixture
async def service(e2e_settings: Settings) -> AsyncIterator[Service]:
    async with Service.from_settings(e2e_settings) as svc:
        yield svc
