"""An in-memory store, for tests (yours and ours): it keeps the same contract as the real
backends, and forgets everything when the process ends."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TypeVar

from sublim.core.model import Change, Event, Execution, Model, TaskRecord
from sublim.errors import AlreadyExists, ConfigError, ExecutionNotFound, TaskNotFound
from sublim.store._common import (
    apply_in_order,
    below_cursor,
    execution_matches,
    first_page_items,
    page_of,
    past_cursor,
    patched,
    task_matches,
)
from sublim.store.base import (
    ExecutionQuery,
    ModifyFn,
    Page,
    StoreStats,
    TaskPatch,
    TaskQuery,
)

M = TypeVar("M", bound=Model)


def _isolated(record: M) -> M:
    """A deep copy, so that callers never share mutable payloads with the store."""
    return record.model_copy(deep=True)


class MemoryStore:
    """Tasks, executions (kept without events) and append-only event lists, in dicts."""

    def __init__(self) -> None:
        self._tasks: dict[str, TaskRecord] = {}
        self._executions: dict[str, Execution] = {}
        self._events: dict[str, list[Event]] = {}
        self._latest_execution_of: dict[str, str] = {}
        self._lock = asyncio.Lock()

    @classmethod
    def from_url(cls, url: str) -> MemoryStore:
        if url.rstrip("/") not in {"memory:", "memory:/"}:
            raise ConfigError(f"expected memory://, got {url!r}")
        return cls()

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    # Tasks

    async def create_task(self, task: TaskRecord) -> TaskRecord:
        if task.id in self._tasks:
            raise AlreadyExists(f"a task with id {task.id!r} exists already")
        self._tasks[task.id] = _isolated(task.model_copy(update={"latest_execution": None}))
        return self._task_view(task.id)

    async def create_tasks(self, tasks: Sequence[TaskRecord]) -> list[TaskRecord]:
        seen: set[str] = set()
        for task in tasks:
            if task.id in self._tasks or task.id in seen:
                raise AlreadyExists(f"a task with id {task.id!r} exists already")
            seen.add(task.id)
        return [await self.create_task(task) for task in tasks]

    async def get_task(self, task_id: str) -> TaskRecord:
        self._require_task(task_id)
        return self._task_view(task_id)

    async def list_tasks(self, query: TaskQuery) -> Page[TaskRecord]:
        ids = below_cursor(sorted(self._tasks, reverse=True), query.cursor)
        views = (self._task_view(task_id) for task_id in ids)
        fetched = first_page_items(views, lambda task: task_matches(task, query), query.limit)
        return page_of(fetched, query.limit, lambda task: task.id)

    async def update_task(self, task_id: str, patch: TaskPatch) -> TaskRecord:
        self._require_task(task_id)
        self._tasks[task_id] = _isolated(patched(self._tasks[task_id], patch))
        return self._task_view(task_id)

    async def delete_task(self, task_id: str) -> None:
        self._require_task(task_id)
        del self._tasks[task_id]
        self._latest_execution_of.pop(task_id, None)
        for execution_id in [e.id for e in self._executions.values() if e.task_id == task_id]:
            del self._executions[execution_id]
            del self._events[execution_id]

    def _require_task(self, task_id: str) -> None:
        if task_id not in self._tasks:
            raise TaskNotFound(task_id)

    def _task_view(self, task_id: str) -> TaskRecord:
        latest_id = self._latest_execution_of.get(task_id)
        summary = self._executions[latest_id].summary() if latest_id else None
        return _isolated(self._tasks[task_id].model_copy(update={"latest_execution": summary}))

    # Executions

    async def create_executions(self, executions: Sequence[Execution]) -> None:
        async with self._lock:
            self._check_insertable(executions)
            for execution in executions:
                self._insert(execution)

    def _check_insertable(self, executions: Sequence[Execution]) -> None:
        seen: set[str] = set()
        for execution in executions:
            self._require_task(execution.task_id)
            if execution.id in self._executions or execution.id in seen:
                raise AlreadyExists(f"an execution with id {execution.id!r} exists already")
            seen.add(execution.id)

    def _insert(self, execution: Execution) -> None:
        self._executions[execution.id] = _isolated(execution.model_copy(update={"events": ()}))
        self._events[execution.id] = list(execution.events)
        latest = self._latest_execution_of.get(execution.task_id)
        if latest is None or latest < execution.id:
            self._latest_execution_of[execution.task_id] = execution.id

    async def get_execution(self, execution_id: str) -> Execution:
        if execution_id not in self._executions:
            raise ExecutionNotFound(execution_id)
        events = tuple(self._events[execution_id])
        return _isolated(self._executions[execution_id].model_copy(update={"events": events}))

    async def list_executions(self, query: ExecutionQuery) -> Page[Execution]:
        fetched = first_page_items(
            self._executions_past(query.cursor, oldest_first=query.oldest_first),
            lambda execution: execution_matches(execution, query),
            query.limit,
        )
        return page_of([_isolated(e) for e in fetched], query.limit, lambda e: e.id)

    def _executions_past(self, cursor: str | None, *, oldest_first: bool) -> Iterator[Execution]:
        ordered = sorted(self._executions, reverse=not oldest_first)
        ids = past_cursor(ordered, cursor, oldest_first=oldest_first)
        return (self._executions[execution_id] for execution_id in ids)

    async def modify_executions(self, ids: Sequence[str], fn: ModifyFn) -> list[Change]:
        async with self._lock:
            # Work on a copy, so that an exception from `fn` leaves the store unchanged.
            current = {i: self._executions[i] for i in ids if i in self._executions}
            changes = apply_in_order(ids, current, fn)
            self._executions.update(current)
            for change in changes:
                self._events[change.execution.id].extend(change.new_events)
            return [_isolated(change) for change in changes]

    async def stats(self) -> StoreStats:
        statuses = Counter(execution.status for execution in self._executions.values())
        return StoreStats(tasks=len(self._tasks), executions=dict(statuses))
