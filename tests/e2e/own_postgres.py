"""A PostgreSQL instance of a test's own (`initdb` + `pg_ctl`), on its own port and data
folder, that the test may restart: the shared engine on 5432 is never restarted by tests.

PostgreSQL refuses to run as root: as root, its commands run as the `postgres` user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.engines import IN_CI
from tests.pg_databases import require_driver

BIN = Path(os.environ.get("SUBLIM_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
ENGINE_USER = "postgres"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _require_binaries() -> None:
    if not (BIN / "initdb").exists():
        reason = f"PostgreSQL server binaries are not in {BIN} (set SUBLIM_TEST_PG_BIN)"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true)")
        pytest.skip(reason)


def _as_engine_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", ENGINE_USER, "--", *command] if os.geteuid() == 0 else command


def _data_folder(tmp_path: Path) -> Path:
    """A folder the engine's user owns: under tmp_path, or (as root, whose tmp_path the
    `postgres` user cannot enter) a private folder of that user's in the temp directory."""
    if os.geteuid() != 0:
        return tmp_path / "pgdata"
    user = pwd.getpwnam(ENGINE_USER)
    folder = Path(tempfile.mkdtemp(prefix="sublim-pg-"))
    os.chown(folder, user.pw_uid, user.pw_gid)
    return folder / "pgdata"


class OwnPostgres:
    """One PostgreSQL cluster: `initdb` once, then `pg_ctl` start, stop and restart."""

    def __init__(self, data: Path, port: int, log_file: Path) -> None:
        self.data = data
        self.port = port
        self.log_file = log_file
        self.url = f"postgresql://{ENGINE_USER}@127.0.0.1:{port}/postgres"

    def _run(self, *command: str) -> None:
        subprocess.run(_as_engine_user(list(command)), check=True, capture_output=True)

    def init(self) -> None:
        self._run(
            str(BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            ENGINE_USER,
            "--auth=trust",
            "--no-sync",
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data}"
        self._run(
            str(BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-w",
            "-l",
            str(self.data / "server.log"),
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, mode: str = "immediate") -> None:
        """Stop (`immediate`: no checkpoint, the server recovers from its WAL on start, as
        after a crash) and start again on the same port and data."""
        self.stop(mode)
        self.start()

    def keep_log(self) -> None:
        log = self.data / "server.log"
        if log.exists():
            shutil.copy(log, self.log_file)


@contextmanager
def own_postgres(tmp_path: Path) -> Iterator[OwnPostgres]:
    require_driver()
    _require_binaries()
    data = _data_folder(tmp_path)
    engine = OwnPostgres(data, free_port(), tmp_path / "postgres.log")
    engine.init()
    engine.start()
    try:
        yield engine
    finally:
        engine.stop("immediate")
        engine.keep_log()
        shutil.rmtree(data.parent if os.geteuid() == 0 else data, ignore_errors=True)
