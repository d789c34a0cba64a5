"""Converting tasks, executions and events to PostgreSQL rows and back.

The column lists are shared with the SQLite store (`store/_rows.py`): one shape for every SQL store.
JSON values travel as text into `jsonb` columns (serialised by pydantic_core, which knows
what the models hold); times are `timestamptz` (a naive datetime is taken as UTC).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sublim.model import Event, Execution, ExecutionSummary, TaskRecord
from sublim.store._rows import (
    EXECUTION_COLUMNS,
    SUMMARY_COLUMNS,
    TASK_COLUMNS,
    from_json_text,
    to_json_text,
)

Row = Sequence[Any]

#: The PostgreSQL type of each column, for binding rows as arrays.
COLUMN_TYPES: Mapping[str, str] = {
    "id": "text",
    "execution_id": "text",
    "task_id": "text",
    "name": "text",
    "topic": "text",
    "status": "text",
    "reason": "text",
    "attempt": "integer",
    "max_attempts": "integer",
    "last_seq": "integer",
    "seq": "integer",
    "last_event_seq": "integer",
    "payload": "jsonb",
    "labels": "jsonb",
    "result": "jsonb",
    "error": "jsonb",
    "worker": "jsonb",
    "depends_on": "jsonb",
    "duration_seconds": "double precision",
    **dict.fromkeys(
        ("created_at", "updated_at", "dispatched_at", "started_at", "finished_at"), "timestamptz"
    ),
    "heartbeat_at": "timestamptz",
    "at": "timestamptz",
}
EVENT_COLUMNS = ("execution_id", "seq", "status", "at", "attempt", "reason")
#: What a change may alter; the rest of an execution is fixed when it is created.
MUTABLE_EXECUTION_COLUMNS = tuple(
    c for c in EXECUTION_COLUMNS if c not in {"id", "task_id", "topic", "payload", "created_at"}
)

_JSON_COLUMNS = frozenset({"payload", "labels", "result", "error", "worker", "depends_on"})
_TIME_COLUMNS = frozenset(c for c, kind in COLUMN_TYPES.items() if kind == "timestamptz")


def types_of(names: Sequence[str]) -> list[str]:
    return [COLUMN_TYPES[name] for name in names]


def aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _to_column(column: str, value: Any) -> Any:
    if column in _JSON_COLUMNS:
        return to_json_text(value)
    if column in _TIME_COLUMNS:
        return aware(value)
    return value


def _from_row(row: Row, names: Sequence[str]) -> dict[str, Any]:
    return {
        name: from_json_text(value) if name in _JSON_COLUMNS else value
        for name, value in zip(names, row, strict=True)
    }


def task_row(task: TaskRecord) -> tuple[Any, ...]:
    data = task.model_dump(exclude={"latest_execution"})
    return tuple(_to_column(column, data[column]) for column in TASK_COLUMNS)


def task_from_row(row: Row) -> TaskRecord:
    """A task from its columns followed by its latest execution's (NULLs when it has none)."""
    task_part, summary_part = row[: len(TASK_COLUMNS)], row[len(TASK_COLUMNS) :]
    data = _from_row(task_part, TASK_COLUMNS)
    if summary_part[0] is not None:
        data["latest_execution"] = ExecutionSummary(**_from_row(summary_part, SUMMARY_COLUMNS))
    return TaskRecord(**data)


def execution_row(execution: Execution, names: Sequence[str] = EXECUTION_COLUMNS) -> list[Any]:
    data = dict(execution)
    return [_to_column(name, data[name]) for name in names]


def execution_from_row(row: Row, events: Sequence[Row] = ()) -> Execution:
    """An execution from its columns, with events given as (status, at, attempt, reason)."""
    data = _from_row(row[: len(EXECUTION_COLUMNS)], EXECUTION_COLUMNS)
    return Execution(**data, events=tuple(event_from_row(event) for event in events))


def event_row(execution_id: str, seq: int, event: Event) -> tuple[Any, ...]:
    return (execution_id, seq, str(event.status), aware(event.at), event.attempt, event.reason)


def event_from_row(row: Row) -> Event:
    status, at, attempt, reason = row
    return Event(status=status, at=at, attempt=attempt, reason=reason)
