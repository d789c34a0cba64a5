"""What only the SQLite store promises: its file outlives the process, several processes
share it safely, and its schema migrates forward only."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from sublim.core.model import TaskStatus
from sublim.engines.sqlite import connect, migrate
from sublim.errors import ConfigError, StoreError
from sublim.store._sqlite_rows import SQLITE
from sublim.store.base import ExecutionQuery, TaskQuery
from sublim.store.sqlite import MIGRATIONS, SqliteStore
from tests.contract.store_builders import a_task, an_execution, at, next_heartbeat


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


@asynccontextmanager
async def opened(path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore.from_url(url_of(path))
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def test_data_survives_closing_and_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    task = a_task(labels={"team": "media"})
    execution = an_execution(task)
    async with opened(path) as store:
        await store.create_task(task)
        await store.create_executions([execution])
    async with opened(path) as store:
        assert (await store.get_task(task.id)).labels == task.labels
        assert await store.get_execution(execution.id) == execution


async def test_a_store_can_be_closed_and_opened_again(tmp_path: Path) -> None:
    store = SqliteStore.from_url(url_of(tmp_path / "store.db"))
    await store.open()
    task = await store.create_task(a_task())
    await store.close()
    await store.open()
    assert await store.get_task(task.id) == task
    await store.close()


async def test_a_store_that_is_not_open_refuses_calls_with_store_error(tmp_path: Path) -> None:
    store = SqliteStore.from_url(url_of(tmp_path / "store.db"))
    with pytest.raises(StoreError, match="not open"):
        await store.stats()


async def test_a_file_that_is_not_a_database_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError):
        await SqliteStore.from_url(url_of(path)).open()


def test_a_url_of_another_scheme_is_refused_with_config_error() -> None:
    with pytest.raises(ConfigError):
        SqliteStore.from_url("postgresql://localhost/sublim")


# Several processes on one file


def _apply_heartbeats(url: str, execution_id: str, times: int, start: Barrier) -> None:
    async def beat() -> None:
        store = SqliteStore.from_url(url)
        await store.open()
        start.wait()
        for _ in range(times):
            await store.modify_executions([execution_id], next_heartbeat)
        await store.close()

    asyncio.run(beat())


async def test_two_processes_applying_updates_to_one_file_lose_none(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    task = a_task()
    execution = an_execution(task, status=TaskStatus.RUNNING)
    async with opened(path) as store:
        await store.create_task(task)
        await store.create_executions([execution])
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    args = (url_of(path), execution.id, 150, start)
    workers = [context.Process(target=_apply_heartbeats, args=args) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        await asyncio.to_thread(worker.join, 120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    async with opened(path) as store:
        assert (await store.get_execution(execution.id)).last_seq == 300


# Schema


def _store_schema_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        sql = "SELECT version FROM sublim_schema WHERE component = 'store'"
        version: int = conn.execute(sql).fetchone()[0]
        return version


async def test_migrating_an_up_to_date_file_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    async with opened(path) as store:
        task = await store.create_task(a_task())
    conn = connect(str(path))
    try:
        assert migrate(conn, "store", MIGRATIONS) == len(MIGRATIONS)
    finally:
        conn.close()
    assert _store_schema_version(path) == len(MIGRATIONS)
    async with opened(path) as store:
        assert await store.get_task(task.id) == task


async def test_a_schema_newer_than_this_sublim_knows_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    async with opened(path):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE sublim_schema SET version = version + 1 WHERE component = 'store'")
    with pytest.raises(ConfigError, match="newer"):
        await SqliteStore.from_url(url_of(path)).open()


def _query_plan(path: Path, sql: str, *params: object) -> str:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    return " | ".join(row[-1] for row in rows)


async def test_list_filters_are_answered_from_indexes(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    async with opened(path):
        pass
    label_plan = _query_plan(
        path, "SELECT task_id FROM task_labels WHERE key = ? AND value = ?", "team", "media"
    )
    sweep_plan = _query_plan(
        path,
        "SELECT id FROM executions WHERE status = ? AND COALESCE(heartbeat_at, created_at) < ?",
        "Running",
        0.0,
    )
    assert "USING COVERING INDEX task_labels_by_key_value" in label_plan
    assert "USING INDEX executions_by_status_heartbeat" in sweep_plan
    # Lists of executions find their page's ids in one index, without reading rows.
    topic_status = ExecutionQuery(topic="A", statuses=frozenset({TaskStatus.FAILED}))
    window = ExecutionQuery(created_after=at(0), created_before=at(10))
    sql, params = SQLITE.list_executions(topic_status)
    assert "COVERING INDEX executions_by_topic_status" in _query_plan(path, sql, *params)
    sql, params = SQLITE.list_executions(window)
    assert "COVERING INDEX executions_by_" in _query_plan(path, sql, *params)


async def test_queries_filtering_on_everything_still_return_the_right_rows(
    tmp_path: Path,
) -> None:
    # Guards the SQL built from many filters at once (parameter order, joins).
    async with opened(tmp_path / "store.db") as store:
        task = await store.create_task(a_task(topic="A", labels={"a": "1", "b": "2"}))
        execution = an_execution(task, status=TaskStatus.RUNNING)
        await store.create_executions([execution])
        tasks = await store.list_tasks(
            TaskQuery(topic="A", labels={"a": "1", "b": "2"}, status=TaskStatus.RUNNING)
        )
        executions = await store.list_executions(
            ExecutionQuery(
                task_id=task.id,
                topic="A",
                statuses=frozenset({TaskStatus.RUNNING, TaskStatus.DISPATCHED}),
                created_after=execution.created_at,
                heartbeat_before=execution.created_at.replace(year=2100),
                cursor="Z" * 26,
            )
        )
    assert [t.id for t in tasks.items] == [task.id]
    assert [e.id for e in executions.items] == [execution.id]
