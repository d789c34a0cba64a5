"""The PostgreSQL dialect of the SQL layer (`store/_sql.py`), and the column types.

JSON values travel as text into `jsonb` columns (serialised by pydantic_core, which knows
what the models hold); times are `timestamptz` (a naive datetime is taken as UTC). Lists of
parameters are bound as one array; labels and dependencies are `jsonb`, filtered with `@>`
on a GIN index.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sublim.store._rows import EXECUTION_COLUMNS, to_json_text
from sublim.store._sql import PARAM, Dialect, Where

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
#: What a change may alter; the rest of an execution is fixed when it is created.
MUTABLE_EXECUTION_COLUMNS = tuple(
    c for c in EXECUTION_COLUMNS if c not in {"id", "task_id", "topic", "payload", "created_at"}
)


def types_of(names: Sequence[str]) -> list[str]:
    return [COLUMN_TYPES[name] for name in names]


def aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


class PostgresDialect(Dialect):
    # A task's latest status is kept on its row (`t.latest_status`), with an index.

    def placeholder(self, number: int) -> str:
        return f"${number}"

    def to_time(self, moment: datetime | None) -> Any:
        return aware(moment)

    def from_time(self, value: Any) -> datetime | None:
        return aware(value)  # asyncpg reads `timestamptz` as UTC-aware datetimes

    def one_of(self, where: Where, column: str, values: Sequence[Any]) -> None:
        where.add(f"{column} = ANY({PARAM}::text[])", list(values))

    def has_labels(self, where: Where, labels: dict[str, str]) -> None:
        where.add(f"t.labels @> {PARAM}::jsonb", to_json_text(labels))

    def lists(self, where: Where, column: str, value: Any) -> None:
        where.add(f"{column} @> {PARAM}::jsonb", to_json_text([value]))


POSTGRES = PostgresDialect()
