"""The embedded store: one SQLite file, safe for several processes.

Every blocking call runs on the store's own thread (`DbThread`); every batch write is one
`BEGIN IMMEDIATE` transaction, so concurrent writers, in this process or others, queue up
instead of losing updates.

When the broker is the SQLite broker on the same file (the embedded default),
`create_and_publish` writes executions and their request messages in one transaction (the
same-file outbox), then wakes the broker's pullers in every process.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import count
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sublim.broker.base import DEFAULT_DEDUPE_WINDOW_SECONDS, Broker, Message
from sublim.core.model import Change, Execution, TaskRecord, TaskStatus
from sublim.engines import sqlite as sqlite_db
from sublim.engines.sqlite import (
    DbThread,
    Migration,
    connect,
    migrate,
    path_from_url,
    write_transaction,
)
from sublim.engines.sqlite_wake import WakeChannel
from sublim.errors import AlreadyExists, ExecutionNotFound, StoreError, TaskNotFound
from sublim.store._common import apply_in_order, patched
from sublim.store._rows import EXECUTION_COLUMNS, TASK_COLUMNS, to_json_text
from sublim.store._sql import EVENT_COLUMNS, SELECT_EXECUTIONS, SELECT_TASKS, names
from sublim.store._sqlite_rows import SQLITE, label_rows, to_epoch
from sublim.store.base import ExecutionQuery, ModifyFn, Page, StoreStats, TaskPatch, TaskQuery

P = ParamSpec("P")
T = TypeVar("T")

MIGRATIONS: list[Migration] = [
    (
        """CREATE TABLE tasks (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            topic TEXT NOT NULL,
            payload TEXT NOT NULL,
            labels TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            latest_execution_id TEXT
        )""",
        "CREATE INDEX tasks_by_topic ON tasks (topic, id)",
        "CREATE INDEX tasks_by_latest_execution ON tasks (latest_execution_id)",
        # Labels are also kept as rows so that `label=key:value` filters use an index.
        """CREATE TABLE task_labels (
            task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (task_id, key)
        ) WITHOUT ROWID""",
        "CREATE INDEX task_labels_by_key_value ON task_labels (key, value, task_id)",
        """CREATE TABLE executions (
            id TEXT PRIMARY KEY,
            task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
            topic TEXT NOT NULL,
            status TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            max_attempts INTEGER NOT NULL,
            last_seq INTEGER NOT NULL,
            payload TEXT NOT NULL,
            result TEXT,
            error TEXT,
            worker TEXT,
            created_at REAL NOT NULL,
            dispatched_at REAL,
            started_at REAL,
            finished_at REAL,
            duration_seconds REAL,
            heartbeat_at REAL
        )""",
        "CREATE INDEX executions_by_task ON executions (task_id, id)",
        "CREATE INDEX executions_by_topic ON executions (topic, id)",
        "CREATE INDEX executions_by_status ON executions (status, id)",
        "CREATE INDEX executions_by_created_at ON executions (created_at)",
        # What the sweeper asks: running executions whose last sign of life is old.
        """CREATE INDEX executions_by_status_heartbeat
            ON executions (status, COALESCE(heartbeat_at, created_at))""",
        """CREATE TABLE events (
            execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            status TEXT NOT NULL,
            at REAL NOT NULL,
            attempt INTEGER NOT NULL,
            reason TEXT,
            PRIMARY KEY (execution_id, seq)
        ) WITHOUT ROWID""",
    ),
    (  # 2: dependencies between executions (Blocked until they pass)
        "ALTER TABLE executions ADD COLUMN depends_on TEXT NOT NULL DEFAULT '[]'",
        """CREATE TABLE execution_dependencies (
            execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
            depends_on TEXT NOT NULL,
            PRIMARY KEY (depends_on, execution_id)
        ) WITHOUT ROWID""",
    ),
    (  # 3: lists of executions answered from indexes alone (`_sql.Dialect.list_executions`)
        # topic + status, newest first, without reading the matches of only one of them;
        "CREATE INDEX executions_by_topic_status ON executions (topic, status, id)",
        # a created_at range's ids, to sort, without reading a row (the old index held the
        # rowid, not the id) ...
        "DROP INDEX executions_by_created_at",
        "CREATE INDEX executions_by_created_at ON executions (created_at, id)",
        # ... or the ids in order, with created_at beside them, to skip the newer ones.
        "CREATE INDEX executions_by_id_created_at ON executions (id, created_at)",
    ),
]


def _placeholders(how_many: int) -> str:
    return ", ".join("?" * how_many)


_INSERT_TASK = f"INSERT INTO tasks ({names(TASK_COLUMNS)}) VALUES ({_placeholders(7)})"
_INSERT_LABEL = "INSERT INTO task_labels (task_id, key, value) VALUES (?, ?, ?)"
_INSERT_EXECUTION = (
    f"INSERT INTO executions ({names(EXECUTION_COLUMNS)}) "
    f"VALUES ({_placeholders(len(EXECUTION_COLUMNS))})"
)
_UPDATE_EXECUTION = (
    f"UPDATE executions SET {', '.join(f'{c} = ?' for c in EXECUTION_COLUMNS[1:])} WHERE id = ?"
)
_INSERT_EVENT = f"INSERT INTO events ({names(EVENT_COLUMNS)}) VALUES ({_placeholders(6)})"
_SELECT_EVENTS = (
    "SELECT status, at, attempt, reason FROM events WHERE execution_id = ? ORDER BY seq"
)
_SET_LATEST_EXECUTION = (
    "UPDATE tasks SET latest_execution_id = ?1 WHERE id = ?2 "
    "AND (latest_execution_id IS NULL OR latest_execution_id < ?1)"
)
_INSERT_DEPENDENCY = "INSERT INTO execution_dependencies (execution_id, depends_on) VALUES (?, ?)"
#: Binds a whole list of ids to one parameter, whatever its length.
_IN_JSON_LIST = "IN (SELECT value FROM json_each(?))"


@contextmanager
def _read_snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """A read transaction, so that several SELECTs see one state of the file."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


def _id_list(ids: Iterable[str]) -> str:
    return json.dumps(list(ids))


class _Database:
    """The blocking operations, on one connection; only ever called on the store's thread."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    # Tasks

    def create_task(self, task: TaskRecord) -> TaskRecord:
        with write_transaction(self.conn) as conn:
            conn.execute(_INSERT_TASK, SQLITE.task_row(task))
            conn.executemany(_INSERT_LABEL, label_rows(task))
        return task.model_copy(update={"latest_execution": None})

    def create_tasks(self, tasks: Sequence[TaskRecord]) -> list[TaskRecord]:
        if not tasks:
            return []
        with write_transaction(self.conn):
            self._insert_tasks(tasks)
        return [task.model_copy(update={"latest_execution": None}) for task in tasks]

    def _insert_tasks(self, tasks: Sequence[TaskRecord]) -> None:
        self.conn.executemany(_INSERT_TASK, map(SQLITE.task_row, tasks))
        self.conn.executemany(_INSERT_LABEL, (row for task in tasks for row in label_rows(task)))

    def get_task(self, task_id: str) -> TaskRecord:
        row = self.conn.execute(f"{SELECT_TASKS} WHERE t.id = ?", (task_id,)).fetchone()
        if row is None:
            raise TaskNotFound(task_id)
        return SQLITE.task_from_row(row)

    def list_tasks(self, query: TaskQuery) -> Page[TaskRecord]:
        rows = self.conn.execute(*SQLITE.list_tasks(query)).fetchall()
        return SQLITE.task_page(rows, query.limit)

    def update_task(self, task_id: str, patch: TaskPatch) -> TaskRecord:
        with write_transaction(self.conn):
            task = patched(self.get_task(task_id), patch)
            self._write_task_fields(task)
            if patch.labels is not None:
                self._replace_labels(task)
        return task

    def _write_task_fields(self, task: TaskRecord) -> None:
        self.conn.execute(
            "UPDATE tasks SET name = ?, payload = ?, labels = ?, updated_at = ? WHERE id = ?",
            (
                task.name,
                to_json_text(task.payload),
                to_json_text(task.labels),
                to_epoch(task.updated_at),
                task.id,
            ),
        )

    def _replace_labels(self, task: TaskRecord) -> None:
        self.conn.execute("DELETE FROM task_labels WHERE task_id = ?", (task.id,))
        self.conn.executemany(_INSERT_LABEL, label_rows(task))

    def delete_task(self, task_id: str) -> None:
        with write_transaction(self.conn) as conn:
            deleted = conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,)).rowcount
        if not deleted:
            raise TaskNotFound(task_id)

    # Executions

    def create_executions(self, executions: Sequence[Execution]) -> None:
        if not executions:
            return
        with write_transaction(self.conn):
            self._insert_executions(executions)

    def create_and_publish(
        self,
        executions: Sequence[Execution],
        rows: Mapping[str, Sequence[sqlite_db.MessageRow]],
        tasks: Sequence[TaskRecord],
    ) -> list[str]:
        """Insert the tasks, the executions and their messages (by topic) in one transaction;
        returns the subscriptions that received messages."""
        subscriptions: list[str] = []
        with write_transaction(self.conn) as conn:
            self._insert_tasks(tasks)
            self._insert_executions(executions)
            for topic, topic_rows in rows.items():
                # New executions' keys are new: nothing is dropped, the keys are only recorded.
                subscriptions += sqlite_db.insert_messages(
                    conn, topic, topic_rows, DEFAULT_DEDUPE_WINDOW_SECONDS, dropped=set()
                )
        return subscriptions

    def _insert_executions(self, executions: Sequence[Execution]) -> None:
        self._require_tasks({execution.task_id for execution in executions})
        self.conn.executemany(_INSERT_EXECUTION, map(SQLITE.execution_row, executions))
        self.conn.executemany(_INSERT_EVENT, _initial_event_rows(executions))
        self.conn.executemany(_SET_LATEST_EXECUTION, ((e.id, e.task_id) for e in executions))
        self.conn.executemany(_INSERT_DEPENDENCY, _dependency_rows(executions))

    def _require_tasks(self, task_ids: Collection[str]) -> None:
        sql = f"SELECT id FROM tasks WHERE id {_IN_JSON_LIST}"
        found = {row[0] for row in self.conn.execute(sql, (_id_list(task_ids),))}
        missing = sorted(set(task_ids) - found)
        if missing:
            raise TaskNotFound(missing[0])

    def get_execution(self, execution_id: str) -> Execution:
        with _read_snapshot(self.conn):
            sql = f"{SELECT_EXECUTIONS} WHERE id = ?"
            row = self.conn.execute(sql, (execution_id,)).fetchone()
            events = self.conn.execute(_SELECT_EVENTS, (execution_id,)).fetchall()
        if row is None:
            raise ExecutionNotFound(execution_id)
        return SQLITE.execution_from_row(row, events)

    def list_executions(self, query: ExecutionQuery) -> Page[Execution]:
        rows = self.conn.execute(*SQLITE.list_executions(query)).fetchall()
        return SQLITE.execution_page(rows, query.limit)

    def modify_executions(self, ids: Sequence[str], fn: ModifyFn) -> list[Change]:
        with write_transaction(self.conn):
            changes = apply_in_order(ids, self._load_executions(ids), fn)
            self._write_changes([change for change in changes if change.changed])
        return changes

    def _load_executions(self, ids: Iterable[str]) -> dict[str, Execution]:
        sql = f"{SELECT_EXECUTIONS} WHERE id {_IN_JSON_LIST}"
        rows = self.conn.execute(sql, (_id_list(set(ids)),))
        return {execution.id: execution for execution in map(SQLITE.execution_from_row, rows)}

    def _write_changes(self, applied: Sequence[Change]) -> None:
        rows = [SQLITE.execution_row(change.execution) for change in applied]
        self.conn.executemany(_UPDATE_EXECUTION, [(*row[1:], row[0]) for row in rows])
        self.conn.executemany(_INSERT_EVENT, self._new_event_rows(applied))

    def _new_event_rows(self, applied: Sequence[Change]) -> list[tuple[Any, ...]]:
        ids = {change.execution.id for change in applied if change.new_events}
        next_seq = {i: count(last + 1) for i, last in self._last_event_seqs(ids).items()}
        return [
            SQLITE.event_row(change.execution.id, next(next_seq[change.execution.id]), event)
            for change in applied
            for event in change.new_events
        ]

    def _last_event_seqs(self, ids: Collection[str]) -> dict[str, int]:
        sql = (
            f"SELECT execution_id, MAX(seq) FROM events WHERE execution_id {_IN_JSON_LIST} "
            "GROUP BY execution_id"
        )
        found = dict(self.conn.execute(sql, (_id_list(ids),)).fetchall())
        return {execution_id: found.get(execution_id, 0) for execution_id in ids}

    def stats(self) -> StoreStats:
        with _read_snapshot(self.conn):
            tasks = self.conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
            per_status = self.conn.execute(
                "SELECT status, COUNT(*) FROM executions GROUP BY status"
            ).fetchall()
        return StoreStats(tasks=tasks, executions={TaskStatus(s): n for s, n in per_status})


def _dependency_rows(executions: Iterable[Execution]) -> Iterator[tuple[str, str]]:
    return ((e.id, other) for e in executions for other in e.depends_on)


def _initial_event_rows(executions: Iterable[Execution]) -> Iterator[tuple[Any, ...]]:
    for execution in executions:
        for seq, event in enumerate(execution.events, start=1):
            yield SQLITE.event_row(execution.id, seq, event)


def _open_database(path: str) -> _Database:
    conn = connect(path)
    try:
        migrate(conn, "store", MIGRATIONS)
    except BaseException:
        conn.close()
        raise
    return _Database(conn)


def _translating_errors(fn: Callable[P, T]) -> Callable[P, T]:
    """`fn`, raising sublim's errors where it would raise sqlite3's."""

    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                raise AlreadyExists(f"already exists ({exc})") from exc
            raise StoreError(f"sqlite integrity error: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite error: {exc}") from exc

    return call


class SqliteStore:
    """The `Store` on a SQLite file (`sqlite:///path.db`)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._thread: DbThread | None = None
        self._db: _Database | None = None
        #: Wakes the broker's pullers after an outbox publish (none for `:memory:`).
        self._wake = None if path == ":memory:" else WakeChannel(Path(f"{path}.wake"))

    @classmethod
    def from_url(cls, url: str) -> SqliteStore:
        return cls(path_from_url(url))

    async def open(self) -> None:
        if self._thread is not None:
            return
        thread = DbThread("sublim-store")
        try:
            self._db = await thread.run(_translating_errors(_open_database), self.path)
        except BaseException:
            thread.shutdown()
            raise
        self._thread = thread

    async def close(self) -> None:
        thread, db = self._thread, self._db
        if thread is None or db is None:
            return
        self._thread = self._db = None
        await thread.run(db.conn.close)
        thread.shutdown()
        if self._wake is not None:
            self._wake.close()

    async def _run(self, operation: Callable[[_Database], T]) -> T:
        if self._thread is None or self._db is None:
            raise StoreError("the store is not open: call open() first")
        return await self._thread.run(_translating_errors(operation), self._db)

    async def create_task(self, task: TaskRecord) -> TaskRecord:
        return await self._run(lambda db: db.create_task(task))

    async def create_tasks(self, tasks: Sequence[TaskRecord]) -> list[TaskRecord]:
        return await self._run(lambda db: db.create_tasks(tasks))

    async def get_task(self, task_id: str) -> TaskRecord:
        return await self._run(lambda db: db.get_task(task_id))

    async def list_tasks(self, query: TaskQuery) -> Page[TaskRecord]:
        return await self._run(lambda db: db.list_tasks(query))

    async def update_task(self, task_id: str, patch: TaskPatch) -> TaskRecord:
        return await self._run(lambda db: db.update_task(task_id, patch))

    async def delete_task(self, task_id: str) -> None:
        await self._run(lambda db: db.delete_task(task_id))

    async def create_executions(self, executions: Sequence[Execution]) -> None:
        await self._run(lambda db: db.create_executions(executions))

    async def get_execution(self, execution_id: str) -> Execution:
        return await self._run(lambda db: db.get_execution(execution_id))

    async def list_executions(self, query: ExecutionQuery) -> Page[Execution]:
        return await self._run(lambda db: db.list_executions(query))

    async def modify_executions(self, ids: Sequence[str], fn: ModifyFn) -> list[Change]:
        return await self._run(lambda db: db.modify_executions(ids, fn))

    async def stats(self) -> StoreStats:
        return await self._run(lambda db: db.stats())

    # The same-file outbox

    def shares_transactions_with(self, broker: Broker) -> bool:
        """Whether `broker` keeps its messages in this store's file."""
        return isinstance(broker, sqlite_db.BrokerTables) and sqlite_db.same_file(
            self.path, broker.path
        )

    async def create_and_publish(
        self,
        executions: Sequence[Execution],
        messages: Mapping[str, Sequence[Message]],
        tasks: Sequence[TaskRecord] = (),
    ) -> None:
        """`create_tasks(tasks)`, `create_executions`, and publish `messages` (by topic), in
        one transaction; then wake the pullers of the subscriptions that received them, in
        every process."""
        if not executions:
            return
        rows = {topic: sqlite_db.message_rows(batch) for topic, batch in messages.items()}
        await self._run(lambda db: self._then_wake(db.create_and_publish(executions, rows, tasks)))

    def _then_wake(self, subscriptions: list[str]) -> None:
        if self._wake is not None:
            self._wake.send(subscriptions)
