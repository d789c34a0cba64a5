"""Google's Pub/Sub and Firestore emulators for the tests: used when they run, started when
they do not.

`require_pubsub_emulator()` and `fresh_firestore_project()` make sure an emulator answers
(Pub/Sub on 127.0.0.1:8085, Firestore on 127.0.0.1:8086) and that this process, and the
processes it starts, talk to it (`PUBSUB_EMULATOR_HOST`, `FIRESTORE_EMULATOR_HOST`). If
nothing listens there, the emulator's jar is started (once per test session), waited for,
and stopped by its PID when the session ends. Without the jar the test skips, or fails under
CI=true. The emulators have no reset for everything: tests use projects of their own.
"""

from __future__ import annotations

import atexit
import glob
import os
import signal
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.engines import IN_CI, port_open

HOST = "127.0.0.1"
STARTUP_SECONDS = 30.0
SDK = "/usr/lib/google-cloud-sdk/platform"


@dataclass(frozen=True)
class EmulatorKind:
    """How to start one emulator and where it listens."""

    name: str
    port: int
    jar_pattern: str
    env_var: str
    #: The command after `java`, given the jar's path.
    arguments: tuple[str, ...]

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def command(self, jar: str) -> list[str]:
        return ["java", *(a.format(jar=jar, host=HOST, port=self.port) for a in self.arguments)]


PUBSUB = EmulatorKind(
    "Pub/Sub emulator",
    8085,
    f"{SDK}/pubsub-emulator/lib/cloud-pubsub-emulator-*-all.jar",
    "PUBSUB_EMULATOR_HOST",
    ("-jar", "{jar}", "--host={host}", "--port={port}"),
)
FIRESTORE = EmulatorKind(
    "Firestore emulator",
    8086,
    f"{SDK}/cloud-firestore-emulator/cloud-firestore-emulator.jar",
    "FIRESTORE_EMULATOR_HOST",
    (
        "-cp",
        "{jar}",
        "com.google.cloud.datastore.emulator.firestore.CloudFirestore",
        "start",
        "--host={host}",
        "--port={port}",
    ),
)


@dataclass
class Emulator:
    """An emulator process this session started."""

    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


_started: dict[str, Emulator] = {}


def _skip_or_fail(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true)")
    pytest.skip(reason)


def _jar(kind: EmulatorKind) -> str:
    jars = sorted(glob.glob(kind.jar_pattern))
    if not jars:
        _skip_or_fail(f"the {kind.name} is not running and its jar is absent ({kind.jar_pattern})")
    return jars[-1]


def _start(kind: EmulatorKind, jar: str) -> Emulator:
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"{kind.env_var.lower()}-{os.getpid()}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            kind.command(jar), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    emulator = Emulator(proc, log)
    atexit.register(emulator.stop)  # the end of the test session: pytest's process exits
    return emulator


def _wait_until_up(kind: EmulatorKind, emulator: Emulator) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while not port_open(HOST, kind.port):
        if emulator.proc.poll() is not None or time.monotonic() > deadline:
            emulator.stop()
            _skip_or_fail(f"the {kind.name} did not start: {emulator.log.read_text()[-2000:]}")
        time.sleep(0.1)


def require_emulator(kind: EmulatorKind) -> str:
    """The emulator's address, once it answers (started here if need be)."""
    os.environ.setdefault(kind.env_var, kind.address)
    if port_open(HOST, kind.port):
        return kind.address
    if kind.name not in _started:
        _started[kind.name] = _start(kind, _jar(kind))
    _wait_until_up(kind, _started[kind.name])
    return kind.address


def require_pubsub_emulator() -> str:
    return require_emulator(PUBSUB)


def unique_project(prefix: str = "test") -> str:
    """A project id of a test's own (the emulators take any)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def fresh_firestore_project() -> str:
    """A project of the test's own on the Firestore emulator (started if need be)."""
    require_emulator(FIRESTORE)
    return unique_project()


def reset_firestore(project: str) -> None:
    """Delete every document of `project` (the emulator's reset endpoint)."""
    url = f"http://{FIRESTORE.address}/emulator/v1/projects/{project}/databases/(default)/documents"
    urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=10).close()


@pytest.fixture(scope="session")
def pubsub_emulator() -> str:
    """The Pub/Sub emulator's address (host:port), started for the session if need be."""
    return require_pubsub_emulator()
