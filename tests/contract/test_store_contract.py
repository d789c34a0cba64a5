"""The Store contract: every backend must pass every test here (see `conftest.STORE_FACTORIES`)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from sublim.core.model import (
    Change,
    Execution,
    TaskRecord,
    TaskStatus,
    Update,
    apply_update,
    transition,
)
from sublim.errors import AlreadyExists, ExecutionNotFound, TaskNotFound
from sublim.store.base import ExecutionQuery, ModifyFn, Page, Store, TaskPatch, TaskQuery
from tests.contract.store_builders import (
    a_finished_execution,
    a_task,
    an_execution,
    an_update,
    at,
    next_heartbeat,
)

S = TaskStatus


async def stored_task(store: Store, **fields: object) -> TaskRecord:
    return await store.create_task(a_task(**fields))


async def stored_execution(store: Store, task: TaskRecord, **fields: object) -> Execution:
    execution = an_execution(task, **fields)
    await store.create_executions([execution])
    return execution


#: More pages than any test needs: a cursor that does not advance fails instead of hanging.
MAX_PAGES = 100


async def all_task_pages(store: Store, query: TaskQuery) -> list[Page[TaskRecord]]:
    pages = [await store.list_tasks(query)]
    while pages[-1].next_cursor is not None and len(pages) < MAX_PAGES:
        query = query.model_copy(update={"cursor": pages[-1].next_cursor})
        pages.append(await store.list_tasks(query))
    return pages


async def all_execution_pages(store: Store, query: ExecutionQuery) -> list[Page[Execution]]:
    pages = [await store.list_executions(query)]
    while pages[-1].next_cursor is not None and len(pages) < MAX_PAGES:
        query = query.model_copy(update={"cursor": pages[-1].next_cursor})
        pages.append(await store.list_executions(query))
    return pages


async def listed_task_ids(store: Store, **filters: object) -> set[str]:
    page = await store.list_tasks(TaskQuery(limit=1000, **filters))
    return {task.id for task in page.items}


async def listed_execution_ids(store: Store, **filters: object) -> set[str]:
    query = ExecutionQuery(limit=1000, **filters)
    return {execution.id for execution in (await store.list_executions(query)).items}


# Tasks


async def test_a_created_task_can_be_read_back(store: Store) -> None:
    task = a_task(payload={"url": "https://x/y.png", "width": 64}, labels={"team": "media"})
    created = await store.create_task(task)
    assert created == task
    assert await store.get_task(task.id) == task


async def test_a_new_task_has_no_latest_execution(store: Store) -> None:
    task = await stored_task(store)
    assert (await store.get_task(task.id)).latest_execution is None


async def test_creating_a_task_whose_id_is_taken_raises_already_exists(store: Store) -> None:
    task = await stored_task(store)
    with pytest.raises(AlreadyExists):
        await store.create_task(a_task(id=task.id, name="another"))
    assert (await store.get_task(task.id)).name == task.name


async def test_tasks_created_in_one_call_are_returned_in_order_and_can_be_read_back(
    store: Store,
) -> None:
    tasks = [a_task(name=f"task {i}", labels={"i": str(i)}) for i in range(5)]
    created = await store.create_tasks(tasks)
    assert created == tasks
    assert [await store.get_task(task.id) for task in tasks] == tasks
    assert await listed_task_ids(store, labels={"i": "3"}) == {tasks[3].id}


async def test_creating_no_tasks_creates_nothing(store: Store) -> None:
    assert await store.create_tasks([]) == []
    assert await listed_task_ids(store) == set()


async def test_creating_tasks_of_which_one_id_is_taken_creates_none_of_them(
    store: Store,
) -> None:
    taken = await stored_task(store)
    fresh = a_task(name="fresh")
    with pytest.raises(AlreadyExists):
        await store.create_tasks([fresh, a_task(id=taken.id, name="another")])
    assert await listed_task_ids(store) == {taken.id}


async def test_creating_tasks_that_repeat_an_id_creates_none_of_them(store: Store) -> None:
    task = a_task()
    with pytest.raises(AlreadyExists):
        await store.create_tasks([task, a_task(id=task.id, name="twin")])
    assert await listed_task_ids(store) == set()


async def test_reading_a_missing_task_raises_task_not_found(store: Store) -> None:
    with pytest.raises(TaskNotFound):
        await store.get_task("01HZZZZZZZZZZZZZZZZZZZZZZZ")


async def test_updating_a_missing_task_raises_task_not_found(store: Store) -> None:
    with pytest.raises(TaskNotFound):
        await store.update_task("01HZZZZZZZZZZZZZZZZZZZZZZZ", TaskPatch(name="x"))


async def test_deleting_a_missing_task_raises_task_not_found(store: Store) -> None:
    with pytest.raises(TaskNotFound):
        await store.delete_task("01HZZZZZZZZZZZZZZZZZZZZZZZ")


async def test_a_changed_returned_payload_does_not_change_the_stored_task(store: Store) -> None:
    task = await stored_task(store, payload={"width": 64})
    (await store.get_task(task.id)).payload["width"] = 1
    assert (await store.get_task(task.id)).payload == {"width": 64}


async def test_updating_a_task_changes_only_the_given_fields_and_bumps_updated_at(
    store: Store,
) -> None:
    task = await stored_task(store, payload={"width": 64}, labels={"a": "1"}, updated_at=at(0))
    updated = await store.update_task(task.id, TaskPatch(name="renamed"))
    expected_unchanged = task.model_dump(exclude={"name", "updated_at"})
    assert updated.name == "renamed"
    assert updated.model_dump(exclude={"name", "updated_at"}) == expected_unchanged
    assert updated.updated_at > task.updated_at
    assert await store.get_task(task.id) == updated


async def test_updating_payload_and_labels_replaces_them(store: Store) -> None:
    task = await stored_task(store, payload={"width": 64}, labels={"a": "1", "b": "2"})
    patch = TaskPatch(payload={"height": 32}, labels={"c": "3"})
    await store.update_task(task.id, patch)
    stored = await store.get_task(task.id)
    assert (stored.name, stored.payload, stored.labels) == (task.name, {"height": 32}, {"c": "3"})


async def test_tasks_are_found_by_their_new_labels_after_an_update(store: Store) -> None:
    task = await stored_task(store, labels={"a": "1"})
    await store.update_task(task.id, TaskPatch(labels={"a": "2"}))
    assert await listed_task_ids(store, labels={"a": "1"}) == set()
    assert await listed_task_ids(store, labels={"a": "2"}) == {task.id}


async def test_a_deleted_task_is_gone_with_its_executions(store: Store) -> None:
    task = await stored_task(store)
    execution = await stored_execution(store, task)
    await store.delete_task(task.id)
    with pytest.raises(TaskNotFound):
        await store.get_task(task.id)
    with pytest.raises(ExecutionNotFound):
        await store.get_execution(execution.id)
    assert await listed_execution_ids(store) == set()


async def test_deleting_a_task_leaves_other_tasks_and_their_executions(store: Store) -> None:
    doomed, kept = await stored_task(store), await stored_task(store)
    kept_execution = await stored_execution(store, kept)
    await stored_execution(store, doomed)
    await store.delete_task(doomed.id)
    assert await listed_task_ids(store) == {kept.id}
    assert await listed_execution_ids(store) == {kept_execution.id}


# Listing tasks


async def test_an_empty_store_lists_no_tasks(store: Store) -> None:
    page = await store.list_tasks(TaskQuery())
    assert (page.items, page.next_cursor) == ([], None)


async def test_listing_tasks_by_topic_returns_only_that_topic(store: Store) -> None:
    thumbnails = {(await stored_task(store, topic="Thumbnail")).id for _ in range(3)}
    await stored_task(store, topic="Transcode")
    assert await listed_task_ids(store, topic="Thumbnail") == thumbnails


async def test_listing_tasks_by_several_labels_returns_only_tasks_having_them_all(
    store: Store,
) -> None:
    both = await stored_task(store, labels={"team": "media", "env": "prod", "x": "y"})
    await stored_task(store, labels={"team": "media", "env": "dev"})
    await stored_task(store, labels={"team": "media"})
    await stored_task(store, labels={"env": "prod"})
    found = await listed_task_ids(store, labels={"team": "media", "env": "prod"})
    assert found == {both.id}


async def test_listing_tasks_by_status_looks_at_the_latest_execution_only(store: Store) -> None:
    passed_last = await stored_task(store)
    await stored_execution(store, passed_last, status=S.FAILED)
    await stored_execution(store, passed_last, status=S.PASSED)
    failed_last = await stored_task(store)
    await stored_execution(store, failed_last, status=S.FAILED)
    await stored_task(store)  # never executed: matches no status
    assert await listed_task_ids(store, status=S.PASSED) == {passed_last.id}
    assert await listed_task_ids(store, status=S.FAILED) == {failed_last.id}


async def test_listing_tasks_combines_every_filter(store: Store) -> None:
    wanted = await stored_task(store, topic="A", labels={"k": "v"})
    await stored_execution(store, wanted, status=S.RUNNING)
    for topic, labels, status in [("B", {"k": "v"}, S.RUNNING), ("A", {}, S.RUNNING)]:
        other = await stored_task(store, topic=topic, labels=labels)
        await stored_execution(store, other, status=status)
    found = await listed_task_ids(store, topic="A", labels={"k": "v"}, status=S.RUNNING)
    assert found == {wanted.id}


async def test_listing_tasks_pages_through_all_of_them_without_repeats(store: Store) -> None:
    created = [(await stored_task(store, name=f"task {n}")).id for n in range(250)]
    pages = await all_task_pages(store, TaskQuery(limit=20))
    listed = [task.id for page in pages for task in page.items]
    assert listed == sorted(created, reverse=True)
    assert [len(page.items) for page in pages] == [20] * 12 + [10]


async def test_listing_tasks_with_a_filter_pages_through_the_matching_ones(store: Store) -> None:
    matching = [(await stored_task(store, labels={"n": str(n % 3)})).id for n in range(90)][::3]
    pages = await all_task_pages(store, TaskQuery(labels={"n": "0"}, limit=7))
    assert [task.id for page in pages for task in page.items] == matching[::-1]


async def test_a_page_ending_at_the_last_task_has_no_next_cursor(store: Store) -> None:
    for _ in range(5):
        await stored_task(store)
    page = await store.list_tasks(TaskQuery(limit=5))
    assert (len(page.items), page.next_cursor) == (5, None)


async def test_listed_tasks_carry_their_latest_execution_summary(store: Store) -> None:
    task = await stored_task(store)
    execution = await stored_execution(store, task, status=S.RUNNING)
    [listed] = (await store.list_tasks(TaskQuery())).items
    assert listed.latest_execution == execution.summary()


# Creating and reading executions


async def test_created_executions_can_be_read_back_with_their_events(store: Store) -> None:
    task = await stored_task(store)
    executions = [a_finished_execution(task), an_execution(task)]
    await store.create_executions(executions)
    assert [await store.get_execution(e.id) for e in executions] == executions


async def test_read_back_times_are_utc_aware(store: Store) -> None:
    task = await stored_task(store)
    execution = a_finished_execution(task)
    await store.create_executions([execution])
    stored = await store.get_execution(execution.id)
    times = [stored.created_at, stored.finished_at, *(event.at for event in stored.events)]
    assert all(moment is not None and moment.utcoffset() == timedelta(0) for moment in times)


async def test_creating_no_executions_does_nothing(store: Store) -> None:
    await store.create_executions([])
    assert await listed_execution_ids(store) == set()


async def test_executions_for_a_missing_task_are_refused_all_together(store: Store) -> None:
    task = await stored_task(store)
    ghost = a_task()
    with pytest.raises(TaskNotFound):
        await store.create_executions([an_execution(task), an_execution(ghost)])
    assert await listed_execution_ids(store) == set()


async def test_creating_an_execution_whose_id_is_taken_raises_already_exists(
    store: Store,
) -> None:
    task = await stored_task(store)
    taken = await stored_execution(store, task)
    fresh = an_execution(task)
    with pytest.raises(AlreadyExists):
        await store.create_executions([fresh, an_execution(task, id=taken.id)])
    assert await listed_execution_ids(store) == {taken.id}


async def test_reading_a_missing_execution_raises_execution_not_found(store: Store) -> None:
    with pytest.raises(ExecutionNotFound):
        await store.get_execution("01HZZZZZZZZZZZZZZZZZZZZZZZ")


async def test_listed_executions_come_without_their_event_logs(store: Store) -> None:
    task = await stored_task(store)
    execution = a_finished_execution(task)
    await store.create_executions([execution])
    [listed] = (await store.list_executions(ExecutionQuery())).items
    assert listed == execution.model_copy(update={"events": ()})


# Listing executions


async def test_listing_executions_by_task_returns_only_that_tasks(store: Store) -> None:
    task, other = await stored_task(store), await stored_task(store)
    mine = {(await stored_execution(store, task)).id for _ in range(3)}
    await stored_execution(store, other)
    assert await listed_execution_ids(store, task_id=task.id) == mine


async def test_listing_executions_by_topic_returns_only_that_topic(store: Store) -> None:
    thumbnail = await stored_task(store, topic="Thumbnail")
    transcode = await stored_task(store, topic="Transcode")
    wanted = await stored_execution(store, thumbnail)
    await stored_execution(store, transcode)
    assert await listed_execution_ids(store, topic="Thumbnail") == {wanted.id}


async def test_listing_executions_by_statuses_returns_any_of_them(store: Store) -> None:
    task = await stored_task(store)
    by_status = {s: (await stored_execution(store, task, status=s)).id for s in S}
    wanted = {S.RUNNING, S.DISPATCHED, S.INCOMPLETE}
    found = await listed_execution_ids(store, statuses=frozenset(wanted))
    assert found == {by_status[s] for s in wanted}


async def test_listing_executions_without_statuses_returns_every_status(store: Store) -> None:
    task = await stored_task(store)
    every = {(await stored_execution(store, task, status=s)).id for s in S}
    assert await listed_execution_ids(store, statuses=frozenset()) == every


async def test_listing_executions_by_creation_time_keeps_the_half_open_range(
    store: Store,
) -> None:
    task = await stored_task(store)
    by_second = {n: (await stored_execution(store, task, created_at=at(n))).id for n in range(5)}
    found = await listed_execution_ids(store, created_after=at(1), created_before=at(3))
    assert found == {by_second[1], by_second[2]}


async def test_listing_executions_by_heartbeat_falls_back_to_creation_time(
    store: Store,
) -> None:
    task = await stored_task(store)
    silent_old = await stored_execution(store, task, created_at=at(0))
    beat_long_ago = await stored_execution(store, task, created_at=at(0), heartbeat_at=at(5))
    await stored_execution(store, task, created_at=at(0), heartbeat_at=at(20))
    await stored_execution(store, task, created_at=at(15))
    found = await listed_execution_ids(store, heartbeat_before=at(10))
    assert found == {silent_old.id, beat_long_ago.id}


async def test_listing_executions_pages_through_all_of_them_without_repeats(
    store: Store,
) -> None:
    task = await stored_task(store)
    executions = [an_execution(task) for _ in range(250)]
    await store.create_executions(executions)
    pages = await all_execution_pages(store, ExecutionQuery(limit=20))
    listed = [execution.id for page in pages for execution in page.items]
    assert listed == sorted((e.id for e in executions), reverse=True)
    assert pages[-1].next_cursor is None


async def test_listing_executions_with_a_filter_pages_through_the_matching_ones(
    store: Store,
) -> None:
    task = await stored_task(store)
    statuses = [S.RUNNING, S.PASSED, S.FAILED] * 30
    executions = [an_execution(task, status=status) for status in statuses]
    await store.create_executions(executions)
    query = ExecutionQuery(statuses=frozenset({S.RUNNING}), limit=7)
    listed = [e.id for page in await all_execution_pages(store, query) for e in page.items]
    assert listed == [e.id for e in reversed(executions) if e.status == S.RUNNING]
    # Several statuses (the SQL stores merge one page per status), both ways round.
    two = frozenset({S.RUNNING, S.FAILED})
    for oldest_first in (False, True):
        query = ExecutionQuery(statuses=two, oldest_first=oldest_first, limit=7)
        listed = [e.id for page in await all_execution_pages(store, query) for e in page.items]
        expected = [e.id for e in executions if e.status in two]
        assert listed == (expected if oldest_first else expected[::-1])


async def test_listing_executions_oldest_first_pages_through_them_in_creation_order(
    store: Store,
) -> None:
    task = await stored_task(store)
    executions = [an_execution(task, status=S.READY_FOR_DISPATCH) for _ in range(45)]
    await store.create_executions(executions)
    query = ExecutionQuery(topic=task.topic, oldest_first=True, limit=10)
    listed = [e.id for page in await all_execution_pages(store, query) for e in page.items]
    assert listed == [e.id for e in executions]


async def test_an_executions_dependencies_are_kept(store: Store) -> None:
    task = await stored_task(store)
    first, second = await stored_execution(store, task), await stored_execution(store, task)
    waiting = await stored_execution(store, task, depends_on=(first.id, second.id))
    assert (await store.get_execution(waiting.id)).depends_on == (first.id, second.id)


async def test_listing_executions_waiting_on_one_finds_those_that_depend_on_it(
    store: Store,
) -> None:
    task = await stored_task(store)
    first, second = await stored_execution(store, task), await stored_execution(store, task)
    on_first = await stored_execution(store, task, depends_on=(first.id,))
    on_both = await stored_execution(store, task, depends_on=(first.id, second.id))
    assert await listed_execution_ids(store, waiting_on=first.id) == {on_first.id, on_both.id}
    assert await listed_execution_ids(store, waiting_on=second.id) == {on_both.id}


# Modifying executions


def dispatch(execution: Execution) -> Change:
    return transition(execution, S.DISPATCHED, reason="published")


def applying(update: Update) -> ModifyFn:
    return lambda execution: apply_update(execution, update)


async def test_an_applied_change_is_stored_with_its_new_events(store: Store) -> None:
    task = await stored_task(store)
    execution = await stored_execution(store, task)
    await store.modify_executions([execution.id], lambda e: transition(e, S.READY_FOR_DISPATCH))
    [change] = await store.modify_executions([execution.id], dispatch)
    stored = await store.get_execution(execution.id)
    assert stored.status == S.DISPATCHED
    assert stored.model_copy(update={"events": ()}) == change.execution.model_copy(
        update={"events": ()}
    )
    statuses = [event.status for event in stored.events]
    assert statuses == [S.INITIALIZED, S.READY_FOR_DISPATCH, S.DISPATCHED]


async def test_a_whole_run_of_updates_is_recorded_in_order(store: Store) -> None:
    task = await stored_task(store)
    execution = await stored_execution(store, task, status=S.DISPATCHED)
    updates = [
        an_update(execution, 1, S.RUNNING, at=at(1)),
        an_update(execution, 2, S.RUNNING, at=at(2)),
        an_update(execution, 3, S.PASSED, at=at(3), result={"ok": True}, complete=True),
    ]
    for update in updates:
        await store.modify_executions([execution.id], applying(update))
    stored = await store.get_execution(execution.id)
    assert (stored.status, stored.result, stored.finished_at) == (S.PASSED, {"ok": True}, at(3))
    assert [event.status for event in stored.events] == [S.INITIALIZED, S.RUNNING, S.PASSED]


async def test_an_ignored_update_writes_nothing(store: Store) -> None:
    task = await stored_task(store)
    execution = await stored_execution(store, task, status=S.RUNNING, last_seq=5)
    stale = an_update(execution, 3, S.PASSED)
    [change] = await store.modify_executions([execution.id], lambda e: apply_update(e, stale))
    assert change.outcome == "ignored"
    assert await store.get_execution(execution.id) == execution


async def test_a_refused_transition_writes_nothing(store: Store) -> None:
    task = await stored_task(store)
    execution = await stored_execution(store, task)
    [change] = await store.modify_executions([execution.id], lambda e: transition(e, S.PASSED))
    assert change.outcome == "refused"
    assert await store.get_execution(execution.id) == execution


async def test_modifying_skips_ids_that_do_not_exist(store: Store) -> None:
    task = await stored_task(store)
    execution = await stored_execution(store, task, status=S.READY_FOR_DISPATCH)
    changes = await store.modify_executions(["01HZZZZZZZZZZZZZZZZZZZZZZZ", execution.id], dispatch)
    assert [change.execution.id for change in changes] == [execution.id]


async def test_modified_changes_come_back_in_the_order_of_the_ids(store: Store) -> None:
    task = await stored_task(store)
    executions = [an_execution(task, status=S.READY_FOR_DISPATCH) for _ in range(5)]
    await store.create_executions(executions)
    ids = [executions[i].id for i in (3, 0, 4, 1, 2)]
    changes = await store.modify_executions(ids, dispatch)
    assert [change.execution.id for change in changes] == ids
    assert all(change.changed for change in changes)


async def test_the_function_receives_executions_without_their_event_logs(store: Store) -> None:
    task = await stored_task(store)
    execution = await stored_execution(store, task, status=S.READY_FOR_DISPATCH)
    received: list[Execution] = []

    def record_then_dispatch(current: Execution) -> Change:
        received.append(current)
        return dispatch(current)

    await store.modify_executions([execution.id], record_then_dispatch)
    assert received == [execution.model_copy(update={"events": ()})]


async def test_an_id_listed_twice_is_modified_twice_in_sequence(store: Store) -> None:
    task = await stored_task(store)
    execution = await stored_execution(store, task, status=S.RUNNING)
    changes = await store.modify_executions([execution.id, execution.id], next_heartbeat)
    assert [change.execution.last_seq for change in changes] == [1, 2]
    assert (await store.get_execution(execution.id)).last_seq == 2


async def test_a_function_that_raises_leaves_the_whole_batch_unchanged(store: Store) -> None:
    task = await stored_task(store)
    first, second = an_execution(task, status=S.RUNNING), an_execution(task, status=S.RUNNING)
    await store.create_executions([first, second])

    def pass_first_then_fail(execution: Execution) -> Change:
        if execution.id == second.id:
            raise RuntimeError("the core failed")
        return transition(execution, S.PASSED)

    with pytest.raises(RuntimeError):
        await store.modify_executions([first.id, second.id], pass_first_then_fail)
    assert await store.get_execution(first.id) == first


async def test_concurrent_modifications_of_one_execution_lose_no_update(store: Store) -> None:
    task = await stored_task(store)
    execution = await stored_execution(store, task, status=S.RUNNING)
    calls = [store.modify_executions([execution.id], next_heartbeat) for _ in range(100)]
    results = await asyncio.gather(*calls)
    assert all(change.changed for [change] in results)
    assert (await store.get_execution(execution.id)).last_seq == 100


async def test_events_of_concurrent_transitions_are_all_kept_in_order(store: Store) -> None:
    task = await stored_task(store)
    execution = await stored_execution(store, task, status=S.DISPATCHED)

    def run_then_requeue(current: Execution) -> Change:
        following = S.DISPATCHED if current.status == S.RUNNING else S.RUNNING
        return transition(current, following)

    await asyncio.gather(
        *(store.modify_executions([execution.id], run_then_requeue) for _ in range(20))
    )
    statuses = [event.status for event in (await store.get_execution(execution.id)).events]
    assert statuses == [S.INITIALIZED] + [S.RUNNING, S.DISPATCHED] * 10


# The latest execution of a task


async def test_a_task_summarises_its_newest_execution(store: Store) -> None:
    task = await stored_task(store)
    await stored_execution(store, task, status=S.FAILED)
    newest = await stored_execution(store, task, status=S.READY_FOR_DISPATCH)
    assert (await store.get_task(task.id)).latest_execution == newest.summary()


async def test_the_task_summary_follows_its_newest_execution_status(store: Store) -> None:
    task = await stored_task(store)
    older = await stored_execution(store, task, status=S.RUNNING)
    newest = await stored_execution(store, task, status=S.READY_FOR_DISPATCH)
    await store.modify_executions([newest.id], dispatch)
    await store.modify_executions([older.id], lambda e: transition(e, S.PASSED))
    summary = (await store.get_task(task.id)).latest_execution
    assert summary is not None
    assert (summary.id, summary.status) == (newest.id, S.DISPATCHED)


async def test_an_older_execution_created_later_does_not_replace_the_summary(
    store: Store,
) -> None:
    task = await stored_task(store)
    older, newest = an_execution(task), an_execution(task)
    await store.create_executions([newest])
    await store.create_executions([older])
    summary = (await store.get_task(task.id)).latest_execution
    assert summary is not None
    assert summary.id == newest.id


# Lifecycle and statistics


async def test_opening_an_open_store_again_keeps_its_data(store: Store) -> None:
    task = await stored_task(store)
    await store.open()
    assert await store.get_task(task.id) == task


async def test_stats_count_tasks_and_executions_per_status(store: Store) -> None:
    first, second = await stored_task(store), await stored_task(store)
    await stored_task(store)
    statuses = [S.RUNNING, S.RUNNING, S.PASSED]
    await store.create_executions([an_execution(first, status=s) for s in statuses])
    await stored_execution(store, second, status=S.FAILED)
    stats = await store.stats()
    assert stats.tasks == 3
    assert stats.executions == {S.RUNNING: 2, S.PASSED: 1, S.FAILED: 1}


async def test_an_empty_store_has_empty_stats(store: Store) -> None:
    stats = await store.stats()
    assert (stats.tasks, stats.executions) == (0, {})
