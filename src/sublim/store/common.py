"""Pure helpers every store backend shares: patching a task, cutting a page, time ranges.

Conventions of the `Store` contract that these helpers fix for every backend:

- Lists are ordered by id, newest first (or oldest first when the query asks); a cursor is
  the id of the last item of the previous page, so the next page holds the ids past it.
- `created_after` / `created_before` select the half-open range [after, before), so that
  consecutive windows tile without overlap or gap; `heartbeat_before` is strict.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from datetime import datetime
from itertools import islice
from typing import TypeVar

from sublim.model import Change, Execution, TaskRecord, utcnow
from sublim.store.base import ExecutionQuery, ModifyFn, Page, TaskPatch, TaskQuery

T = TypeVar("T")


def patched(task: TaskRecord, patch: TaskPatch, now: datetime | None = None) -> TaskRecord:
    """The task with the fields the patch sets replaced, and `updated_at` moved to now."""
    changes = patch.model_dump(exclude_none=True)
    return task.model_copy(update={**changes, "updated_at": now or utcnow()})


def page_of(fetched: list[T], limit: int, id_of: Callable[[T], str]) -> Page[T]:
    """A page from up to `limit + 1` items fetched newest first: one more means more pages."""
    if len(fetched) <= limit:
        return Page(items=fetched)
    items = fetched[:limit]
    return Page(items=items, next_cursor=id_of(items[-1]))


def first_page_items(newest_first: Iterable[T], keep: Callable[[T], bool], limit: int) -> list[T]:
    """The first `limit + 1` items that `keep` accepts (what `page_of` needs)."""
    return list(islice(filter(keep, newest_first), limit + 1))


def below_cursor(ids_newest_first: Iterable[str], cursor: str | None) -> Iterator[str]:
    """The ids that come after `cursor` in newest-first order."""
    return (i for i in ids_newest_first if cursor is None or i < cursor)


def past_cursor(ids: Iterable[str], cursor: str | None, *, oldest_first: bool) -> Iterator[str]:
    """The ids that come after `cursor` in the list's order (newest or oldest first)."""
    if not oldest_first:
        return below_cursor(ids, cursor)
    return (i for i in ids if cursor is None or i > cursor)


def apply_in_order(
    ids: Sequence[str], current: MutableMapping[str, Execution], fn: ModifyFn
) -> list[Change]:
    """The changes `fn` makes to each execution of `ids` found in `current`, in order.

    `current` maps ids to executions without their events and follows every applied change,
    so an id listed twice is changed twice, the second time from the first change's result.
    """
    changes = []
    for execution_id in ids:
        execution = current.get(execution_id)
        if execution is None:
            continue
        change = fn(execution)
        if change.changed:
            current[execution_id] = change.execution.model_copy(update={"events": ()})
        changes.append(change)
    return changes


def heartbeat_or_creation(execution: Execution) -> datetime:
    """When the execution last gave a sign of life."""
    return execution.heartbeat_at or execution.created_at


def execution_matches(execution: Execution, query: ExecutionQuery) -> bool:
    """Whether `execution` passes every filter of `query` (the cursor aside)."""
    return all(
        (
            query.task_id is None or execution.task_id == query.task_id,
            query.topic is None or execution.topic == query.topic,
            not query.statuses or execution.status in query.statuses,
            query.created_after is None or execution.created_at >= query.created_after,
            query.created_before is None or execution.created_at < query.created_before,
            query.heartbeat_before is None
            or heartbeat_or_creation(execution) < query.heartbeat_before,
            query.waiting_on is None or query.waiting_on in execution.depends_on,
        )
    )


def task_matches(task: TaskRecord, query: TaskQuery) -> bool:
    """Whether `task` (with its latest execution's summary) passes every filter of `query`."""
    latest = task.latest_execution
    return all(
        (
            query.topic is None or task.topic == query.topic,
            all(task.labels.get(key) == value for key, value in query.labels.items()),
            query.status is None or (latest is not None and latest.status == query.status),
        )
    )
