"""Converting tasks, executions and events to SQLite rows and back.

Times are stored as epoch seconds (REAL; a naive datetime is taken as UTC) and read back as
UTC-aware datetimes; JSON values are stored as text.
"""

from __future__ import annotations

from collections.abc import Sequence
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

EVENT_COLUMNS = ("execution_id", "seq", "status", "at", "attempt", "reason")

_JSON_COLUMNS = frozenset({"payload", "labels", "result", "error", "worker", "depends_on"})
_TIME_COLUMNS = frozenset(
    {"created_at", "updated_at", "dispatched_at", "started_at", "finished_at", "heartbeat_at"}
)


def to_epoch(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.timestamp()


def from_epoch(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _to_column(column: str, value: Any) -> Any:
    if column in _JSON_COLUMNS:
        return to_json_text(value)
    if column in _TIME_COLUMNS:
        return to_epoch(value)
    return value


def _from_column(column: str, value: Any) -> Any:
    if column in _JSON_COLUMNS:
        return from_json_text(value)
    if column in _TIME_COLUMNS:
        return from_epoch(value)
    return value


def _to_row(data: dict[str, Any], columns: Sequence[str]) -> tuple[Any, ...]:
    return tuple(_to_column(column, data[column]) for column in columns)


def _from_row(row: Row, columns: Sequence[str]) -> dict[str, Any]:
    return {column: _from_column(column, value) for column, value in zip(columns, row, strict=True)}


def task_row(task: TaskRecord) -> tuple[Any, ...]:
    return _to_row(task.model_dump(exclude={"latest_execution"}), TASK_COLUMNS)


def label_rows(task: TaskRecord) -> list[tuple[str, str, str]]:
    return [(task.id, key, value) for key, value in task.labels.items()]


def task_from_row(row: Row) -> TaskRecord:
    """A task from its columns followed by its latest execution's (NULLs when it has none)."""
    task_part, summary_part = row[: len(TASK_COLUMNS)], row[len(TASK_COLUMNS) :]
    data = _from_row(task_part, TASK_COLUMNS)
    if summary_part[0] is not None:
        data["latest_execution"] = ExecutionSummary(**_from_row(summary_part, SUMMARY_COLUMNS))
    return TaskRecord(**data)


def execution_row(execution: Execution) -> tuple[Any, ...]:
    return _to_row(execution.model_dump(exclude={"events"}), EXECUTION_COLUMNS)


def execution_from_row(row: Row, events: Sequence[Row] = ()) -> Execution:
    """An execution from its columns, with the events given as (status, at, attempt, reason)."""
    data = _from_row(row, EXECUTION_COLUMNS)
    return Execution(**data, events=tuple(event_from_row(event) for event in events))


def event_row(execution_id: str, seq: int, event: Event) -> tuple[Any, ...]:
    return (execution_id, seq, event.status, to_epoch(event.at), event.attempt, event.reason)


def event_from_row(row: Row) -> Event:
    status, at, attempt, reason = row
    return Event(status=status, at=from_epoch(at), attempt=attempt, reason=reason)
