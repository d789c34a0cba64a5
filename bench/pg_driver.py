"""psycopg 3 or asyncpg for the PostgreSQL backends? The store's three hot operations, with
each driver, on the same schema and the same SQL shapes (median of 3 runs):

- create: insert 100 executions and their 2 events each, in one transaction;
- modify: lock those 100 rows (`SELECT … FOR UPDATE`, ordered by id), update them from
  arrays (`UPDATE … FROM unnest(…)`), insert one event each, in one transaction;
- get: read one execution and its events, 1,000 times one after the other.

    .venv/bin/python bench/pg_driver.py [--dsn postgresql://postgres@127.0.0.1:5432/postgres]

asyncpg is not a dependency: `.venv/bin/uv pip install asyncpg` to measure it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import psycopg

BATCH = 100
GETS = 1000
RUNS = 3

SCHEMA = [
    """CREATE TABLE executions (id text PRIMARY KEY, task_id text NOT NULL, topic text NOT NULL,
        status text NOT NULL, attempt int NOT NULL, last_seq int NOT NULL, payload jsonb NOT NULL,
        result jsonb, worker jsonb, created_at timestamptz NOT NULL, heartbeat_at timestamptz)""",
    "CREATE INDEX ON executions (status, id)",
    """CREATE TABLE events (execution_id text NOT NULL REFERENCES executions ON DELETE CASCADE,
        seq int NOT NULL, status text NOT NULL, at timestamptz NOT NULL, attempt int NOT NULL,
        reason text, PRIMARY KEY (execution_id, seq))""",
]
INSERT_EXECUTION = (
    "INSERT INTO executions (id, task_id, topic, status, attempt, last_seq, payload, result,"
    " worker, created_at, heartbeat_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})"
)
INSERT_EVENT = (
    "INSERT INTO events (execution_id, seq, status, at, attempt, reason)"
    " VALUES ({}, {}, {}, {}, {}, {})"
)
LOCK = "SELECT id, status, last_seq FROM executions WHERE id = ANY({}) ORDER BY id FOR UPDATE"
UPDATE = (
    "UPDATE executions e SET status = u.status, last_seq = u.last_seq, result = u.result::jsonb,"
    " heartbeat_at = u.at FROM unnest({}::text[], {}::text[], {}::int[], {}::text[],"
    " {}::timestamptz[]) AS u(id, status, last_seq, result, at) WHERE e.id = u.id"
)
GET_ROW = "SELECT * FROM executions WHERE id = {}"
GET_EVENTS = "SELECT status, at, attempt, reason FROM events WHERE execution_id = {} ORDER BY seq"


def psycopg_sql(template: str) -> str:
    return template.format(*["%s"] * template.count("{}"))


def asyncpg_sql(template: str) -> str:
    return template.format(*[f"${i}" for i in range(1, template.count("{}") + 1)])


def execution_rows() -> list[tuple[Any, ...]]:
    now = datetime.now(UTC)
    payload = json.dumps({"url": "https://example.com/a.png", "width": 256})
    return [
        (
            secrets.token_hex(13),
            "task",
            "Thumbnail",
            "Dispatched",
            1,
            0,
            payload,
            None,
            None,
            now,
            None,
        )
        for _ in range(BATCH)
    ]


def event_rows(ids: list[str], seq: int, status: str) -> list[tuple[Any, ...]]:
    now = datetime.now(UTC)
    return [(i, seq, status, now, 1, "bench") for i in ids]


def update_columns(ids: list[str]) -> list[list[Any]]:
    now = datetime.now(UTC)
    result = json.dumps({"bytes": 1234})
    return [ids, ["Passed"] * len(ids), [1] * len(ids), [result] * len(ids), [now] * len(ids)]


class PsycopgBench:
    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn

    async def create(self, rows: list[tuple[Any, ...]]) -> None:
        async with self.conn.transaction(), self.conn.cursor() as cur:
            await cur.executemany(psycopg_sql(INSERT_EXECUTION), rows)
            ids = [row[0] for row in rows]
            events = event_rows(ids, 1, "Initialized") + event_rows(ids, 2, "ReadyForDispatch")
            await cur.executemany(psycopg_sql(INSERT_EVENT), events)

    async def modify(self, ids: list[str]) -> None:
        async with self.conn.transaction(), self.conn.cursor() as cur:
            await cur.execute(psycopg_sql(LOCK), (ids,))
            await cur.fetchall()
            await cur.execute(psycopg_sql(UPDATE), update_columns(ids))
            await cur.executemany(psycopg_sql(INSERT_EVENT), event_rows(ids, 3, "Passed"))

    async def get(self, execution_id: str) -> None:
        async with self.conn.transaction(), self.conn.cursor() as cur:
            await cur.execute(psycopg_sql(GET_ROW), (execution_id,))
            await cur.fetchone()
            await cur.execute(psycopg_sql(GET_EVENTS), (execution_id,))
            await cur.fetchall()


class AsyncpgBench:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def create(self, rows: list[tuple[Any, ...]]) -> None:
        async with self.conn.transaction():
            await self.conn.executemany(asyncpg_sql(INSERT_EXECUTION), rows)
            ids = [row[0] for row in rows]
            events = event_rows(ids, 1, "Initialized") + event_rows(ids, 2, "ReadyForDispatch")
            await self.conn.executemany(asyncpg_sql(INSERT_EVENT), events)

    async def modify(self, ids: list[str]) -> None:
        async with self.conn.transaction():
            await self.conn.fetch(asyncpg_sql(LOCK), ids)
            await self.conn.execute(asyncpg_sql(UPDATE), *update_columns(ids))
            await self.conn.executemany(asyncpg_sql(INSERT_EVENT), event_rows(ids, 3, "Passed"))

    async def get(self, execution_id: str) -> None:
        async with self.conn.transaction():
            await self.conn.fetchrow(asyncpg_sql(GET_ROW), execution_id)
            await self.conn.fetch(asyncpg_sql(GET_EVENTS), execution_id)


async def timed(operation: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await operation()
    return time.perf_counter() - started


async def one_run(bench: PsycopgBench | AsyncpgBench) -> dict[str, float]:
    """Seconds per operation: create and modify of one batch (mean of 20), one get; and the
    client's CPU seconds per execution over the whole run."""
    cpu_started = time.process_time()
    creates, modifies = [], []
    batches = [execution_rows() for _ in range(20)]
    for rows in batches:
        creates.append(await timed(lambda rows=rows: bench.create(rows)))
    for rows in batches:
        ids = [row[0] for row in rows]
        modifies.append(await timed(lambda ids=ids: bench.modify(ids)))
    some_id = batches[0][0][0]
    gets = await timed(lambda: gets_of(bench, some_id))
    cpu = (time.process_time() - cpu_started) / (len(batches) * BATCH * 2 + GETS)
    return {
        "create": statistics.mean(creates),
        "modify": statistics.mean(modifies),
        "get": gets / GETS,
        "cpu": cpu,
    }


async def gets_of(bench: PsycopgBench | AsyncpgBench, execution_id: str) -> None:
    for _ in range(GETS):
        await bench.get(execution_id)


async def with_database(
    dsn: str, measure: Callable[[str], Awaitable[list[dict[str, float]]]]
) -> list[dict[str, float]]:
    """Run `measure` on a fresh database holding the bench schema."""
    name = f"sublim_bench_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as admin:
        await admin.execute(f'CREATE DATABASE "{name}"')
    url = dsn.rsplit("/", 1)[0] + f"/{name}"
    try:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            for statement in SCHEMA:
                await conn.execute(statement)
        return await measure(url)
    finally:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as admin:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


async def measure_psycopg(url: str) -> list[dict[str, float]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        return [await one_run(PsycopgBench(conn)) for _ in range(RUNS)]


async def measure_asyncpg(url: str) -> list[dict[str, float]]:
    import asyncpg  # type: ignore[import-not-found]  # not a dependency: measured only

    conn = await asyncpg.connect(url)
    try:
        return [await one_run(AsyncpgBench(conn)) for _ in range(RUNS)]
    finally:
        await conn.close()


def report(driver: str, runs: list[dict[str, float]]) -> None:
    median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    print(
        f"| {driver} | {median['create'] * 1000:.2f} ms ({BATCH / median['create']:,.0f}/s) "
        f"| {median['modify'] * 1000:.2f} ms ({BATCH / median['modify']:,.0f}/s) "
        f"| {median['get'] * 1e6:.0f} µs | {median['cpu'] * 1e6:.0f} µs |"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    print(f"| driver | create {BATCH} | modify {BATCH} | get 1 | client CPU per row or get |")
    print("|---|---|---|---|---|")
    report(f"psycopg {psycopg.__version__}", await with_database(args.dsn, measure_psycopg))
    try:
        report("asyncpg", await with_database(args.dsn, measure_asyncpg))
    except ImportError:
        print("| asyncpg | not installed | | | |")


if __name__ == "__main__":
    asyncio.run(main())
