"""Waiting for executions to finish: a live progress line for `tasks run --wait`, and event
logs as they happen for `executions watch`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from sublim.cli.render import err, event_line, out, status_text
from sublim.client import AsyncClient, Client
from sublim.core.model import Event, Execution, TaskStatus


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


def _description(execution_id: str, status: TaskStatus) -> Text:
    return Text(f"{execution_id}  ").append_text(status_text(status))


def wait_with_progress(client: Client, execution: Execution) -> Execution:
    """Show the execution's status and the elapsed time until it finishes (on stderr)."""
    with _progress() as progress:
        line = progress.add_task(_description(execution.id, execution.status).markup)
        for event in client.stream_events(execution.id):
            progress.update(line, description=_description(execution.id, event.status).markup)
    return client.get_execution(execution.id)


def emit_event(event: Event, execution_id: str, *, as_json: bool, show_id: bool) -> None:
    """One event: a coloured log line, or a JSON line naming its execution."""
    if as_json:
        print(
            json.dumps({"execution_id": execution_id} | event.model_dump(mode="json")), flush=True
        )
    else:
        out.print(event_line(event, execution_id if show_id else None))


async def _watch_one(
    client: AsyncClient, execution_id: str, *, as_json: bool, show_id: bool
) -> Execution:
    async for event in client.stream_events(execution_id):
        emit_event(event, execution_id, as_json=as_json, show_id=show_id)
    return await client.get_execution(execution_id)


async def watch_executions(
    url: str, token: str | None, execution_ids: Sequence[str], *, as_json: bool
) -> list[Execution]:
    """Print the events of each execution as they happen, until every one has finished."""
    show_id = len(execution_ids) > 1
    async with AsyncClient(url, token) as client:
        watches = (
            _watch_one(client, one, as_json=as_json, show_id=show_id) for one in execution_ids
        )
        return list(await asyncio.gather(*watches))
