"""`modify_executions` in batches, on the Firestore emulator against a SQLite file.

    .venv/bin/python bench/firestore_modify.py [--executions 1000] [--batch 100] [--runs 3]

Each run records `--executions` executions (Dispatched) of one task each, then applies a
Running update to every one of them through `modify_executions` with the core's
`ApplyUpdates`, `--batch` executions per call, calls one after another. Prints executions
per second of each run and the median. The emulator (FIRESTORE_EMULATOR_HOST, default
127.0.0.1:8086) must be running; each run uses a project of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from sublim.core.model import Event, Execution, TaskRecord, TaskStatus, Update, utcnow
from sublim.core.modifiers import ApplyUpdates
from sublim.store.base import Store
from sublim.store.firestore import FirestoreStore
from sublim.store.sqlite import SqliteStore

S = TaskStatus


def dispatched_execution(task: TaskRecord) -> Execution:
    now = utcnow()
    events = (Event(status=S.INITIALIZED, at=now, attempt=1),)
    return Execution(task_id=task.id, topic=task.topic, status=S.DISPATCHED, events=events)


def running_update(execution: Execution) -> Update:
    return Update(
        execution_id=execution.id, task_id=execution.task_id, attempt=1, seq=1, status=S.RUNNING
    )


async def seeded(store: Store, count: int) -> list[Execution]:
    tasks = [TaskRecord(name=f"t{n}", topic="Bench") for n in range(count)]
    for task in tasks:
        await store.create_task(task)
    executions = [dispatched_execution(task) for task in tasks]
    await store.create_executions(executions)
    return executions


async def executions_per_second(store: Store, count: int, batch: int) -> float:
    await store.open()
    try:
        executions = await seeded(store, count)
        started = time.perf_counter()
        for start in range(0, count, batch):
            chunk = executions[start : start + batch]
            modifier = ApplyUpdates(tuple(map(running_update, chunk)))
            changes = await store.modify_executions([e.id for e in chunk], modifier)
            assert all(change.changed for change in changes)
        return count / (time.perf_counter() - started)
    finally:
        await store.close()


def firestore_store(directory: Path) -> Store:
    return FirestoreStore(f"bench-{uuid.uuid4().hex[:10]}")


def sqlite_store(directory: Path) -> Store:
    return SqliteStore.from_url(f"sqlite:///{directory / f'{uuid.uuid4().hex}.db'}")


async def median_rate(
    make: Callable[[Path], Store], runs: int, count: int, batch: int
) -> tuple[list[float], float]:
    rates = []
    with tempfile.TemporaryDirectory() as directory:
        for _ in range(runs):
            rates.append(await executions_per_second(make(Path(directory)), count, batch))
    return rates, statistics.median(rates)


async def main(args: argparse.Namespace) -> None:
    os.environ.setdefault("FIRESTORE_EMULATOR_HOST", "127.0.0.1:8086")
    backends: dict[str, Callable[[Path], Store]] = {
        "sqlite": sqlite_store,
        "firestore-emulator": firestore_store,
    }
    for name, make in backends.items():
        rates, median = await median_rate(make, args.runs, args.executions, args.batch)
        runs = ", ".join(f"{rate:,.0f}" for rate in rates)
        print(f"{name:>20}: median {median:,.0f} executions/s  (runs: {runs})")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    return parser.parse_args()


def run(entry: Callable[[argparse.Namespace], Awaitable[None]]) -> None:
    asyncio.run(entry(parse_args()))


if __name__ == "__main__":
    run(main)
