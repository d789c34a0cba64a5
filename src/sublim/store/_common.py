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
from typing import Any, TypeVar

from sublim.core.model import Change, Execution, Model, TaskRecord, utcnow
from sublim.store.base import (
    EXECUTION_FILTERS,
    TASK_FILTERS,
    ExecutionQuery,
    FilterOp,
    ListFilter,
    ModifyFn,
    Page,
    TaskPatch,
    TaskQuery,
)

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


def planned_steps(
    ids: Sequence[str], current: MutableMapping[str, Execution], fn: ModifyFn
) -> list[tuple[Execution, Change]]:
    """`fn` applied to each execution of `ids` found in `current`, in order, as pairs of
    (the execution it saw, the change it made).

    `current` maps ids to executions without their events and follows every applied change,
    so an id listed twice is changed twice, the second time from the first change's result.
    """
    steps = []
    for execution_id in ids:
        execution = current.get(execution_id)
        if execution is None:
            continue
        change = fn(execution)
        steps.append((execution, change))
        if change.changed:
            current[execution_id] = change.execution.model_copy(update={"events": ()})
    return steps


def apply_in_order(
    ids: Sequence[str], current: MutableMapping[str, Execution], fn: ModifyFn
) -> list[Change]:
    """The changes `fn` makes to each execution of `ids` found in `current`, in order (see
    `planned_steps`)."""
    return [change for _, change in planned_steps(ids, current, fn)]


def heartbeat_or_creation(execution: Execution) -> datetime:
    """When the execution last gave a sign of life."""
    return execution.heartbeat_at or execution.created_at


def tested_value(record: TaskRecord | Execution, on: str) -> Any:
    """What a `ListFilter` tests of `record` (see `ListFilter.on`)."""
    if on == "heartbeat_or_creation" and isinstance(record, Execution):
        return heartbeat_or_creation(record)
    if on == "latest_status" and isinstance(record, TaskRecord):
        latest = record.latest_execution
        return None if latest is None else latest.status
    return getattr(record, on)


def passes(actual: Any, op: FilterOp, wanted: Any) -> bool:
    """Whether a record's `actual` value passes a filter `op` asking for `wanted`."""
    if op == "equals":
        return bool(actual == wanted)
    if op == "one_of":
        return actual in wanted
    if op == "at_or_after":
        return bool(actual >= wanted)
    if op == "before":
        return bool(actual < wanted)
    if op == "has_labels":
        return all(actual.get(key) == value for key, value in wanted.items())
    return wanted in actual  # "lists"


def _matches(record: TaskRecord | Execution, query: Model, filters: Sequence[ListFilter]) -> bool:
    return all(
        passes(tested_value(record, f.on), f.op, wanted)
        for f in filters
        if (wanted := f.value_in(query)) is not None
    )


def execution_matches(execution: Execution, query: ExecutionQuery) -> bool:
    """Whether `execution` passes every filter of `query` (the cursor aside)."""
    return _matches(execution, query, EXECUTION_FILTERS)


def task_matches(task: TaskRecord, query: TaskQuery) -> bool:
    """Whether `task` (with its latest execution's summary) passes every filter of `query`."""
    return _matches(task, query, TASK_FILTERS)
