"""What the datastore checks in each request before the store behind it sees it: every id is
a ULID and every topic a valid name (`InvalidInput`, answered INVALID_ARGUMENT).

The codec only decodes; these checks are the boundary's, as the HTTP API has its own, so
that an id with '/', '..' or a newline never reaches a store that addresses documents by id,
nor the `sublim-id` metadata of an answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sublim.broker.base import check_name
from sublim.core.caps import check_depends_on, check_labels
from sublim.core.ids import check_ulid, check_ulids
from sublim.core.model import Change, Execution, TaskRecord, Update
from sublim.core.modifiers import ApplyUpdates, Modifier
from sublim.store.base import ExecutionQuery, TaskQuery


def task_id(value: str) -> str:
    return check_ulid("task id", value)


def execution_id(value: str) -> str:
    return check_ulid("execution id", value)


def execution_ids(values: Iterable[str]) -> list[str]:
    return check_ulids("execution id", values)


def _optional(kind: str, value: str | None) -> None:
    if value is not None:
        check_ulid(kind, value)


def task(record: TaskRecord) -> TaskRecord:
    task_id(record.id)
    check_name("topic", record.topic)
    check_labels(record.labels)
    return record


def tasks(records: Sequence[TaskRecord]) -> Sequence[TaskRecord]:
    for record in records:
        task(record)
    return records


def execution(record: Execution) -> Execution:
    execution_id(record.id)
    task_id(record.task_id)
    check_depends_on(record.depends_on)
    execution_ids(record.depends_on)
    check_name("topic", record.topic)
    return record


def executions(records: Sequence[Execution]) -> Sequence[Execution]:
    for record in records:
        execution(record)
    return records


def task_query(query: TaskQuery) -> TaskQuery:
    _optional("cursor", query.cursor)
    return query


def execution_query(query: ExecutionQuery) -> ExecutionQuery:
    _optional("task id", query.task_id)
    _optional("cursor", query.cursor)
    _optional("execution id", query.waiting_on)
    return query


def update(value: Update) -> Update:
    execution_id(value.execution_id)
    task_id(value.task_id)
    return value


def modifier(value: Modifier) -> Modifier:
    if isinstance(value, ApplyUpdates):
        for one in value.updates:
            update(one)
    return value


def steps(values: Sequence[tuple[Execution, Change]]) -> Sequence[tuple[Execution, Change]]:
    for expected, change in values:
        execution(expected)
        execution(change.execution)
    return values
