"""What the SQLite store and broker share: opening a database file safely for several
processes, versioned migrations, running blocking calls on a dedicated thread, and inserting
broker messages (the broker publishes with it; a store on the same file too, in its own
transactions: the same-file outbox)."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from sublim.broker.base import Message
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


class BrokerTables:
    """Marks a broker whose messages are rows of `broker_messages` in the SQLite file at
    `path`: a store on the same file publishes there in its own transactions (the outbox)."""

    path: str


def same_file(first: str, second: str) -> bool:
    """Whether two paths name one database file (never an in-memory database)."""
    if ":memory:" in (first, second):
        return False
    return os.path.realpath(first) == os.path.realpath(second)


_INSERT_MESSAGE = """
INSERT INTO broker_messages (subscription, data, attributes, available_at, published_at)
VALUES (?, ?, ?, ?, ?)
"""
#: Records a key unless it was published within the window (`:since` = now - window).
_RECORD_KEY = """
INSERT INTO broker_dedupe (topic, key, published_at) VALUES (:topic, :key, :now)
ON CONFLICT (topic, key) DO UPDATE SET published_at = excluded.published_at
WHERE broker_dedupe.published_at <= :since
"""
_PRUNE_KEYS = """
DELETE FROM broker_dedupe WHERE (topic, key) IN (
    SELECT topic, key FROM broker_dedupe WHERE published_at <= :since LIMIT :limit
)
"""
#: Rows older than the window that a keyed publish deletes, per keyed message, at least
#: `MIN_PRUNE`: more than it adds, so that the table stays as small as the window makes it.
PRUNE_PER_KEY = 2
MIN_PRUNE = 100

#: A message to insert: its key (None: never de-duplicated), data and attributes (JSON).
MessageRow = tuple[str | None, bytes, str]


def message_rows(messages: Sequence[Message]) -> list[MessageRow]:
    return [(m.key, bytes(m.data), json.dumps(dict(m.attributes))) for m in messages]


def insert_messages(
    conn: sqlite3.Connection,
    topic: str,
    rows: Sequence[MessageRow],
    window: float,
    dropped: set[str],
) -> list[str]:
    """Copy the messages to every subscription of the topic, in the caller's transaction,
    leaving out those whose key was published within `window` seconds (their keys are added
    to `dropped`); returns those subscriptions, whose pullers to wake once committed."""
    now = time.time()
    subscriptions = [
        name
        for (name,) in conn.execute(
            "SELECT name FROM broker_subscriptions WHERE topic = ? ORDER BY name", (topic,)
        )
    ]
    kept = _first_copies(conn, topic, rows, now, now - window, dropped)
    copies = [(name, *message, now, now) for name in subscriptions for message in kept]
    conn.executemany(_INSERT_MESSAGE, copies)
    return subscriptions


def _first_copies(
    conn: sqlite3.Connection,
    topic: str,
    rows: Sequence[MessageRow],
    now: float,
    since: float,
    dropped: set[str],
) -> list[tuple[bytes, str]]:
    """The (data, attributes) of the rows to insert: unkeyed ones, and those whose key this
    records now. Prunes old keys first (a bounded number)."""
    keys = sum(1 for key, _, _ in rows if key is not None)
    if keys == 0:
        return [(data, attributes) for _, data, attributes in rows]
    limit = max(PRUNE_PER_KEY * keys, MIN_PRUNE)
    conn.execute(_PRUNE_KEYS, {"since": since, "limit": limit})
    kept = []
    parameters = {"topic": topic, "now": now, "since": since}
    for key, data, attributes in rows:
        if key is None or conn.execute(_RECORD_KEY, {**parameters, "key": key}).rowcount == 1:
            kept.append((data, attributes))
        else:
            dropped.add(key)
    return kept
