"""What the stores' row and document mappings share: the column lists of the SQL stores
(one shape for SQLite and PostgreSQL; Firestore's documents use the same names), which of
them hold JSON and times, and JSON values as text."""

from __future__ import annotations

import json
from typing import Any

import pydantic_core

TASK_COLUMNS = ("id", "name", "topic", "payload", "labels", "created_at", "updated_at")
EXECUTION_COLUMNS = (
    "id",
    "task_id",
    "topic",
    "status",
    "attempt",
    "max_attempts",
    "last_seq",
    "payload",
    "result",
    "error",
    "worker",
    "created_at",
    "dispatched_at",
    "started_at",
    "finished_at",
    "duration_seconds",
    "heartbeat_at",
    "depends_on",
)
SUMMARY_COLUMNS = ("id", "status", "attempt", "created_at", "finished_at")
JSON_COLUMNS = frozenset({"payload", "labels", "result", "error", "worker", "depends_on"})
TIME_COLUMNS = frozenset(
    {"created_at", "updated_at", "dispatched_at", "started_at", "finished_at", "heartbeat_at"}
)


def to_json_text(value: Any) -> str | None:
    # pydantic_core serialises what pydantic models hold (datetimes, enums) and is fast.
    return None if value is None else pydantic_core.to_json(value).decode()


def from_json_text(text: str | None) -> Any:
    return None if text is None else json.loads(text)
