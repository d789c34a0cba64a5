"""The PostgreSQL store: `postgresql://USER@HOST:PORT/DATABASE` (extra `sublim[postgres]`).

Every batch is one statement where it can be: executions, their events and their tasks'
latest-execution pointers are written by one statement of data-modifying CTEs, arrays bound
column by column (`unnest`). `modify_executions` locks its rows in id order
(`SELECT … ORDER BY id FOR UPDATE`, so that concurrent batches cannot deadlock), applies the
core's function, and writes every change with one more statement, in one transaction.

Lists use keyset pagination (`id < cursor ORDER BY id DESC LIMIT n`) on an index for each
filter, so a page costs the same on the millionth row as on the first.

When the broker is the same database, `create_and_publish` writes executions and their
request messages in one transaction: the same-database outbox (`TransactionalOutbox`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from itertools import count
from typing import Any

import asyncpg

from sublim.broker.base import Broker, Message
from sublim.core.model import Change, Execution, TaskRecord, TaskStatus
from sublim.engines import postgres as pg_db
from sublim.errors import ExecutionNotFound, StoreError, TaskNotFound
from sublim.store._common import apply_in_order, page_of, patched
from sublim.store._postgres_rows import MUTABLE_EXECUTION_COLUMNS, POSTGRES, types_of
from sublim.store._rows import EXECUTION_COLUMNS, TASK_COLUMNS
from sublim.store._sql import EVENT_COLUMNS, SELECT_TASKS, names
from sublim.store.base import ExecutionQuery, ModifyFn, Page, StoreStats, TaskPatch, TaskQuery

POOL_SIZE = 10

MIGRATIONS: list[pg_db.Migration] = [
    (
        # Ids are ULIDs: the "C" collation orders them bytewise, which is creation order.
        """CREATE TABLE tasks (
            id text COLLATE "C" PRIMARY KEY,
            name text NOT NULL,
            topic text NOT NULL,
            payload jsonb NOT NULL,
            labels jsonb NOT NULL,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            latest_execution_id text COLLATE "C",
            latest_status text
        )""",
        "CREATE INDEX tasks_by_topic ON tasks (topic, id)",
        # The status filter of task lists is the latest execution's, kept on the task row.
        "CREATE INDEX tasks_by_latest_status ON tasks (latest_status, id)",
        "CREATE INDEX tasks_by_labels ON tasks USING gin (labels jsonb_path_ops)",
        """CREATE TABLE executions (
            id text COLLATE "C" PRIMARY KEY,
            task_id text COLLATE "C" NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
            topic text NOT NULL,
            status text NOT NULL,
            attempt integer NOT NULL,
            max_attempts integer NOT NULL,
            last_seq integer NOT NULL,
            payload jsonb NOT NULL,
            result jsonb,
            error jsonb,
            worker jsonb,
            created_at timestamptz NOT NULL,
            dispatched_at timestamptz,
            started_at timestamptz,
            finished_at timestamptz,
            duration_seconds double precision,
            heartbeat_at timestamptz,
            -- The seq of its newest event: read with the row lock, it numbers the next ones.
            last_event_seq integer NOT NULL
        )""",
        "CREATE INDEX executions_by_task ON executions (task_id, id)",
        "CREATE INDEX executions_by_topic ON executions (topic, id)",
        "CREATE INDEX executions_by_status ON executions (status, id)",
        "CREATE INDEX executions_by_created_at ON executions (created_at, id)",
        # What the sweeper asks: running executions whose last sign of life is old.
        """CREATE INDEX executions_by_status_heartbeat
            ON executions (status, (COALESCE(heartbeat_at, created_at)))""",
        """CREATE TABLE events (
            execution_id text COLLATE "C" NOT NULL
                REFERENCES executions (id) ON DELETE CASCADE,
            seq integer NOT NULL,
            status text NOT NULL,
            at timestamptz NOT NULL,
            attempt integer NOT NULL,
            reason text,
            PRIMARY KEY (execution_id, seq)
        )""",
    ),
    (
        # Executions may wait Blocked on others (a JSON list of their ids) ...
        "ALTER TABLE executions ADD COLUMN depends_on jsonb NOT NULL DEFAULT '[]'",
        # ... and are found by the one they wait on (`waiting_on`, with @>).
        "CREATE INDEX executions_by_dependency ON executions USING gin (depends_on jsonb_path_ops)",
    ),
    (
        # Lists of executions answered from indexes alone (`_sql.Dialect.list_executions`):
        # topic + status, newest first, without reading the matches of only one of them;
        "CREATE INDEX executions_by_topic_status ON executions (topic, status, id)",
        # the ids in order with created_at beside them, so that a created_at filter skips
        # the newer ids in the index (an index-only scan) instead of reading their rows.
        "CREATE INDEX executions_by_id_created_at ON executions (id, created_at)",
    ),
]


def _placeholders(how_many: int, first: int = 1) -> str:
    return ", ".join(f"${i}" for i in range(first, first + how_many))


_INSERT_TASK = (
    f"INSERT INTO tasks ({names(TASK_COLUMNS)}) VALUES ({_placeholders(len(TASK_COLUMNS))})"
)
_CREATE_TASKS = (
    f"INSERT INTO tasks ({names(TASK_COLUMNS)}) "
    f"SELECT * FROM {pg_db.unnest(types_of(TASK_COLUMNS))}"
)
_UPDATE_TASK = (
    "UPDATE tasks SET name = $2, payload = $3, labels = $4, updated_at = $5 WHERE id = $1"
)
_EVENTS_OF = (
    "ARRAY(SELECT ROW(v.status, v.at, v.attempt, v.reason) FROM events v "
    "WHERE v.execution_id = x.id ORDER BY v.seq)"
)
_GET_EXECUTION = (
    f"SELECT {names(EXECUTION_COLUMNS, 'x.')}, {_EVENTS_OF} FROM executions x WHERE x.id = $1"
)
#: The batch's rows, locked in id order so that concurrent batches cannot deadlock.
_LOCK_EXECUTIONS = (
    f"SELECT {names(EXECUTION_COLUMNS)}, last_event_seq FROM executions "
    "WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE"
)
_CREATED_COLUMNS = (*EXECUTION_COLUMNS, "last_event_seq")
_CHANGED_COLUMNS = ("id", *MUTABLE_EXECUTION_COLUMNS, "last_event_seq")


def _insert_events_cte(first: int) -> str:
    return (
        f"logged AS (INSERT INTO events ({names(EVENT_COLUMNS)}) "
        f"SELECT * FROM {pg_db.unnest(types_of(EVENT_COLUMNS), first)})"
    )


_CREATE_EXECUTIONS = f"""
WITH created AS (
    INSERT INTO executions ({names(_CREATED_COLUMNS)})
    SELECT * FROM {pg_db.unnest(types_of(_CREATED_COLUMNS))}
    RETURNING id, task_id, status
),
{_insert_events_cte(len(_CREATED_COLUMNS) + 1)},
newest AS (
    SELECT DISTINCT ON (task_id) task_id, id, status FROM created ORDER BY task_id, id DESC
)
UPDATE tasks t SET latest_execution_id = n.id, latest_status = n.status
FROM newest n
WHERE t.id = n.task_id AND (t.latest_execution_id IS NULL OR t.latest_execution_id < n.id)
"""

_WRITE_CHANGES = f"""
WITH changed AS (
    SELECT * FROM {pg_db.unnest(types_of(_CHANGED_COLUMNS))} AS c ({names(_CHANGED_COLUMNS)})
),
updated AS (
    UPDATE executions x SET {", ".join(f"{n} = c.{n}" for n in _CHANGED_COLUMNS[1:])}
    FROM changed c WHERE x.id = c.id
),
{_insert_events_cte(len(_CHANGED_COLUMNS) + 1)}
UPDATE tasks t SET latest_status = c.status
FROM changed c
WHERE t.latest_execution_id = c.id AND t.latest_status IS DISTINCT FROM c.status
"""

_MISSING_TASKS = (
    "SELECT wanted FROM unnest($1::text[]) AS wanted "
    "WHERE NOT EXISTS (SELECT 1 FROM tasks WHERE id = wanted) ORDER BY wanted"
)


def _creation_arguments(executions: Sequence[Execution]) -> list[list[Any]]:
    rows = [[*POSTGRES.execution_row(e), len(e.events)] for e in executions]
    events = [
        POSTGRES.event_row(execution.id, seq, event)
        for execution in executions
        for seq, event in enumerate(execution.events, start=1)
    ]
    return [
        *pg_db.columns(rows, len(_CREATED_COLUMNS)),
        *pg_db.columns(events, len(EVENT_COLUMNS)),
    ]


def _change_arguments(applied: Sequence[Change], last_seqs: dict[str, int]) -> list[list[Any]]:
    """The arrays `_WRITE_CHANGES` binds: each execution's final row, then its new events.
    `last_seqs` (the seq of each execution's newest event) follows the events numbered."""
    events = [
        POSTGRES.event_row(change.execution.id, _next_seq(last_seqs, change.execution.id), event)
        for change in applied
        for event in change.new_events
    ]
    final = {change.execution.id: change.execution for change in applied}
    columns = _CHANGED_COLUMNS[:-1]
    rows = [[*POSTGRES.execution_row(e, columns), last_seqs[e.id]] for e in final.values()]
    return [*pg_db.columns(rows, len(_CHANGED_COLUMNS)), *pg_db.columns(events, len(EVENT_COLUMNS))]


def _next_seq(last_seqs: dict[str, int], execution_id: str) -> int:
    last_seqs[execution_id] += 1
    return last_seqs[execution_id]


class PostgresStore:
    """The `Store` on a PostgreSQL database, which it may share with the PostgreSQL broker."""

    def __init__(self, dsn: str, *, pool_size: int = POOL_SIZE) -> None:
        self.dsn = dsn
        self._db = pg_db.PooledDatabase(
            dsn, "store", MIGRATIONS, pool_size=pool_size, error=StoreError
        )

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        return cls(pg_db.dsn_from_url(url))

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    # Tasks

    async def create_task(self, task: TaskRecord) -> TaskRecord:
        tries = count(1)

        async def insert(conn: asyncpg.Connection) -> None:
            if next(tries) > 1 and await _exist(conn, "tasks", [task.id]):
                return  # an earlier try committed, then lost its connection before the reply
            await conn.execute(_INSERT_TASK, *POSTGRES.task_row(task))

        await self._db.run(insert)
        return task.model_copy(update={"latest_execution": None})

    async def create_tasks(self, tasks: Sequence[TaskRecord]) -> list[TaskRecord]:
        """The tasks in one statement (rows bound column by column, `unnest`)."""
        if not tasks:
            return []
        tries = count(1)
        ids = [task.id for task in tasks]
        rows = [POSTGRES.task_row(task) for task in tasks]

        async def insert(conn: asyncpg.Connection) -> None:
            if next(tries) > 1 and await _exist(conn, "tasks", ids):
                return  # an earlier try committed, then lost its connection before the reply
            await conn.execute(_CREATE_TASKS, *pg_db.columns(rows, len(TASK_COLUMNS)))

        await self._db.run(insert)
        return [task.model_copy(update={"latest_execution": None}) for task in tasks]

    async def get_task(self, task_id: str) -> TaskRecord:
        row = await self._db.run(
            lambda conn: conn.fetchrow(f"{SELECT_TASKS} WHERE t.id = $1", task_id)
        )
        if row is None:
            raise TaskNotFound(task_id)
        return POSTGRES.task_from_row(row)

    async def list_tasks(self, query: TaskQuery) -> Page[TaskRecord]:
        sql, params = POSTGRES.list_tasks(query)
        rows = await self._db.run(lambda conn: conn.fetch(sql, *params))
        return page_of(
            [POSTGRES.task_from_row(row) for row in rows], query.limit, lambda task: task.id
        )

    async def update_task(self, task_id: str, patch: TaskPatch) -> TaskRecord:
        async def update(conn: asyncpg.Connection) -> TaskRecord:
            row = await conn.fetchrow(f"{SELECT_TASKS} WHERE t.id = $1 FOR UPDATE OF t", task_id)
            if row is None:
                raise TaskNotFound(task_id)
            task = patched(POSTGRES.task_from_row(row), patch)
            values = dict(zip(TASK_COLUMNS, POSTGRES.task_row(task), strict=True))
            columns = ("id", "name", "payload", "labels", "updated_at")
            await conn.execute(_UPDATE_TASK, *(values[c] for c in columns))
            return task

        return await self._db.in_transaction(update)

    async def delete_task(self, task_id: str) -> None:
        status = await self._db.run(
            lambda conn: conn.execute("DELETE FROM tasks WHERE id = $1", task_id)
        )
        if status == "DELETE 0":
            raise TaskNotFound(task_id)

    # Executions

    async def create_executions(self, executions: Sequence[Execution]) -> None:
        if executions:
            await self._db.run(_recording_once(executions, _publish_nothing))

    async def get_execution(self, execution_id: str) -> Execution:
        row = await self._db.run(lambda conn: conn.fetchrow(_GET_EXECUTION, execution_id))
        if row is None:
            raise ExecutionNotFound(execution_id)
        return POSTGRES.execution_from_row(row, row[len(EXECUTION_COLUMNS)])

    async def list_executions(self, query: ExecutionQuery) -> Page[Execution]:
        sql, params = POSTGRES.list_executions(query)
        rows = await self._db.run(lambda conn: conn.fetch(sql, *params))
        return page_of(
            [POSTGRES.execution_from_row(row) for row in rows], query.limit, lambda e: e.id
        )

    async def modify_executions(self, ids: Sequence[str], fn: ModifyFn) -> list[Change]:
        if not ids:
            return []
        return await self._db.in_transaction(lambda conn: self._modify(conn, ids, fn))

    async def _modify(
        self, conn: asyncpg.Connection, ids: Sequence[str], fn: ModifyFn
    ) -> list[Change]:
        rows = await conn.fetch(_LOCK_EXECUTIONS, sorted(set(ids)))
        current = {row[0]: POSTGRES.execution_from_row(row) for row in rows}
        last_seqs = {row[0]: row[len(EXECUTION_COLUMNS)] for row in rows}
        changes = apply_in_order(ids, current, fn)
        applied = [change for change in changes if change.changed]
        if applied:
            await conn.execute(_WRITE_CHANGES, *_change_arguments(applied, last_seqs))
        return changes

    async def stats(self) -> StoreStats:
        sql = (
            "SELECT (SELECT COUNT(*) FROM tasks), status, COUNT(*) FROM executions GROUP BY status "
            "UNION ALL SELECT (SELECT COUNT(*) FROM tasks), NULL, 0"
        )
        rows = await self._db.run(lambda conn: conn.fetch(sql))
        per_status = {TaskStatus(row[1]): row[2] for row in rows if row[1] is not None}
        return StoreStats(tasks=rows[0][0], executions=per_status)

    # The same-database outbox

    def shares_transactions_with(self, broker: Broker) -> bool:
        """Whether `broker` keeps its messages in this store's database."""
        return isinstance(broker, pg_db.BrokerTables) and pg_db.same_database(self.dsn, broker.dsn)

    async def create_and_publish(
        self,
        executions: Sequence[Execution],
        messages: Mapping[str, Sequence[Message]],
        tasks: Sequence[TaskRecord] = (),
    ) -> None:
        """`create_tasks(tasks)`, `create_executions`, and publish `messages` (by topic), in
        one transaction."""

        async def publish(conn: asyncpg.Connection) -> None:
            for topic, topic_messages in messages.items():
                await pg_db.insert_messages(conn, topic, topic_messages)

        if executions:
            await self._db.run(_recording_once(executions, publish, tasks))


async def _exist(conn: asyncpg.Connection, table: str, ids: Sequence[str]) -> bool:
    """Whether every one of `ids` is in `table` ("tasks" or "executions")."""
    found: int = await conn.fetchval(
        f"SELECT COUNT(*) FROM {table} WHERE id = ANY($1::text[])", ids
    )
    return found == len(set(ids))


Publish = Callable[[asyncpg.Connection], Awaitable[None]]


async def _publish_nothing(conn: asyncpg.Connection) -> None:
    return None


def _recording_once(
    executions: Sequence[Execution], publish: Publish, tasks: Sequence[TaskRecord] = ()
) -> Callable[[asyncpg.Connection], Awaitable[None]]:
    """Insert the tasks, the executions, and `publish`, in one transaction; when retried after
    a broken connection, do nothing if an earlier try committed (its executions are there:
    ids are new ULIDs, so nobody else wrote them)."""
    task_rows = [POSTGRES.task_row(task) for task in tasks]
    tries = count(1)
    ids = [execution.id for execution in executions]

    async def record(conn: asyncpg.Connection) -> None:
        if next(tries) > 1 and await _exist(conn, "executions", ids):
            return
        try:
            async with conn.transaction():
                if task_rows:
                    await conn.execute(_CREATE_TASKS, *pg_db.columns(task_rows, len(TASK_COLUMNS)))
                await conn.execute(_CREATE_EXECUTIONS, *_creation_arguments(executions))
                await publish(conn)
        except asyncpg.ForeignKeyViolationError:
            raise TaskNotFound(await _first_missing_task(conn, executions)) from None

    return record


async def _first_missing_task(conn: asyncpg.Connection, executions: Sequence[Execution]) -> str:
    task_ids = sorted({execution.task_id for execution in executions})
    missing = await conn.fetch(_MISSING_TASKS, task_ids)
    return str(missing[0][0]) if missing else task_ids[0]
