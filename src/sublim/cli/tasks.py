"""`sublim tasks create|list|show|run|delete`: tasks, through the HTTP API."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

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
)
from sublim.cli.watching import wait_with_progress
from sublim.client import DEFAULT_URL, Client
from sublim.core.model import Execution, TaskStatus

app = typer.Typer(
    name="tasks",
    help="Create, list, show, run and delete tasks (through the HTTP API).",
    no_args_is_help=True,
)

TaskIdArg = Annotated[str, typer.Argument(help="the task's id", show_default=False)]
LabelsOpt = Annotated[
    list[str] | None,
    typer.Option("--label", help="a label as KEY=VALUE (repeatable)", show_default=False),
]
MaxAttemptsOpt = Annotated[
    int | None,
    typer.Option(
        "--max-attempts",
        min=1,
        max=100,
        help="attempts before giving up",
        show_default="the task type's",
    ),
]
WaitOpt = Annotated[
    bool,
    typer.Option("--wait", help="show live progress until it finishes; exit 1 unless it Passed"),
]


def parse_payload(text: str) -> dict[str, Any]:
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(f"--payload is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise fail('--payload must be a JSON object, such as \'{"url": "a.png"}\'')
    return payload


def parse_labels(labels: list[str] | None) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for label in labels or []:
        key, equals, value = label.partition("=")
        if not key or not equals:
            raise fail(f"--label {label!r} is not KEY=VALUE")
        parsed[key] = value
    return parsed


@app.command()
def create(
    topic: Annotated[str, typer.Argument(help="the task type (queue) to publish it to")],
    payload: Annotated[
        str, typer.Option("--payload", help="the task's fields, as a JSON object")
    ] = "{}",
    label: LabelsOpt = None,
    name: Annotated[
        str | None, typer.Option("--name", help="a name for people", show_default="the topic")
    ] = None,
    run: Annotated[bool, typer.Option("--run", help="also enqueue an execution now")] = False,
    max_attempts: MaxAttemptsOpt = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option("--idempotency-key", help="a retry with the same key creates nothing"),
    ] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
) -> None:
    """Create a task (and with --run, enqueue its first execution)."""
    fields, labels = parse_payload(payload), parse_labels(label)
    with connected(url, token) as client:
        task = client.create_task(
            topic,
            fields,
            name=name,
            labels=labels,
            execute=run,
            max_attempts=max_attempts,
            idempotency_key=idempotency_key,
        )
    if as_json:
        return render.print_json(render.task_json(task))
    render.out.print(f"created task [bold]{task.id}[/bold] ({task.topic})")
    if task.execution is not None:
        render.out.print(f"enqueued execution [bold]{task.execution.id}[/bold]")


@app.command("list")
def list_tasks(
    topic: Annotated[str | None, typer.Option("--topic", help="only this topic")] = None,
    label: LabelsOpt = None,
    status: Annotated[
        TaskStatus | None,
        typer.Option("--status", help="status of the latest execution", case_sensitive=False),
    ] = None,
    limit: LimitOpt = 20,
    cursor: CursorOpt = None,
    every: AllOpt = False,
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
) -> None:
    """List tasks, newest first."""
    labels = parse_labels(label)
    with connected(url, token) as client:
        if every:
            tasks, next_cursor = list(client.iter_tasks(topic, labels, status)), None
        else:
            page = client.list_tasks(topic, labels, status, limit=limit, cursor=cursor)
            tasks, next_cursor = page.items, page.next_cursor
    if as_json:
        return render.print_json(
            render.page_json([render.task_json(t) for t in tasks], next_cursor)
        )
    render.out.print(render.tasks_table(tasks))
    render.more_hint(next_cursor)


@app.command()
def show(
    task_id: TaskIdArg,
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
) -> None:
    """Show a task, its recent executions and the event log of the latest one."""
    with connected(url, token) as client:
        task = client.get_task(task_id)
        if as_json:
            return render.print_json(render.task_json(task))
        executions = client.list_executions(task_id, limit=10).items
        latest = client.get_execution(executions[0].id) if executions else None
    render.out.print(render.task_view(task, executions, latest))


@app.command()
def run(
    task_id: TaskIdArg,
    wait: WaitOpt = False,
    max_attempts: MaxAttemptsOpt = None,
    as_json: JsonOpt = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
) -> None:
    """Enqueue an execution of the task; with --wait, follow it until it finishes."""
    with connected(url, token) as client:
        execution = client.enqueue(task_id, max_attempts=max_attempts)
        if wait:
            execution = _waited(client, execution, as_json)
    if as_json:
        render.print_json(render.execution_json(execution))
    elif not wait:
        render.out.print(f"enqueued execution [bold]{execution.id}[/bold]")
    if wait and execution.status != TaskStatus.PASSED:
        raise typer.Exit(EXIT_FAILED_RUN)


def _waited(client: Client, execution: Execution, as_json: bool) -> Execution:
    finished = wait_with_progress(client, execution)
    if not as_json:
        render.out.print(render.execution_view(finished))
    return finished


@app.command()
def delete(
    task_id: TaskIdArg,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="do not ask (never asked when not on a terminal)")
    ] = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
) -> None:
    """Delete a task and all its executions."""
    if not yes and sys.stdin.isatty():
        typer.confirm(f"delete task {task_id} and its executions?", abort=True)
    with connected(url, token) as client:
        client.delete_task(task_id)
    render.out.print(f"deleted task [bold]{task_id}[/bold]")
