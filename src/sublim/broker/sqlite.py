"""The embedded durable broker: `sqlite:///path.db`, safe for several processes on one file.

Messages are rows, one per subscription of the topic they were published on. A pull claims
rows in one `BEGIN IMMEDIATE` transaction, so two consumers (in any process) never hold one
message at once: claiming sets `available_at` to the end of the lease and a fresh
`lease_token`, which the receipt carries; a receipt whose token was replaced is stale.

Pullers wait on a notification: from this process's publishers directly, from other processes
through a `WakeChannel`; a slow poll remains as a safety net.

Publishing is de-duplicated by key (`sqlite:///path.db?dedupe_window=SECONDS`): the table
`broker_dedupe` holds (topic, key, published_at) for the keys published within the window,
written in the publish's transaction; only the messages whose key was new there (or whose
row was older than the window) are inserted. Each keyed publish deletes a bounded number of
rows older than the window.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from sublim.broker import _shared as shared
from sublim.broker._base import BaseBroker, not_open
from sublim.broker._shared import Claim, parse_numeric_receipt
from sublim.broker.base import (
    DEFAULT_DEDUPE_WINDOW_SECONDS,
    EMBEDDED_MAX_MESSAGE_BYTES,
    Delivery,
    Message,
)
from sublim.engines import sqlite as sqlite_db
from sublim.engines.sqlite_wake import WakeChannel
from sublim.errors import BrokerError

T = TypeVar("T")

MIGRATIONS: list[sqlite_db.Migration] = [
    [
        "CREATE TABLE broker_subscriptions (name TEXT PRIMARY KEY, topic TEXT NOT NULL)",
        "CREATE INDEX broker_subscriptions_by_topic ON broker_subscriptions (topic)",
        """CREATE TABLE broker_messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            subscription TEXT NOT NULL,
            data BLOB NOT NULL,
            attributes TEXT NOT NULL,
            available_at REAL NOT NULL,
            lease_token TEXT,
            deliveries INTEGER NOT NULL DEFAULT 0,
            published_at REAL NOT NULL
        )""",
        "CREATE INDEX broker_messages_due ON broker_messages (subscription, available_at, id)",
    ],
    [
        # The keys published within the dedupe window; the window is the publisher's, so a
        # row records when, not until when.
        """CREATE TABLE broker_dedupe (
            topic TEXT NOT NULL,
            key TEXT NOT NULL,
            published_at REAL NOT NULL,
            PRIMARY KEY (topic, key)
        ) WITHOUT ROWID""",
        "CREATE INDEX broker_dedupe_by_age ON broker_dedupe (published_at)",
    ],
]

#: Seconds between safety-net polls when cross-process wake-ups work, and when they do not.
POLL_INTERVAL = 1.0
POLL_INTERVAL_WITHOUT_WAKEUPS = 0.1

_CLAIM = """
UPDATE broker_messages
SET available_at = :until, lease_token = :token, deliveries = deliveries + 1
WHERE id IN (
    SELECT id FROM broker_messages
    WHERE subscription = :subscription AND available_at <= :now
    ORDER BY id LIMIT :limit
)
RETURNING id, data, attributes, deliveries
"""
_NEXT_DUE = """
SELECT
    EXISTS (SELECT 1 FROM broker_subscriptions WHERE name = :subscription),
    (SELECT MIN(available_at) FROM broker_messages WHERE subscription = :subscription)
"""
_HELD = "id = ? AND subscription = ? AND lease_token = ?"
_DELETE_HELD = f"DELETE FROM broker_messages WHERE {_HELD}"
#: A receipt taken apart: (message id, subscription, lease token), the order of `_HELD`.
HeldKey = tuple[int, str, str]


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite_db.connect(path)
    sqlite_db.migrate(conn, "broker", MIGRATIONS)
    return conn


def _ensure_subscription(conn: sqlite3.Connection, topic: str, subscription: str) -> str:
    """The topic of the subscription, which existed already or was just created."""
    with sqlite_db.write_transaction(conn):
        conn.execute(
            "INSERT INTO broker_subscriptions (name, topic) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (subscription, topic),
        )
        row = conn.execute(
            "SELECT topic FROM broker_subscriptions WHERE name = ?", (subscription,)
        ).fetchone()
    return str(row[0])


def _drop_subscription(conn: sqlite3.Connection, subscription: str) -> None:
    with sqlite_db.write_transaction(conn):
        conn.execute("DELETE FROM broker_messages WHERE subscription = ?", (subscription,))
        conn.execute("DELETE FROM broker_subscriptions WHERE name = ?", (subscription,))


def _insert(
    conn: sqlite3.Connection,
    topic: str,
    rows: list[sqlite_db.MessageRow],
    window: float,
    dropped: set[str],
) -> list[str]:
    """`sqlite_db.insert_messages` in a transaction of its own."""
    with sqlite_db.write_transaction(conn):
        return sqlite_db.insert_messages(conn, topic, rows, window, dropped)


def _insert_and_ack(
    conn: sqlite3.Connection,
    topic: str,
    rows: list[sqlite_db.MessageRow],
    window: float,
    dropped: set[str],
    acked: list[HeldKey],
) -> list[str]:
    """`_insert`, and `_ack` of the `acked` messages, in one transaction."""
    with sqlite_db.write_transaction(conn):
        subscriptions = sqlite_db.insert_messages(conn, topic, rows, window, dropped)
        conn.executemany(_DELETE_HELD, acked)
    return subscriptions


def _claim(conn: sqlite3.Connection, subscription: str, max_messages: int, lease: float) -> Claim:
    """Claim due messages in a write transaction. A look that finds none due is a read: it
    takes no write lock, so idle consumers neither wait for nor hold up other writers."""
    now = time.time()
    retry_in = _retry_in(conn, subscription, now)
    if retry_in is None or retry_in > 0:
        return Claim([], retry_in)
    token = shared.new_lease_token()
    parameters = {"until": now + lease, "token": token, "subscription": subscription}
    with sqlite_db.write_transaction(conn):
        rows = conn.execute(_CLAIM, {**parameters, "now": now, "limit": max_messages}).fetchall()
        if not rows:
            return Claim([], _retry_in(conn, subscription, now))
    return Claim([shared.row_delivery(row, token) for row in sorted(rows)])


def _retry_in(conn: sqlite3.Connection, subscription: str, now: float) -> float | None:
    exists, next_due = conn.execute(_NEXT_DUE, {"subscription": subscription}).fetchone()
    if not exists:
        raise BrokerError(f"no subscription named {subscription!r}")
    return None if next_due is None else next_due - now


def _ack(conn: sqlite3.Connection, keys: list[HeldKey]) -> None:
    with sqlite_db.write_transaction(conn):
        conn.executemany(_DELETE_HELD, keys)


def _nack(conn: sqlite3.Connection, keys: list[HeldKey], available_at: float) -> list[str]:
    """Release the messages; returns the subscription when one was released."""
    released = _update_held(conn, "available_at = ?, lease_token = NULL", keys, available_at)
    return sorted(
        {subscription for (_, subscription, _), done in zip(keys, released, strict=True) if done}
    )


def _extend(conn: sqlite3.Connection, keys: list[HeldKey], until: float) -> list[bool]:
    return _update_held(conn, "available_at = ?", keys, until)


def _update_held(
    conn: sqlite3.Connection, assignments: str, keys: list[HeldKey], value: float
) -> list[bool]:
    """Apply `SET assignments` to each message still held by its key: which ones were."""
    statement = f"UPDATE broker_messages SET {assignments} WHERE {_HELD}"
    with sqlite_db.write_transaction(conn):
        return [conn.execute(statement, (value, *key)).rowcount == 1 for key in keys]


def _held_keys(subscription: str, receipts: Sequence[str]) -> list[HeldKey]:
    return [
        (message_id, subscription, token)
        for message_id, token in map(parse_numeric_receipt, receipts)
    ]


class SqliteBroker(BaseBroker, sqlite_db.BrokerTables):
    """A durable broker in a SQLite file, which it may share with the SQLite store."""

    dedupes_publish = True
    max_message_bytes = EMBEDDED_MAX_MESSAGE_BYTES

    def __init__(
        self,
        path: str,
        *,
        poll_interval: float | None = None,
        dedupe_window: float = DEFAULT_DEDUPE_WINDOW_SECONDS,
    ) -> None:
        self.path = path
        self._poll_interval = poll_interval
        self.dedupe_window = shared.check_dedupe_window(dedupe_window)
        self._db: sqlite_db.DbThread | None = None
        self._conn: sqlite3.Connection | None = None
        self._signals = shared.Signals()
        in_memory = path == ":memory:"
        self._wake = None if in_memory else WakeChannel(Path(f"{path}.wake"))

    @classmethod
    def from_url(cls, url: str) -> SqliteBroker:
        """`sqlite:///path.db`, optionally `?dedupe_window=SECONDS`; no other option."""
        options = shared.UrlOptions(url, "sqlite")
        dedupe_window = shared.take_dedupe_window(options)
        return cls(sqlite_db.path_from_url(options.refuse_the_rest()), dedupe_window=dedupe_window)

    async def _open(self) -> None:
        if self._db is not None:
            return
        db = sqlite_db.DbThread("sublim-broker")
        try:
            self._conn = await db.run(_connect, self.path)
        except sqlite3.Error as exc:
            db.shutdown()
            raise BrokerError(f"cannot open the broker database {self.path}: {exc}") from exc
        self._db = db

    async def _close(self) -> None:
        if self._db is None or self._conn is None:
            return
        db, conn, self._db, self._conn = self._db, self._conn, None, None
        self._signals.notify_all()  # waiting pulls wake up to find the broker closed
        await db.run(conn.close)
        db.shutdown()
        if self._wake is not None:
            self._wake.close()

    async def _ensure_subscription(self, topic: str, subscription: str, ephemeral: bool) -> str:
        return await self._run(_ensure_subscription, topic, subscription)

    async def _drop_subscription(self, subscription: str) -> None:
        await self._run(_drop_subscription, subscription)

    async def _publish(self, topic: str, messages: Sequence[Message]) -> set[str]:
        dropped: set[str] = set()
        rows = sqlite_db.message_rows(messages)
        await self._write_and_wake(_insert, topic, rows, self.dedupe_window, dropped)
        return dropped

    async def _publish_and_ack(
        self, topic: str, messages: Sequence[Message], acks: Mapping[str, Sequence[str]]
    ) -> set[str]:
        dropped: set[str] = set()
        acked = [key for s, receipts in acks.items() for key in _held_keys(s, receipts)]
        rows = sqlite_db.message_rows(messages)
        await self._write_and_wake(_insert_and_ack, topic, rows, self.dedupe_window, dropped, acked)
        return dropped

    async def _pull(
        self, subscription: str, max_messages: int, lease: float, wait: float
    ) -> list[Delivery]:
        poll_interval = self._poll_interval_while_waiting() if wait > 0 else math.inf

        async def claim() -> Claim:
            return await self._run(_claim, subscription, max_messages, lease)

        signal = self._signals.of(subscription)
        return await shared.pull_waiting(signal, claim, wait=wait, poll_interval=poll_interval)

    async def _ack(self, subscription: str, receipts: Sequence[str]) -> None:
        await self._run(_ack, _held_keys(subscription, receipts))

    async def _nack(self, subscription: str, receipts: Sequence[str], delay: float) -> None:
        keys = _held_keys(subscription, receipts)
        await self._write_and_wake(_nack, keys, time.time() + delay)

    async def _extend(self, subscription: str, receipts: Sequence[str], lease: float) -> set[str]:
        held = await self._run(_extend, _held_keys(subscription, receipts), time.time() + lease)
        return {receipt for receipt, kept in zip(receipts, held, strict=True) if not kept}

    def _poll_interval_while_waiting(self) -> float:
        """Start listening for wake-ups from other processes; how often to poll meanwhile."""
        listening = self._wake is not None and self._wake.listen(self._on_wake)
        if self._poll_interval is not None:
            return self._poll_interval
        return POLL_INTERVAL if listening else POLL_INTERVAL_WITHOUT_WAKEUPS

    def _on_wake(self, subscriptions: list[str] | None) -> None:
        if subscriptions is None:
            self._signals.notify_all()
        else:
            self._signals.notify(subscriptions)

    async def _write_and_wake(self, write: Callable[..., list[str]], *args: object) -> None:
        """Run a write that makes messages available, then wake their pullers everywhere."""
        subscriptions = await self._run(self._then_wake_other_processes, write, *args)
        self._signals.notify(subscriptions)

    def _then_wake_other_processes(
        self, conn: sqlite3.Connection, write: Callable[..., list[str]], *args: object
    ) -> list[str]:
        subscriptions = write(conn, *args)
        if self._wake is not None:
            self._wake.send(subscriptions)
        return subscriptions

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        """Run `fn(connection, *args)` on the database thread, translating sqlite3 errors."""
        if self._db is None:
            raise not_open()
        try:
            return await self._db.run(fn, self._conn, *args)
        except sqlite3.Error as exc:
            raise BrokerError(f"sqlite broker {self.path}: {exc}") from exc
