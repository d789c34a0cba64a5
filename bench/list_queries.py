"""List queries: latency of `GET /v1/executions` (each filter, first page and a deep cursor)
on a store holding `--n` executions.

The data is loaded straight into the tables of a fresh store (its schema made by the store's
own migrations: the script opens the store once through its URL), without going through the
service, so that millions load in minutes:

- `sqlite`: a new file; `executemany` in transactions of 100,000 rows;
- `postgres`: a new database; `COPY` (asyncpg `copy_records_to_table`) with the foreign-key
  triggers off for the load (`session_replication_role = replica`), then `VACUUM ANALYZE`
  (what autovacuum would do to a table that size).

The secondary indexes the migrations made are dropped before the load and made again, from
their own definitions, after it (faster than keeping them up to date row by row).

The data: executions spread evenly over 30 days, ids ULIDs of their creation time (so id
order is creation order), two per task (a task and its re-run); 20 topics with Zipf weights
(1/k); statuses final only (85% Passed, 8% Failed, 3% Cancelled, 2% Error, 1% Killed, 1%
Incomplete), so that the API's sweeper has nothing to change; each with the event log of its
path (3 to 5 events); tasks carry their latest execution.

Then a real `sublim api` serves the store (broker: a SQLite file, or the same PostgreSQL
database) and each case below is asked `--requests` times (after one warm-up request), one
request at a time, on one keep-alive connection, with the default page size (50):

- first page, and a deep cursor: the id of the execution in the middle of the table (which
  is also the middle of the one-day window), or for a task's executions its newer one;
- cases: no filter, status (common, rare, two statuses), topic (common), topic+status
  (common and rare combinations), created_after, created_before, a one-day window
  (created_after+created_before) in the middle, and a task's executions
  (`GET /v1/tasks/{id}/executions`).

Prints a markdown table of p50/p99 in ms per case (and the page's item count).

    .venv/bin/python bench/list_queries.py --store sqlite --n 1000000
    .venv/bin/python bench/list_queries.py --store postgres --n 2000000 \\
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
        [--requests 30] [--keep] [--url STORE_URL] [--ids FILE]

`--keep` leaves the loaded store in place (its URL is printed; remove the file or drop the
database afterwards) and `--url` measures such a
store again without loading (e.g. before and after a change of the queries or a new index,
which the API's migrations then build on the loaded data). `--ids FILE` writes the ids each
case answered, to compare two runs' answers. No timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

DAYS = 30
START = datetime(2026, 1, 1, tzinfo=UTC)
SPAN_MS = DAYS * 86_400_000
TOPICS = [f"Topic{k:02d}" for k in range(1, 21)]
TOPIC_WEIGHTS = [1 / k for k in range(1, 21)]
#: Final statuses only: the sweeper of the API under test then never changes the data.
STATUSES = {
    "Passed": 85,
    "Failed": 8,
    "Cancelled": 3,
    "Error": 2,
    "Killed": 1,
    "Incomplete": 1,
}
PATHS = {
    "Passed": ("Initialized", "ReadyForDispatch", "Dispatched", "Running", "Passed"),
    "Failed": ("Initialized", "ReadyForDispatch", "Dispatched", "Running", "Failed"),
    "Error": ("Initialized", "ReadyForDispatch", "Dispatched", "Running", "Error"),
    "Killed": ("Initialized", "ReadyForDispatch", "Dispatched", "Running", "Killed"),
    "Incomplete": ("Initialized", "ReadyForDispatch", "Dispatched", "Running", "Incomplete"),
    "Cancelled": ("Initialized", "ReadyForDispatch", "Cancelled"),
}
BATCH = 100_000

_RFC4648 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TO_CROCKFORD = str.maketrans(_RFC4648, _CROCKFORD)


def ulid(millis: int, low: int) -> str:
    """The ULID of `millis` and 80 random bits `low` (base32 in C, not digit by digit)."""
    value = (millis << 80) | low
    return (
        base64.b32encode((value << 30).to_bytes(20, "big")).decode().translate(_TO_CROCKFORD)[:26]
    )


# The data


@dataclass(frozen=True, slots=True)
class Row:
    """One execution as generated; `i` its rank in creation order."""

    i: int
    id: str
    task_id: str
    topic: str
    status: str
    created_ms: int


class Dataset:
    """`n` executions, generated deterministically from `seed`, in creation (id) order."""

    def __init__(self, n: int, seed: int = 12) -> None:
        self.n = n
        self.seed = seed

    def millis(self, i: int) -> int:
        return int(START.timestamp() * 1000) + i * SPAN_MS // self.n

    def executions(self) -> Iterator[tuple[Row, Row | None]]:
        """Each execution, with the task's first execution for the second of a pair."""
        rng = random.Random(self.seed)
        statuses, weights = list(STATUSES), list(STATUSES.values())
        first: Row | None = None
        for i in range(self.n):
            if i % 2 == 0:
                task_id = ulid(self.millis(i), rng.getrandbits(79))  # below its executions'
                topic = rng.choices(TOPICS, TOPIC_WEIGHTS)[0]
            else:
                assert first is not None
                task_id, topic = first.task_id, first.topic
            millis = self.millis(i)
            row = Row(
                i=i,
                id=ulid(millis, (1 << 79) | rng.getrandbits(79)),
                task_id=task_id,
                topic=topic,
                status=rng.choices(statuses, weights)[0],
                created_ms=millis,
            )
            yield row, (first if i % 2 else None)
            first = row

    def landmarks(self) -> tuple[str, str, str]:
        """The ids of execution n/2, of its task's newer execution, and of that task."""
        middle = self.n // 2
        for row, first in self.executions():
            if row.i == middle:
                found = row
            elif row.i == middle + 1 and first is not None and first.i == middle:
                return found.id, row.id, row.task_id
            elif row.i > middle:
                break
        return found.id, found.id, found.task_id


def moment(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, UTC)


#: The columns loaded (the migrations' defaults fill the rest).
#: Tasks: then their latest execution's id (both stores) and status (PostgreSQL only).
TASK_COLUMNS = ("id", "name", "topic", "payload", "labels", "created_at", "updated_at")
LATEST = ("latest_execution_id", "latest_status")
EXECUTION_COLUMNS = (
    "id",
    "task_id",
    "topic",
    "status",
    "attempt",
    "max_attempts",
    "last_seq",
    "payload",
    "result",
    "error",
    "worker",
    "created_at",
    "dispatched_at",
    "started_at",
    "finished_at",
    "duration_seconds",
    "heartbeat_at",
    "last_event_seq",  # PostgreSQL only
)
EVENT_COLUMNS = ("execution_id", "seq", "status", "at", "attempt", "reason")
WORKER = json.dumps({"node": "bench", "host": "bench-host", "pid": 4242})
ERROR = json.dumps({"type": "ValueError", "message": "bench failure", "traceback": None})


class Tables:
    """The rows of one batch of executions, with times as the engine stores them."""

    def __init__(self, to_time: Any) -> None:
        self.to_time = to_time
        self.tasks: list[list[Any]] = []
        self.executions: list[tuple[Any, ...]] = []
        self.events: list[tuple[Any, ...]] = []

    def add(self, row: Row, first: Row | None) -> None:
        at = self.to_time(row.created_ms)
        ended = self.to_time(row.created_ms + 1500)
        payload = json.dumps({"n": row.i, "topic": row.topic})
        if first is None:
            task = [row.task_id, f"task {row.i}", row.topic, payload, "{}", at, at, None, None]
            self.tasks.append(task)
        task = self.tasks[-1]
        task[-2:] = [row.id, row.status]  # its latest execution: this one
        path = PATHS[row.status]
        ran = "Running" in path
        self.executions.append(
            (
                row.id,
                row.task_id,
                row.topic,
                row.status,
                3 if row.status == "Incomplete" else 1,
                3 if row.status == "Incomplete" else 1,
                len(path) - 2 if ran else 0,
                payload,
                json.dumps({"ok": row.i}) if row.status == "Passed" else None,
                ERROR if row.status in {"Failed", "Error"} else None,
                WORKER if ran else None,
                at,
                self.to_time(row.created_ms + 5) if ran else None,
                self.to_time(row.created_ms + 10) if ran else None,
                ended,
                1.49 if ran else None,
                self.to_time(row.created_ms + 1000) if ran else None,
                len(path),
            )
        )
        for seq, status in enumerate(path, start=1):
            self.events.append((row.id, seq, status, at if seq < len(path) else ended, 1, None))


def batches(dataset: Dataset, to_time: Any) -> Iterator[Tables]:
    tables = Tables(to_time)
    for row, first in dataset.executions():
        tables.add(row, first)
        if len(tables.executions) >= BATCH and row.i % 2:
            yield tables
            tables = Tables(to_time)
    if tables.executions:
        yield tables


def progress(done: int, n: int, started: float) -> None:
    rate = done / (time.perf_counter() - started)
    print(f"  loaded {done:,}/{n:,} executions ({rate:,.0f}/s)", file=sys.stderr, flush=True)


# SQLite


SQLITE_INDEXES = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"


def load_sqlite(path: str, dataset: Dataset) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("PRAGMA cache_size=-500000")
    indexes = conn.execute(SQLITE_INDEXES).fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    started = time.perf_counter()
    done = 0
    for tables in batches(dataset, lambda millis: millis / 1000):
        conn.execute("BEGIN")
        tasks = [task[:-1] for task in tables.tasks]
        insert_sqlite(conn, "tasks", (*TASK_COLUMNS, LATEST[0]), tasks)
        executions = [row[:-1] for row in tables.executions]
        insert_sqlite(conn, "executions", EXECUTION_COLUMNS[:-1], executions)
        insert_sqlite(conn, "events", EVENT_COLUMNS, tables.events)
        conn.execute("COMMIT")
        done += len(tables.executions)
        progress(done, dataset.n, started)
    for _, sql in indexes:
        conn.execute(sql)
    conn.close()


def insert_sqlite(
    conn: sqlite3.Connection, table: str, columns: tuple[str, ...], rows: list[Any]
) -> None:
    marks = ", ".join("?" * len(columns))
    conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


async def open_store_once(url: str) -> None:
    """Open the store of `url` once: its migrations make the schema."""
    from sublim.config import Settings
    from sublim.store import postgres, sqlite

    Settings(store_url=url)  # the URL is one sublim accepts
    store = (sqlite.SqliteStore if url.startswith("sqlite") else postgres.PostgresStore).from_url(
        url
    )
    await store.open()
    await store.close()


# PostgreSQL


PG_INDEXES = """
    SELECT i.indexname, i.indexdef FROM pg_indexes i
    WHERE i.schemaname = current_schema() AND i.tablename IN ('tasks', 'executions', 'events')
      AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
"""


async def load_postgres(url: str, dataset: Dataset) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET session_replication_role = replica")  # no FK triggers
        indexes = await conn.fetch(PG_INDEXES)
        for index in indexes:
            await conn.execute(f'DROP INDEX "{index["indexname"]}"')
        await copy_postgres(conn, dataset)
        await conn.execute("SET maintenance_work_mem = '512MB'")
        for index in indexes:
            await conn.execute(index["indexdef"])
        await conn.execute("VACUUM ANALYZE tasks")
        await conn.execute("VACUUM ANALYZE executions")
        await conn.execute("VACUUM ANALYZE events")
    finally:
        await conn.close()


async def copy_postgres(conn: Any, dataset: Dataset) -> None:
    started = time.perf_counter()
    done = 0
    for tables in batches(dataset, moment):
        async with conn.transaction():
            await copy(conn, "tasks", (*TASK_COLUMNS, *LATEST), tables.tasks)
            await copy(conn, "executions", EXECUTION_COLUMNS, tables.executions)
            await copy(conn, "events", EVENT_COLUMNS, tables.events)
        done += len(tables.executions)
        progress(done, dataset.n, started)


async def copy(conn: Any, table: str, columns: tuple[str, ...], rows: list[Any]) -> None:
    await conn.copy_records_to_table(table, records=rows, columns=columns)


@contextlib.asynccontextmanager
async def postgres_database(admin_url: str, keep: bool) -> Any:
    """A new database on the engine of `admin_url`, dropped afterwards unless `keep`."""
    import asyncpg

    name = f"sublim_lists_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield admin_url.rsplit("/", 1)[0] + f"/{name}"
        finally:
            if not keep:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


# The API and the cases


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def running_api(folder: Path, store: str, broker: str) -> Iterator[str]:
    """`sublim api` on a free port, once it answers; stopped afterwards."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUBLIM_")}
    env["SUBLIM_SWEEP_INTERVAL_SECONDS"] = "3600"  # nothing to sweep: keep it out of the way
    log = folder / "api.log"
    command = [sys.executable, "-m", "sublim.cli", "api", "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--store", store, "--broker", broker],
        cwd=folder,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 1800  # new indexes are built on the loaded data
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"sublim api exited: {log.read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            raise SystemExit("sublim api did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    path: str
    params: dict[str, Any]
    deep_cursor: str


def cases(dataset: Dataset) -> list[Case]:
    n = dataset.n
    middle_id, newer_of_task, task_id = dataset.landmarks()
    common, mid, rare = TOPICS[0], TOPICS[2], TOPICS[14]
    quarter, three_quarters = (moment(dataset.millis(n * k // 4)).isoformat() for k in (1, 3))
    day = n * 86_400_000 // SPAN_MS
    window = {
        "created_after": moment(dataset.millis(n // 2 - day // 2)).isoformat(),
        "created_before": moment(dataset.millis(n // 2 + day // 2)).isoformat(),
    }
    listed: list[tuple[str, dict[str, Any]]] = [
        ("no filter", {}),
        ("status=Passed", {"status": "Passed"}),
        ("status=Killed (1%)", {"status": "Killed"}),
        ("status=Failed,Error", {"status": ["Failed", "Error"]}),
        (f"topic={common}", {"topic": common}),
        (f"topic={mid}+status=Failed", {"topic": mid, "status": "Failed"}),
        (f"topic={rare}+status=Killed", {"topic": rare, "status": "Killed"}),
        ("created_after (¼)", {"created_after": quarter}),
        ("created_before (¾)", {"created_before": three_quarters}),
        ("created_after+before (1 day)", window),
    ]
    found = [Case(name, "/v1/executions", params, middle_id) for name, params in listed]
    found.append(Case("task executions", f"/v1/tasks/{task_id}/executions", {}, newer_of_task))
    return found


def timed(client: httpx.Client, case: Case, cursor: str | None, requests: int) -> dict[str, Any]:
    params = {**case.params, **({"cursor": cursor} if cursor else {})}
    answer = client.get(case.path, params=params)  # warm-up
    answer.raise_for_status()
    ids = [item["id"] for item in answer.json()["items"]]
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        client.get(case.path, params=params).raise_for_status()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p99 = samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]
    return {"p50": statistics.median(samples), "p99": p99, "items": len(ids), "ids": ids}


def measure(url: str, dataset: Dataset, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with httpx.Client(base_url=url, timeout=120) as client:
        for case in cases(dataset):
            for page, cursor in (("first", None), ("deep", case.deep_cursor)):
                results[f"{case.name} | {page}"] = timed(client, case, cursor, args.requests)
    return results


def report(results: dict[str, Any], args: argparse.Namespace, load_seconds: float | None) -> None:
    loaded = f", loaded in {load_seconds:.0f} s" if load_seconds is not None else ""
    print(f"\n{args.store}, {args.n:,} executions{loaded}, {args.requests} requests per case\n")
    print("| case | page | p50 ms | p99 ms | items |")
    print("|---|---|---|---|---|")
    for key, result in results.items():
        print(f"| {key} | {result['p50']:.1f} | {result['p99']:.1f} | {result['items']} |")
    if args.ids:
        answers = {key: result["ids"] for key, result in results.items()}
        Path(args.ids).write_text(json.dumps(answers, indent=1))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", action="store_true", help="leave the loaded store in place")
    parser.add_argument("--url", help="measure this store, loaded by an earlier --keep run")
    parser.add_argument("--ids", help="write each case's answered ids to this JSON file")
    args = parser.parse_args()
    dataset = Dataset(args.n)
    with tempfile.TemporaryDirectory(prefix="bench-lists-") as name:
        folder = Path(name)
        if args.url:
            run(folder, args.url, dataset, args, None)
        elif args.store == "sqlite":
            where = Path(tempfile.mkdtemp(prefix="bench-lists-")) if args.keep else folder
            url = f"sqlite:///{where / 'store.db'}"
            seconds = await load(
                url, dataset, lambda: load_sqlite(str(where / "store.db"), dataset)
            )
            run(folder, url, dataset, args, seconds)
        else:
            async with postgres_database(args.postgres, args.keep) as url:
                seconds = await load(url, dataset, None)
                run(folder, url, dataset, args, seconds)


async def load(url: str, dataset: Dataset, sqlite_load: Any) -> float:
    started = time.perf_counter()
    await open_store_once(url)
    if sqlite_load is not None:
        sqlite_load()
    else:
        await load_postgres(url, dataset)
    seconds = time.perf_counter() - started
    print(f"loaded {dataset.n:,} executions in {seconds:.0f} s: {url}", file=sys.stderr)
    return seconds


def run(
    folder: Path, url: str, dataset: Dataset, args: argparse.Namespace, seconds: float | None
) -> None:
    broker = url if url.startswith("postgres") else f"sqlite:///{folder / 'broker.db'}"
    with running_api(folder, url, broker) as api:
        report(measure(api, dataset, args), args, seconds)


if __name__ == "__main__":
    asyncio.run(main())
