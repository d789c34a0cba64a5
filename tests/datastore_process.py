"""A real `sublim datastore` process for tests: started as users start it, stopped by signal."""

from __future__ import annotations

import atexit
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from sublim.store.remote import RemoteStore

READY_LINE = "sublim datastore listening on "
START_TIMEOUT = 30.0


class DatastoreProcess:
    """`python -m sublim.cli datastore` serving a SQLite file in `directory`."""

    def __init__(
        self,
        directory: Path,
        port: int = 0,
        *extra_args: str,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.directory = directory
        self.port = port
        self.extra_args = extra_args
        self.env = dict(env or {})
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    @property
    def store_url(self) -> str:
        return f"sqlite:///{self.directory / 'datastore.db'}"

    def start(self) -> None:
        command = [sys.executable, "-m", "sublim.cli", "datastore", "--port", str(self.port)]
        command += ["--store", self.store_url, *self.extra_args]
        log = (self.directory / "datastore.log").open("a")
        self._process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=log, text=True, env=_child_env() | self.env
        )

    def wait_ready(self) -> str:
        """The URL the datastore listens on, once it says so; fails if it dies first."""
        line = self._read_line(START_TIMEOUT)
        if not line.startswith(READY_LINE):
            log = (self.directory / "datastore.log").read_text()
            raise RuntimeError(f"the datastore did not start (said {line!r}):\n{log}")
        self.url = line.removeprefix(READY_LINE).strip()
        self.port = int(self.url.rsplit(":", 1)[1])
        return self.url

    def _read_line(self, timeout: float) -> str:
        assert self._process is not None
        assert self._process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                return ""
        return self._process.stdout.readline()

    def stop(self) -> None:
        """SIGTERM (a graceful stop), then SIGKILL if it lingers."""
        if self._process is None:
            return
        process, self._process = self._process, None
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _child_env() -> dict[str, str]:
    """This environment without settings that would point the datastore elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUBLIM_")}
    env.pop("DATASTORE_ADDRESS", None)
    return env | {"SUBLIM_LOG_LEVEL": "WARNING"}


@asynccontextmanager
async def running_datastore(directory: Path, port: int = 0) -> AsyncIterator[DatastoreProcess]:
    """A started, ready datastore process, stopped on exit."""
    datastore = DatastoreProcess(directory, port)
    datastore.start()
    try:
        datastore.wait_ready()
        yield datastore
    finally:
        datastore.stop()


@asynccontextmanager
async def remote_store(url: str) -> AsyncIterator[RemoteStore]:
    store = RemoteStore.from_url(url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def grpc_store_in(tmp_path: Path) -> AsyncIterator[RemoteStore]:
    """A `grpc://` store served by its own fresh datastore process (over a SQLite file in a
    directory of its own: the process was started while the previous test ran)."""
    datastore = take_datastore()
    try:
        async with remote_store(datastore.url) as store:
            yield store
    finally:
        datastore.stop()
        shutil.rmtree(datastore.directory, ignore_errors=True)


# Starting a process takes about a second: one is always starting while a test runs.
_spares: list[DatastoreProcess] = []


def _started() -> DatastoreProcess:
    datastore = DatastoreProcess(Path(tempfile.mkdtemp(prefix="sublim-datastore-")))
    datastore.start()
    return datastore


def take_datastore() -> DatastoreProcess:
    """A ready datastore process with a fresh store; the next one starts meanwhile."""
    datastore = _spares.pop() if _spares else _started()
    _spares.append(_started())
    datastore.wait_ready()
    return datastore


@atexit.register
def _stop_spares() -> None:
    for datastore in _spares:
        datastore.stop()
        shutil.rmtree(datastore.directory, ignore_errors=True)
