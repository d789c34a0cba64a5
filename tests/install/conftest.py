"""Sublim as users install it: the wheel, built once per session, in fresh virtual environments
with no extra or exactly one, and `sublim` processes started from them.

The environments are made with uv (which `python3 dev.py setup` installs into .venv) and its
cache, so that each takes about a second; versions are those of requirements.lock, passed as
constraints. Nothing of this checkout is importable in them: no PYTHONPATH, another cwd.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.engines import IN_CI

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
STARTUP_SECONDS = 30.0
FINISH_SECONDS = 30.0
STOP_SECONDS = 20.0
TERMINAL = {"Passed", "Failed", "Error", "Cancelled", "Killed"}
#: The modules each extra brings: a venv with one extra imports its own and no other's.
DRIVERS: dict[str, tuple[str, ...]] = {
    "postgres": ("asyncpg",),
    "redis": ("redis",),
    "amqp": ("aio_pika",),
    "nats": ("nats",),
    "gcp": ("google.auth", "google.cloud.pubsub", "google.cloud.firestore"),
}
#: Variables of this process that would change what the installed `sublim` does.
LEAKY = ("PYTHONPATH", "VIRTUAL_ENV", "PORT", "DATASTORE_ADDRESS", "USE_TLS", "GOOGLE_PROJECT_ID")


def skip_or_fail(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true)")
    pytest.skip(reason)


def uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        skip_or_fail("uv is not installed (python3 dev.py setup installs it into .venv)")
    assert found is not None
    return found


def run(command: Sequence[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run `command` to its end; fail the test with its output if it fails."""
    done = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=300, **kwargs
    )
    if done.returncode != 0:
        pytest.fail(f"{' '.join(map(str, command))} exited {done.returncode}:\n{done.stderr}")
    return done


def uv_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LEAKY}
    return env | {"UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Venv:
    """A virtual environment with the wheel installed."""

    path: Path

    def bin(self, name: str) -> Path:
        return self.path / "bin" / name

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """This process's environment, less what would reach into the checkout or configure
        sublim, with the venv first on PATH."""
        env = {
            k: v for k, v in os.environ.items() if k not in LEAKY and not k.startswith("SUBLIM_")
        }
        path = f"{self.path / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return env | {"PATH": path, "COLUMNS": "200", "NO_COLOR": "1"} | (extra or {})

    def importable(self, modules: Sequence[str]) -> dict[str, bool]:
        """Which of `modules` this venv's Python can import."""
        code = (
            "import importlib, json, sys\n"
            "def ok(name):\n"
            "    try:\n"
            "        importlib.import_module(name)\n"
            "    except ImportError:\n"
            "        return False\n"
            "    return True\n"
            "print(json.dumps({name: ok(name) for name in sys.argv[1:]}))\n"
        )
        done = run([self.bin("python"), "-c", code, *modules], env=self.env(), cwd=self.path)
        result: dict[str, bool] = json.loads(done.stdout)
        return result

    def sublim(
        self, cwd: Path, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`sublim ARGS` to its end, whatever its exit code."""
        return subprocess.run(
            [str(self.bin("sublim")), *args],
            cwd=cwd,
            env=self.env(env),
            capture_output=True,
            text=True,
            timeout=120,
        )


def install(wheel: Path, directory: Path, extra: str | None = None) -> Venv:
    """A fresh venv in `directory` with the wheel (and `extra`) installed."""
    run([uv(), "venv", "--quiet", "--python", sys.executable, directory], env=uv_env())
    requirement = f"sublim[{extra}] @ {wheel.as_uri()}" if extra else str(wheel)
    python = directory / "bin" / "python"
    command: list[str | Path] = [uv(), "pip", "install", "--quiet", "--python", python]
    run([*command, "--constraints", LOCK, requirement], env=uv_env())
    return Venv(directory)


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sublim wheel of this checkout, built once per session."""
    out = tmp_path_factory.mktemp("wheel")
    run([uv(), "build", "--wheel", "--quiet", "--out-dir", out, ROOT], env=uv_env())
    return next(out.glob("sublim-*.whl"))


@pytest.fixture(scope="session")
def plain_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """`pip install sublim`: the wheel without any extra."""
    return install(wheel, tmp_path_factory.mktemp("plain") / "venv")


@dataclass
class Server:
    """A `sublim` process that serves until stopped."""

    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """SIGINT, as Ctrl-C does; its exit code (killed after STOP_SECONDS)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"it did not stop in {STOP_SECONDS} s:\n{self.output()}")


@contextmanager
def serving(
    venv: Venv, cwd: Path, name: str, args: Sequence[str], env: dict[str, str] | None = None
) -> Iterator[Server]:
    """`sublim ARGS` running in `cwd`, its output in `cwd/NAME.log`; stopped afterwards."""
    log = cwd / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(venv.bin("sublim")), *args],
            cwd=cwd,
            env=venv.env(env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(proc, log)
    try:
        yield server
    finally:
        server.stop()


def wait_healthy(server: Server, url: str) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            pytest.fail(f"it exited {server.proc.returncode}:\n{server.output()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail(f"{url} did not answer in {STARTUP_SECONDS} s:\n{server.output()}")


def wait_listening(server: Server, port: int) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            pytest.fail(f"it exited {server.proc.returncode}:\n{server.output()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"nothing listened on {port} in {STARTUP_SECONDS} s:\n{server.output()}")


def wait_finished(client: httpx.Client, execution_id: str) -> dict[str, Any]:
    """The execution once it is terminal (the test fails past FINISH_SECONDS)."""
    deadline = time.monotonic() + FINISH_SECONDS
    while True:
        response = client.get(f"/v1/executions/{execution_id}")
        assert response.status_code == 200, response.text
        execution: dict[str, Any] = response.json()
        if execution["status"] in TERMINAL or time.monotonic() > deadline:
            return execution
        time.sleep(0.1)


def run_hello(url: str, name: str) -> dict[str, Any]:
    """POST a Hello task with `execute: true`; its execution once finished."""
    with httpx.Client(base_url=url, timeout=10.0) as client:
        body = {"topic": "Hello", "payload": {"name": name}, "execute": True}
        created = client.post("/v1/tasks", json=body)
        assert created.status_code == 201, created.text
        return wait_finished(client, created.json()["execution"]["id"])
