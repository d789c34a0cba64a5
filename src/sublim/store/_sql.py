"""The SQL layer of the SQLite and PostgreSQL stores, written once: the list queries (their
`WHERE` built from the declared filters of `store.base`), the shared statements, and rows
to records and back. A `Dialect` holds what differs between the engines: placeholders
(`?` or `$n`), how times are stored, and the few filters each engine serves its own way
(`sqlite_rows.SQLITE`, `postgres_rows.POSTGRES`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from sublim.core.model import Event, Execution, ExecutionSummary, TaskRecord
from sublim.store._common import page_of
from sublim.store._rows import (
    EXECUTION_COLUMNS,
    JSON_COLUMNS,
    SUMMARY_COLUMNS,
    TASK_COLUMNS,
    TIME_COLUMNS,
    from_json_text,
    to_json_text,
)
from sublim.store.base import (
    EXECUTION_FILTERS,
    TASK_FILTERS,
    ExecutionQuery,
    ListFilter,
    Page,
    TaskQuery,
)

Row = Sequence[Any]

EVENT_COLUMNS = ("execution_id", "seq", "status", "at", "attempt", "reason")
#: The marker of a parameter in the clauses below; `Where` numbers it for the dialect.
PARAM = "$?"


def names(columns: Sequence[str], prefix: str = "") -> str:
    return ", ".join(prefix + column for column in columns)


SELECT_TASKS = (
    f"SELECT {names(TASK_COLUMNS, 't.')}, {names(SUMMARY_COLUMNS, 'e.')} "
    "FROM tasks t LEFT JOIN executions e ON e.id = t.latest_execution_id"
)
SELECT_EXECUTIONS = f"SELECT {names(EXECUTION_COLUMNS)} FROM executions"


def _one_status_each(query: ExecutionQuery) -> list[ExecutionQuery]:
    """`query` itself, or with several statuses one query per status (in a stable order)."""
    if len(query.statuses) < 2:
        return [query]
    return [query.model_copy(update={"statuses": frozenset({s})}) for s in sorted(query.statuses)]


class Where:
    """The WHERE clause of a list query, built filter by filter, and its parameters."""

    def __init__(self, dialect: Dialect, params: list[Any] | None = None) -> None:
        self.dialect = dialect
        self.clauses: list[str] = []
        #: Shared by the clauses of one statement (placeholders are numbered across it).
        self.params: list[Any] = [] if params is None else params

    def add(self, clause: str, *params: Any) -> None:
        """Add `clause`, whose each `$?` is the placeholder of the next of `params`."""
        parts = clause.split(PARAM)
        numbered = [parts[0]]
        for param, part in zip(params, parts[1:], strict=True):
            self.params.append(param)
            numbered += [self.dialect.placeholder(len(self.params)), part]
        self.clauses.append("".join(numbered))

    def sql(self) -> str:
        return f" WHERE {' AND '.join(self.clauses)}" if self.clauses else ""

    def limit(self, limit: int) -> str:
        self.params.append(limit)
        return f" LIMIT {self.dialect.placeholder(len(self.params))}"


class Dialect:
    """What differs between the SQL engines; the rest of the SQL layer is written once."""

    #: The SQL of what a filter tests (`ListFilter.on`) where it is not the column itself.
    expressions: ClassVar[Mapping[str, str]] = {
        "heartbeat_or_creation": "COALESCE(heartbeat_at, created_at)"
    }

    def placeholder(self, number: int) -> str:
        """The placeholder of the `number`th parameter (from 1)."""
        raise NotImplementedError

    def to_time(self, moment: datetime | None) -> Any:
        raise NotImplementedError

    def from_time(self, value: Any) -> datetime | None:
        raise NotImplementedError

    # The filters that each engine serves with its own SQL.

    def one_of(self, where: Where, column: str, values: Sequence[Any]) -> None:
        raise NotImplementedError

    def has_labels(self, where: Where, labels: dict[str, str]) -> None:
        raise NotImplementedError

    def lists(self, where: Where, column: str, value: Any) -> None:
        raise NotImplementedError

    # List queries

    def filter(self, where: Where, spec: ListFilter, value: Any, prefix: str = "") -> None:
        column = self.expressions.get(spec.on, prefix + spec.on)
        if isinstance(value, datetime):
            value = self.to_time(value)
        if spec.op == "equals":
            where.add(f"{column} = {PARAM}", value)
        elif spec.op == "at_or_after":
            where.add(f"{column} >= {PARAM}", value)
        elif spec.op == "before":
            where.add(f"{column} < {PARAM}", value)
        elif spec.op == "one_of" and len(value) == 1:
            where.add(f"{column} = {PARAM}", *value)  # in index order, unlike `IN`/`ANY`
        elif spec.op == "one_of":
            self.one_of(where, column, sorted(value))
        elif spec.op == "has_labels":
            self.has_labels(where, value)
        else:
            self.lists(where, column, value)

    def list_tasks(self, query: TaskQuery) -> tuple[str, list[Any]]:
        """The SQL of one page of tasks (one more than the limit) and its parameters."""
        where = Where(self)
        for spec in TASK_FILTERS:
            if (value := spec.value_in(query)) is not None:
                self.filter(where, spec, value, "t.")
        if query.cursor is not None:
            where.add(f"t.id < {PARAM}", query.cursor)
        sql = f"{SELECT_TASKS}{where.sql()} ORDER BY t.id DESC{where.limit(query.limit + 1)}"
        return sql, where.params

    def list_executions(self, query: ExecutionQuery) -> tuple[str, list[Any]]:
        """The SQL of one page of executions (one more than the limit) and its parameters.

        The page's ids are found first, then its rows (`WHERE id IN (ids)`): the ids come
        from an index alone where one holds every column filtered on (`created_at` with
        `id`, both ways round), without reading a row for each one skipped. With several
        statuses, the ids are the merge of one page per status (each the head of an index
        on `status, …, id`): the same page, without reading every match of every status.
        """
        params: list[Any] = []
        order = "ASC" if query.oldest_first else "DESC"
        arms = [self._page_ids(arm, params) for arm in _one_status_each(query)]
        if len(arms) == 1:
            ids = arms[0]
        else:
            union = " UNION ALL ".join(
                f"SELECT id FROM ({arm}) AS s{i}" for i, arm in enumerate(arms)
            )
            ids = f"SELECT id FROM ({union}) AS u ORDER BY id {order}{self._limit(query, params)}"
        return f"{SELECT_EXECUTIONS} WHERE id IN ({ids}) ORDER BY id {order}", params

    def _page_ids(self, query: ExecutionQuery, params: list[Any]) -> str:
        """The SQL of the ids of one page of executions (one more than the limit)."""
        where = Where(self, params)
        for spec in EXECUTION_FILTERS:
            if (value := spec.value_in(query)) is not None:
                self.filter(where, spec, value)
        if query.cursor is not None:
            where.add(f"id {'>' if query.oldest_first else '<'} {PARAM}", query.cursor)
        order = "ASC" if query.oldest_first else "DESC"
        limit = self._limit(query, params)
        return f"SELECT id FROM executions{where.sql()} ORDER BY id {order}{limit}"

    def _limit(self, query: ExecutionQuery, params: list[Any]) -> str:
        return Where(self, params).limit(query.limit + 1)

    def task_page(self, rows: Iterable[Row], limit: int) -> Page[TaskRecord]:
        """The page of `list_tasks`'s rows."""
        return page_of([self.task_from_row(row) for row in rows], limit, lambda task: task.id)

    def execution_page(self, rows: Iterable[Row], limit: int) -> Page[Execution]:
        """The page of `list_executions`'s rows."""
        return page_of([self.execution_from_row(row) for row in rows], limit, lambda e: e.id)

    # Rows and back

    def to_column(self, column: str, value: Any) -> Any:
        if column in JSON_COLUMNS:
            return to_json_text(value)
        if column in TIME_COLUMNS:
            return self.to_time(value)
        return value

    def from_column(self, column: str, value: Any) -> Any:
        if column in JSON_COLUMNS:
            return from_json_text(value)
        if column in TIME_COLUMNS:
            return self.from_time(value)
        return value

    def from_row(self, row: Row, columns: Sequence[str]) -> dict[str, Any]:
        pairs = zip(columns, row[: len(columns)], strict=True)
        return {column: self.from_column(column, value) for column, value in pairs}

    def task_row(self, task: TaskRecord) -> list[Any]:
        data = task.model_dump(exclude={"latest_execution"})
        return [self.to_column(column, data[column]) for column in TASK_COLUMNS]

    def task_from_row(self, row: Row) -> TaskRecord:
        """A task from its columns followed by its latest execution's (NULLs without one)."""
        data = self.from_row(row, TASK_COLUMNS)
        summary = row[len(TASK_COLUMNS) :]
        if summary[0] is not None:
            data["latest_execution"] = ExecutionSummary(**self.from_row(summary, SUMMARY_COLUMNS))
        return TaskRecord(**data)

    def execution_row(
        self, execution: Execution, columns: Sequence[str] = EXECUTION_COLUMNS
    ) -> list[Any]:
        data = dict(execution)
        return [self.to_column(column, data[column]) for column in columns]

    def execution_from_row(self, row: Row, events: Sequence[Row] = ()) -> Execution:
        """An execution from its columns (and maybe more), with its events given as
        (status, at, attempt, reason)."""
        data = self.from_row(row, EXECUTION_COLUMNS)
        return Execution(**data, events=tuple(self.event_from_row(event) for event in events))

    def event_row(self, execution_id: str, seq: int, event: Event) -> tuple[Any, ...]:
        at = self.to_time(event.at)
        return (execution_id, seq, str(event.status), at, event.attempt, event.reason)

    def event_from_row(self, row: Row) -> Event:
        status, at, attempt, reason = row
        return Event(status=status, at=self.from_time(at), attempt=attempt, reason=reason)
