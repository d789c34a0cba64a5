"""What the Firestore store does beyond the shared contract: its declared indexes cover every
query it issues, concurrent writers in separate clients meet preconditions (not
transactions), large batches are split under the commit limit, long scans stop."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from sublim.core.model import TaskStatus
from sublim.errors import ConfigError
from sublim.store._firestore_queries import IndexShape, execution_plan, task_plan
from sublim.store.base import ExecutionQuery, TaskQuery
from sublim.store.firestore import FirestoreStore, KeyedLocks, parse_url
from tests.contract.store_builders import a_task, an_execution, at, next_heartbeat
from tests.gcp_emulators import fresh_firestore_project, reset_firestore

S = TaskStatus
ROOT = Path(__file__).resolve().parents[2]
INDEXES_FILE = ROOT / "deploy" / "gcp" / "firestore.indexes.json"


# The indexes file


def declared_shapes() -> set[IndexShape]:
    return {_shape_of(index) for index in json.loads(INDEXES_FILE.read_text())["indexes"]}


def _shape_of(index: dict[str, Any]) -> IndexShape:
    *filters, order = index["fields"]
    assert order["fieldPath"] == "id", f"an index must end with the id order: {index}"
    contains = [f["fieldPath"] for f in filters if f.get("arrayConfig") == "CONTAINS"]
    equalities = frozenset(f["fieldPath"] for f in filters if "order" in f)
    return IndexShape(
        collection=index["collectionGroup"],
        equalities=equalities,
        contains=contains[0] if contains else None,
        descending=order["order"] == "DESCENDING",
    )


def every_task_query() -> Iterator[TaskQuery]:
    for topic, labels, status in itertools.product(
        (None, "T"), ({}, {"a": "1"}, {"a": "1", "b": "2"}), (None, S.RUNNING)
    ):
        yield TaskQuery(topic=topic, labels=labels, status=status, limit=5)


def every_execution_query() -> Iterator[ExecutionQuery]:
    choices = itertools.product(
        (None, "task-id"),
        (None, "T"),
        (frozenset(), frozenset({S.RUNNING}), frozenset({S.RUNNING, S.DISPATCHED})),
        (None, at(10)),
        (None, "waited-on-id"),
        (False, True),
    )
    for task_id, topic, statuses, moment, waiting_on, oldest_first in choices:
        yield ExecutionQuery(
            task_id=task_id,
            topic=topic,
            statuses=statuses,
            created_after=moment,
            heartbeat_before=moment,
            waiting_on=waiting_on,
            oldest_first=oldest_first,
            limit=5,
        )


def planned_shapes() -> set[IndexShape]:
    plans = [*map(task_plan, every_task_query()), *map(execution_plan, every_execution_query())]
    return {plan.shape for plan in plans if plan.shape.needs_composite_index}


def test_every_query_shape_the_plans_can_make_has_a_declared_index() -> None:
    missing = planned_shapes() - declared_shapes()
    assert not missing, f"declare these in {INDEXES_FILE.name}: {missing}"


def test_every_declared_index_is_used_by_some_query() -> None:
    unused = declared_shapes() - planned_shapes()
    assert not unused, f"indexes no query needs (each costs writes): {unused}"


def test_the_indexes_file_declares_no_index_twice() -> None:
    indexes = json.loads(INDEXES_FILE.read_text())["indexes"]
    assert len(indexes) == len(declared_shapes())


def test_time_ranges_never_reach_firestore() -> None:
    """An inequality would make Firestore order by that field, not by id."""
    query = ExecutionQuery(created_after=at(0), created_before=at(5), heartbeat_before=at(9))
    assert execution_plan(query).filters == ()


# On the emulator


@pytest.fixture
async def store() -> AsyncIterator[FirestoreStore]:
    project = fresh_firestore_project()
    opened = FirestoreStore.from_url(f"firestore://{project}")
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
        reset_firestore(project)


async def test_every_query_the_store_issues_has_a_declared_index(store: FirestoreStore) -> None:
    for task_query in every_task_query():
        await store.list_tasks(task_query)
    for execution_query in every_execution_query():
        await store.list_executions(execution_query)
    issued = {shape for shape in store.query_shapes if shape.needs_composite_index}
    assert issued, "the store recorded no query"
    assert issued <= declared_shapes()


async def test_writers_in_two_clients_meet_preconditions_and_lose_no_update(
    store: FirestoreStore,
) -> None:
    other = FirestoreStore(store.project)
    await other.open()
    try:
        task = await store.create_task(a_task())
        execution = an_execution(task, status=S.RUNNING)
        await store.create_executions([execution])
        beats = [s.modify_executions([execution.id], next_heartbeat) for s in (store, other) * 15]
        await asyncio.gather(*beats)
        assert (await store.get_execution(execution.id)).last_seq == 30
        assert store.precondition_retries + other.precondition_retries > 0
    finally:
        await other.close()


async def test_a_creation_larger_than_one_commit_is_split_and_complete(
    store: FirestoreStore,
) -> None:
    task = await store.create_task(a_task())
    executions = [an_execution(task) for _ in range(300)]  # 600 writes with their events
    await store.create_executions(executions)
    stored = await store.list_executions(ExecutionQuery(limit=1000))
    assert len(stored.items) == 300
    summary = (await store.get_task(task.id)).latest_execution
    assert summary is not None
    assert summary.id == max(e.id for e in executions)


async def test_a_long_scan_answers_a_shorter_page_with_a_cursor(
    store: FirestoreStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sublim.store import firestore

    monkeypatch.setattr(firestore, "MAX_SCANNED", 10)
    monkeypatch.setattr(firestore, "SCAN_BATCH", 10)
    tasks = [await store.create_task(a_task(labels={"a": "1"})) for _ in range(30)]
    rare = await store.create_task(a_task(labels={"a": "1", "b": "2"}))
    for task in tasks:  # newer than `rare`: scanned before it
        await store.create_task(a_task(labels=task.labels))
    query = TaskQuery(labels={"a": "1", "b": "2"}, limit=5)
    pages = [await store.list_tasks(query)]
    while pages[-1].next_cursor is not None and len(pages) < 20:
        cursor = pages[-1].next_cursor
        pages.append(await store.list_tasks(query.model_copy(update={"cursor": cursor})))
    assert (pages[0].items, pages[0].next_cursor is not None) == ([], True)
    assert [task.id for page in pages for task in page.items] == [rare.id]


# Pure parts


def test_urls_name_the_project_and_the_database() -> None:
    assert parse_url("firestore://my-project") == ("my-project", "(default)")
    assert parse_url("firestore://my-project/tasks-db") == ("my-project", "tasks-db")


@pytest.mark.parametrize("url", ["firestore://", "firestore:///db", "firestore://p/a/b", "x://p"])
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        parse_url(url)


async def test_keyed_locks_serialise_one_key_and_are_forgotten_after_use() -> None:
    locks, order = KeyedLocks(), []

    async def hold(name: str, keys: list[str]) -> None:
        async with locks.holding(keys):
            order.append(f"{name} in")
            await asyncio.sleep(0.01)
            order.append(f"{name} out")

    await asyncio.gather(hold("a", ["x", "y"]), hold("b", ["y"]), hold("c", ["z"]))
    assert order.index("b in") > order.index("a out")
    assert len(locks) == 0
