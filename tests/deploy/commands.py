"""Running the commands of the deployment files outside containers: the real `sublim`
entry point, started as a container would start it, then probed and stopped by signal."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.engines import IN_CI

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
START_TIMEOUT_SECONDS = 30.0


def tool(name: str) -> Path:
    """A tool installed in this environment (dev dependencies); skip, or fail in CI, without."""
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if found is None:
        reason = f"{name} is not installed (it is a dev dependency: python3 dev.py setup)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return Path(found)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(**values: str) -> dict[str, str]:
    """This environment without sublim settings or service addresses, plus `values`."""
    names = ("SUBLIM_", "DATASTORE_ADDRESS", "USE_TLS", "PORT", "GOOGLE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(names)}
    return env | values


@contextmanager
def running(argv: list[str], env: Mapping[str, str], cwd: Path) -> Iterator[subprocess.Popen[str]]:
    """`argv` started in `cwd`; SIGTERM on exit, which must end it cleanly: exit code 0, or
    death by the SIGTERM re-raised after a graceful shutdown (what uvicorn does)."""
    log = (cwd / "process.log").open("a")
    process = subprocess.Popen(
        argv, cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT, text=True
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            code = -9
        log.close()
    output = (cwd / "process.log").read_text()[-3000:]
    assert code in {0, -signal.SIGTERM}, f"{argv} ended with {code}:\n{output}"


def wait_http_ok(url: str, process: subprocess.Popen[str], token: str | None = None) -> int:
    """The status of GET `url` once the process answers it (fails if the process dies)."""
    request = urllib.request.Request(url, headers=_auth(token))
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(request, timeout=3) as response:
                return int(response.status)
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered (process exit code {process.poll()})")


def wait_port(port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listened on {port} (process exit code {process.poll()})")


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}
