"""Tasks, executions and changes that the store tests build."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sublim.core.model import (
    Change,
    ErrorInfo,
    Event,
    Execution,
    TaskRecord,
    TaskStatus,
    Update,
    WorkerInfo,
    apply_update,
)

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """`seconds` after the tests' reference instant."""
    return T0 + timedelta(seconds=seconds)


def a_task(**fields: Any) -> TaskRecord:
    defaults: dict[str, Any] = {"name": "make thumbnail", "topic": "Thumbnail"}
    return TaskRecord(**(defaults | fields))


def an_execution(task: TaskRecord, **fields: Any) -> Execution:
    """A fresh execution of `task`, with the event its creation records."""
    created_at = fields.pop("created_at", at(0))
    initialized = Event(status=TaskStatus.INITIALIZED, at=created_at, attempt=1)
    defaults: dict[str, Any] = {"events": (initialized,), "payload": dict(task.payload)}
    return Execution(
        task_id=task.id, topic=task.topic, created_at=created_at, **(defaults | fields)
    )


def a_finished_execution(task: TaskRecord) -> Execution:
    """An execution with every field set, to check that each one is stored faithfully."""
    return an_execution(
        task,
        status=TaskStatus.FAILED,
        attempt=2,
        max_attempts=3,
        last_seq=4,
        payload={"url": "https://example.com/a.png", "sizes": [64, 128], "nested": {"x": None}},
        result={"bytes": 1234, "ratio": 0.5},
        error=ErrorInfo(type="ValueError", message="bad width", traceback="Traceback ..."),
        worker=WorkerInfo(node="node-1", host="host-a", pid=4242),
        dispatched_at=at(1),
        started_at=at(2.5),
        finished_at=at(7.000001),
        duration_seconds=4.5,
        heartbeat_at=at(6),
        events=(
            Event(status=TaskStatus.INITIALIZED, at=at(0), attempt=1),
            Event(status=TaskStatus.DISPATCHED, at=at(1), attempt=1, reason="published"),
            Event(status=TaskStatus.FAILED, at=at(7.000001), attempt=2, reason="raised"),
        ),
    )


def an_update(execution: Execution, seq: int, status: TaskStatus, **fields: Any) -> Update:
    return Update(
        execution_id=execution.id,
        task_id=execution.task_id,
        attempt=fields.pop("attempt", execution.attempt),
        seq=seq,
        status=status,
        **fields,
    )


def next_heartbeat(execution: Execution) -> Change:
    """A read-modify-write: the update that follows the last one the record holds.

    Two writers that read the same record both write `last_seq + 1`, so a store that lets
    them interleave ends with fewer applied updates than were made.
    """
    update = an_update(execution, execution.last_seq + 1, TaskStatus.RUNNING)
    return apply_update(execution, update)
