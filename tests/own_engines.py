"""Engine processes of a test's own, for tests that restart their engine.

The shared engines (Redis on 6379, NATS on 4222) are never restarted by a test: a test that
does starts its own server on a free port, with its data folder under the test's tmp_path.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.engines import IN_CI, port_open

BOOT_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def require_binary(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/usr/local/bin")
    if path is None:
        reason = f"{name} is not installed"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true)")
        pytest.skip(reason)
    return path


class OwnEngine:
    """One engine server process on its own port, that a test may kill and start again."""

    def __init__(self, name: str, command: list[str], port: int, log_file: Path) -> None:
        self.name = name
        self.command = command
        self.port = port
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + BOOT_TIMEOUT
        while not port_open("127.0.0.1", self.port, timeout=0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start; see {self.log_file}")
            time.sleep(0.05)

    def stop(self, signum: int = signal.SIGTERM) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self, signum: int = signal.SIGKILL, down_for: float = 1.0) -> None:
        """Stop the engine (SIGKILL by default: no chance to flush anything), stay down for
        `down_for` seconds, and start it again on the same port and data."""
        self.stop(signum)
        time.sleep(down_for)
        self.start()


@contextmanager
def own_engine(
    name: str, command: Callable[[int], list[str]], tmp_path: Path
) -> Iterator[OwnEngine]:
    port = free_port()
    engine = OwnEngine(name, command(port), port, tmp_path / f"{name}.log")
    engine.start()
    try:
        yield engine
    finally:
        engine.stop()


def redis_command(data_dir: Path) -> Callable[[int], list[str]]:
    """A Redis that writes every change to its append-only file before answering."""
    binary = require_binary("redis-server")
    data_dir.mkdir(parents=True, exist_ok=True)
    return lambda port: [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--save",
        "",
        "--daemonize",
        "no",
    ]


def nats_command(store_dir: Path) -> Callable[[int], list[str]]:
    """A NATS server with JetStream, keeping its streams in `store_dir`."""
    binary = require_binary("nats-server")
    store_dir.mkdir(parents=True, exist_ok=True)
    return lambda port: [binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store_dir)]
