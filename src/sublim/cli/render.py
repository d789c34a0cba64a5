"""How the people's commands show tasks, executions and events: rich tables with coloured
statuses on a terminal, or one JSON document (`--json`) for scripts."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from sublim.core.model import Event, Execution, TaskRecord, TaskStatus

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

S = TaskStatus
STATUS_STYLES: dict[TaskStatus, str] = {
    S.PASSED: "bold green",
    S.FAILED: "bold red",
    S.ERROR: "bold red",
    S.KILLED: "red",
    S.CANCELLED: "yellow",
    S.INCOMPLETE: "yellow",
    S.BLOCKED: "yellow",
    S.RUNNING: "bold blue",
    S.DISPATCHED: "cyan",
    S.READY_FOR_DISPATCH: "cyan",
    S.INITIALIZED: "dim",
}
#: Fields of `sublim.core.model.Execution` that the API does not send (the store's own).
STORE_ONLY_FIELDS = frozenset({"payload", "last_seq", "heartbeat_at"})


# --- JSON ------------------------------------------------------------------------------


def execution_json(execution: Execution) -> dict[str, Any]:
    """An execution as the API shapes it."""
    return execution.model_dump(mode="json", exclude=set(STORE_ONLY_FIELDS))


def task_json(task: TaskRecord) -> dict[str, Any]:
    body = task.model_dump(mode="json", exclude={"execution"})
    execution = getattr(task, "execution", None)
    return body | ({"execution": execution_json(execution)} if execution else {})


def print_json(document: Any) -> None:
    """One JSON document on stdout, without markup or wrapping."""
    print(json.dumps(document, indent=2, ensure_ascii=False))


def page_json(items: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}


# --- pieces ----------------------------------------------------------------------------


def status_text(status: TaskStatus | None) -> Text:
    if status is None:
        return Text("-", style="dim")
    return Text(status.value, style=STATUS_STYLES.get(status, ""))


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def seconds(duration: float | None) -> str:
    return f"{duration:.2f} s" if duration is not None else "-"


def labels_text(labels: dict[str, str]) -> str:
    return " ".join(f"{key}={value}" for key, value in sorted(labels.items())) or "-"


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


# --- tables ----------------------------------------------------------------------------


def _table(*columns: str, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        table.add_column(column, no_wrap=column == "ID")
    return table


def tasks_table(tasks: Iterable[TaskRecord]) -> Table:
    table = _table("ID", "NAME", "TOPIC", "LABELS", "LATEST", "CREATED")
    for task in tasks:
        latest = task.latest_execution.status if task.latest_execution else None
        table.add_row(
            task.id,
            task.name,
            task.topic,
            labels_text(task.labels),
            status_text(latest),
            when(task.created_at),
        )
    return table


def executions_table(executions: Iterable[Execution], title: str | None = None) -> Table:
    table = _table("ID", "TASK", "TOPIC", "STATUS", "ATTEMPT", "CREATED", "DURATION", title=title)
    for execution in executions:
        table.add_row(
            execution.id,
            execution.task_id,
            execution.topic,
            status_text(execution.status),
            f"{execution.attempt}/{execution.max_attempts}",
            when(execution.created_at),
            seconds(execution.duration_seconds),
        )
    return table


def events_table(events: Sequence[Event]) -> Table:
    table = _table("AT", "STATUS", "ATTEMPT", "REASON", title="Events")
    for event in events:
        table.add_row(
            when(event.at), status_text(event.status), str(event.attempt), event.reason or ""
        )
    return table


def _fields(rows: Iterable[tuple[str, RenderableType]]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for name, value in rows:
        grid.add_row(name, value)
    return grid


def task_view(task: TaskRecord, executions: Sequence[Execution], latest: Execution | None) -> Group:
    fields = _fields(
        [
            ("id", task.id),
            ("name", task.name),
            ("topic", task.topic),
            ("labels", labels_text(task.labels)),
            ("payload", escape(compact_json(task.payload))),
            ("created", when(task.created_at)),
            ("updated", when(task.updated_at)),
        ]
    )
    parts: list[RenderableType] = [fields]
    if executions:
        parts.append(executions_table(executions, title="Executions"))
    if latest is not None:
        parts.append(events_table(latest.events))
    return Group(*parts)


def _execution_rows(execution: Execution) -> list[tuple[str, RenderableType]]:
    worker = execution.worker
    rows: list[tuple[str, RenderableType]] = [
        ("id", execution.id),
        ("task", execution.task_id),
        ("topic", execution.topic),
        ("status", status_text(execution.status)),
        ("attempt", f"{execution.attempt} of {execution.max_attempts}"),
        ("created", when(execution.created_at)),
        ("started", when(execution.started_at)),
        ("finished", when(execution.finished_at)),
        ("duration", seconds(execution.duration_seconds)),
        ("worker", f"{worker.node} ({worker.host}, pid {worker.pid})" if worker else "-"),
    ]
    if execution.result is not None:
        rows.append(("result", escape(compact_json(execution.result))))
    if execution.error is not None:
        error = f"{execution.error.type}: {execution.error.message}"
        rows.append(("error", Text(error, style="red")))
    return rows


def execution_view(execution: Execution) -> Group:
    return Group(_fields(_execution_rows(execution)), events_table(execution.events))


def event_line(event: Event, execution_id: str | None = None) -> Text:
    """One event as a log line: time, [execution], status, attempt, reason."""
    line = Text(when(event.at) + "  ")
    if execution_id:
        line.append(execution_id + "  ", style="dim")
    line.append_text(status_text(event.status))
    line.append(f"  attempt {event.attempt}")
    if event.reason:
        line.append(f"  {event.reason}", style="dim")
    return line


def more_hint(next_cursor: str | None) -> None:
    if next_cursor:
        err.print(f"[dim]more: --cursor {next_cursor} (or --all)[/dim]")
