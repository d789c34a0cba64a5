"""`sublim up --demo N`: enqueue example executions and watch them run to the end."""

from __future__ import annotations

import asyncio
import itertools
import json

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sublim.core.model import Execution
from sublim.core.service import Service

console = Console()

EXAMPLES: list[tuple[str, dict[str, object]]] = [
    ("Hello", {"name": "Subliminal"}),
    ("Sleep", {"seconds": 0.5}),
    ("Fibonacci", {"n": 22}),
    ("Hello", {"name": "you"}),
    ("Fail", {"message": "failing by design: watch the retry"}),
]


async def run_demo(service: Service, count: int) -> list[Execution]:
    """Enqueue `count` example executions, show progress until all finish, print them."""
    enqueued = [
        await _enqueue(service, topic, payload)
        for topic, payload in itertools.islice(itertools.cycle(EXAMPLES), count)
    ]
    finished = await _watch(service, [e.id for e in enqueued])
    console.print(_table(finished))
    return finished


async def _enqueue(service: Service, topic: str, payload: dict[str, object]) -> Execution:
    _, execution = await service.create_task(topic, payload, labels={"demo": "true"}, execute=True)
    assert execution is not None
    return execution


async def _watch(service: Service, ids: list[str]) -> list[Execution]:
    columns = (TextColumn("executions"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task("run", total=len(ids))
        while True:
            current = [await service.get_execution(i) for i in ids]
            done = sum(e.finished for e in current)
            progress.update(bar, completed=done)
            if done == len(ids):
                return current
            await asyncio.sleep(0.1)


def _table(executions: list[Execution]) -> Table:
    table = Table(title="Executions", show_lines=False)
    for column in ("id", "topic", "status", "attempt", "duration", "result / error"):
        table.add_column(column)
    for e in executions:
        outcome = json.dumps(e.result) if e.error is None else f"{e.error.type}: {e.error.message}"
        duration = f"{e.duration_seconds * 1000:.1f} ms" if e.duration_seconds is not None else "-"
        table.add_row(
            e.id, e.topic, e.status.value, f"{e.attempt}/{e.max_attempts}", duration, outcome
        )
    return table
