"""What the SQLite store and broker share: opening a database file safely for several
processes, versioned migrations, and running blocking calls on a dedicated thread."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from sublim.errors import ConfigError

T = TypeVar("T")

#: A migration is a list of SQL statements; migration i brings the schema to version i + 1.
Migration = Sequence[str]


def path_from_url(url: str) -> str:
    """`sqlite:///relative.db` → `relative.db`; `sqlite:////abs/x.db` → `/abs/x.db`."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or parts.netloc:
        raise ConfigError(f"expected sqlite:///PATH, got {url!r}")
    path = unquote(parts.path)
    path = path[1:] if path.startswith("/") else path
    if not path:
        raise ConfigError(f"no database path in {url!r}")
    return path


def connect(path: str) -> sqlite3.Connection:
    """A connection in WAL mode, in autocommit (transactions are explicit)."""
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def migrate(conn: sqlite3.Connection, component: str, migrations: Sequence[Migration]) -> int:
    """Apply the migrations of `component` not applied yet, each in its own transaction.

    Several components (the store, the broker) may share one file: each keeps its own version
    in the table `sublim_schema`. Returns the resulting version.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS sublim_schema"
        " (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
    )
    with write_transaction(conn):
        row = conn.execute(
            "SELECT version FROM sublim_schema WHERE component = ?", (component,)
        ).fetchone()
        version = row[0] if row else 0
        if version > len(migrations):
            raise ConfigError(
                f"the database's {component} schema is version {version}, newer than this "
                f"sublim knows ({len(migrations)}): upgrade sublim"
            )
        for statements in migrations[version:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(
            "INSERT INTO sublim_schema (component, version) VALUES (?, ?) "
            "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
            (component, len(migrations)),
        )
    return len(migrations)


class write_transaction:  # lower case: used like a function, `with write_transaction(conn):`
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error): one writer at a time across processes."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


class DbThread:
    """Runs the blocking calls of one connection on its own thread, in call order."""

    def __init__(self, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, fn, *args)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)
