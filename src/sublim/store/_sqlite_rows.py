"""The SQLite dialect of the SQL layer (`store/_sql.py`), and label rows.

Times are stored as epoch seconds (REAL; a naive datetime is taken as UTC) and read back as
UTC-aware datetimes; JSON values are stored as text. Lists of parameters are bound one
placeholder each; labels and dependencies are rows of their own tables, so that their
filters use an index.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from sublim.core.model import TaskRecord
from sublim.store._sql import PARAM, Dialect, Where


def to_epoch(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.timestamp()


def from_epoch(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


class SqliteDialect(Dialect):
    #: A task's latest status is its latest execution's, joined as `e`.
    expressions: ClassVar[Mapping[str, str]] = {
        **Dialect.expressions,
        "latest_status": "e.status",
    }

    def placeholder(self, number: int) -> str:
        return "?"

    def to_time(self, moment: datetime | None) -> Any:
        return to_epoch(moment)

    def from_time(self, value: Any) -> datetime | None:
        return from_epoch(value)

    def one_of(self, where: Where, column: str, values: Sequence[Any]) -> None:
        where.add(f"{column} IN ({', '.join([PARAM] * len(values))})", *values)

    def has_labels(self, where: Where, labels: dict[str, str]) -> None:
        for key, value in labels.items():
            label = (
                f"t.id IN (SELECT task_id FROM task_labels WHERE key = {PARAM} AND value = {PARAM})"
            )
            where.add(label, key, value)

    def lists(self, where: Where, column: str, value: Any) -> None:
        # The only list column, `depends_on`, is also kept as rows.
        dependency = f"SELECT execution_id FROM execution_dependencies WHERE depends_on = {PARAM}"
        where.add(f"id IN ({dependency})", value)


SQLITE = SqliteDialect()


def label_rows(task: TaskRecord) -> list[tuple[str, str, str]]:
    return [(task.id, key, value) for key, value in task.labels.items()]
