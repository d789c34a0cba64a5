"""The processes a chaos run drives: one `sublim api` on a fixed port, that can be killed and
started again, and `sublim executor` processes running the chaos tasks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.chaos.tasks import RECORD_ENV, WORKERS_ENV
from tests.e2e.conftest import ExecutorProcesses

ROOT = Path(__file__).resolve().parents[2]
NODE = "tests.chaos.tasks:node"
STARTUP_SECONDS = 60.0

#: Short leases and heartbeats, so that lost attempts come back within seconds.
CHAOS_SETTINGS = {
    "SUBLIM_LEASE_SECONDS": "2",
    "SUBLIM_HEARTBEAT_SECONDS": "0.5",
    "SUBLIM_HEARTBEAT_TIMEOUT_SECONDS": "4",
    "SUBLIM_SWEEP_INTERVAL_SECONDS": "0.5",
    "SUBLIM_OUTBOX_GRACE_SECONDS": "2",
    "SUBLIM_MAX_ATTEMPTS": "10",
    "SUBLIM_SHUTDOWN_GRACE_SECONDS": "5",
}


def chaos_env(store_url: str, broker_url: str, record: Path, workers: int) -> dict[str, str]:
    """The environment of every process of a run (none of the caller's SUBLIM_* settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUBLIM_") and k != "PORT"}
    run = {
        "SUBLIM_STORE_URL": store_url,
        "SUBLIM_BROKER_URL": broker_url,
        RECORD_ENV: str(record),
        WORKERS_ENV: str(workers),
        "PYTHONPATH": str(ROOT),
        "PYTHONFAULTHANDLER": "1",  # a process stopped with SIGABRT logs its tracebacks
    }
    return env | CHAOS_SETTINGS | run


class ApiServer:
    """`sublim api` on one port: `kill` (SIGKILL) and `start` again keep the port."""

    def __init__(self, port: int, env: dict[str, str], log_dir: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = env
        self.log = log_dir / "api.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "sublim.cli", "api", "--port", str(self.port)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_healthy()

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def _wait_healthy(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sublim api exited; see {self.log}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.proc.send_signal(signal.SIGABRT)  # its tracebacks go to the log
        self.proc.wait()
        raise RuntimeError(f"sublim api did not answer in {STARTUP_SECONDS} s; see {self.log}")


class Executors(ExecutorProcesses):
    """Executor processes of the chaos node, some of which get killed."""

    def start_chaos_node(self) -> subprocess.Popen[bytes]:
        return self.start(NODE)

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [proc for proc in self.procs if proc.poll() is None]
