"""`sublim executions list|show|watch|cancel|retry`: executions, through the HTTP API."""

from __future__ import annotations

import asyncio
from datetime import datetime
from functools import partial
from typing import Annotated

import typer

from sublim.cli import render
from sublim.cli.remote import (
    EXIT_FAILED_RUN,
    AllOpt,
    CursorOpt,
    JsonOpt,
    LimitOpt,
    TokenOpt,
    UrlOpt,
    connected,
    fail,
    reported_errors,
)
from sublim.cli.watching import watch_executions
from sublim.client import DEFAULT_URL, Client, Page
from sublim.client.sync import follow_pages
from sublim.core.model import Execution, TaskStatus

app = typer.Typer(
    name="executions",
    help="List, show, watch, cancel and retry executions (through the HTTP API).",
    no_args_is_help=True,
)

ExecutionIdArg = Annotated[str, typer.Argument(help="the execution's id", show_default=False)]
TaskOpt = Annotated[str | None, typer.Option("--task", help="only this task's executions")]
MAX_LIMIT = 1000
TimeFormats = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]


@app.command("list")
def list_executions(
    task: TaskOpt = None,
    status: Annotated[
        list[TaskStatus] | None,
        typer.Option("--status", help="only these statuses (repeatable)", case_sensitive=False),
    ] = None,
    topic: Annotated[str | None, typer.Option("--topic", help="only this topic")] = None,
    created_after: Annotated[
        datetime | None,
        typer.Option("--created-after", formats=TimeFormats, help="created at or after (UTC)"),
    ] = None,
    created_before: Annotated[
        datetime | None,
        typer.Option("--created-before", formats=TimeFormats, help="created before (UTC)"),
    ] = None,
    limit: LimitOpt = 20,
    cursor: CursorOpt = None,
    every: AllOpt = False,
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
) -> None:
    """List executions (of one task, or all), newest first."""
    with connected(url, token) as client:

        def page(size: int, after: str | None) -> Page[Execution]:
            return client.list_executions(
                task,
                status=status,
                topic=topic,
                created_after=created_after,
                created_before=created_before,
                limit=size,
                cursor=after,
            )

        if every:
            executions, next_cursor = list(follow_pages(partial(page, MAX_LIMIT))), None
        else:
            first = page(limit, cursor)
            executions, next_cursor = first.items, first.next_cursor
    if as_json:
        items = [render.execution_json(execution) for execution in executions]
        return render.print_json(render.page_json(items, next_cursor))
    render.out.print(render.executions_table(executions))
    render.more_hint(next_cursor)


@app.command()
def show(
    execution_id: ExecutionIdArg,
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
) -> None:
    """Show an execution: status, attempts, worker, result or error, and its event log."""
    with connected(url, token) as client:
        execution = client.get_execution(execution_id)
    _print_execution(execution, as_json)


@app.command()
def cancel(
    execution_id: ExecutionIdArg,
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
) -> None:
    """Cancel a queued or running execution (an error once it has finished)."""
    with connected(url, token) as client:
        execution = client.cancel(execution_id)
    _print_execution(execution, as_json)


@app.command()
def retry(
    execution_id: ExecutionIdArg,
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
) -> None:
    """Start a new execution of a finished execution's task."""
    with connected(url, token) as client:
        execution = client.retry(execution_id)
    if as_json:
        return render.print_json(render.execution_json(execution))
    render.out.print(f"enqueued execution [bold]{execution.id}[/bold] (retry of {execution_id})")


@app.command()
def watch(
    execution_id: Annotated[
        str | None, typer.Argument(help="the execution to watch", show_default=False)
    ] = None,
    task: Annotated[
        str | None,
        typer.Option("--task", help="watch this task's unfinished executions (else its latest)"),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="one JSON object per event, a line each")
    ] = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
) -> None:
    """Print events as they happen until the execution finishes; exit 1 unless it Passed."""
    with connected(url, token) as client:
        ids = _watched_ids(client, execution_id, task)
    with reported_errors():
        finished = asyncio.run(watch_executions(url, token, ids, as_json=as_json))
    if not as_json:
        for execution in finished:
            render.out.print(_outcome_line(execution))
    if any(execution.status != TaskStatus.PASSED for execution in finished):
        raise typer.Exit(EXIT_FAILED_RUN)


def _watched_ids(client: Client, execution_id: str | None, task: str | None) -> list[str]:
    if (execution_id is None) == (task is None):
        raise fail("give an execution id or --task TASK_ID (one of them)")
    if execution_id is not None:
        return [execution_id]
    executions = list(client.iter_executions(task))
    if not executions:
        raise fail(f"task {task} has no executions")
    unfinished = [execution.id for execution in executions if not execution.finished]
    return unfinished or [executions[0].id]


def _outcome_line(execution: Execution) -> str:
    duration = render.seconds(execution.duration_seconds)
    status = render.status_text(execution.status).markup
    return f"{execution.id} {status} after {execution.attempt} attempt(s), {duration}"


def _print_execution(execution: Execution, as_json: bool) -> None:
    if as_json:
        return render.print_json(render.execution_json(execution))
    render.out.print(render.execution_view(execution))
