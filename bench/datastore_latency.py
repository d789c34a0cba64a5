"""Per-call latency of `GetExecution`: a SQLite store in this process, against the same
SQLite file behind a `sublim datastore` process reached over grpc://127.0.0.1.

    .venv/bin/python bench/datastore_latency.py [--calls 2000] [--runs 3]

Calls are sequential (one in flight), so this is latency, not throughput. Prints the median
per-call time of each run and the median of the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sublim.core.model import Event, Execution, TaskRecord, TaskStatus, utcnow
from sublim.store.base import Store
from sublim.store.remote import RemoteStore
from sublim.store.sqlite import SqliteStore

READY = "sublim datastore listening on "


def an_execution_with_events(task: TaskRecord) -> Execution:
    now = utcnow()
    events = tuple(Event(status=s, at=now, attempt=1) for s in (TaskStatus.INITIALIZED,) * 4)
    return Execution(task_id=task.id, topic=task.topic, payload=task.payload, events=events)


async def seeded(url: str) -> str:
    """Store one task and one execution (four events) at `url`; the execution's id."""
    store = SqliteStore.from_url(url)
    await store.open()
    task = await store.create_task(TaskRecord(name="t", topic="T", payload={"url": "x" * 200}))
    execution = an_execution_with_events(task)
    await store.create_executions([execution])
    await store.close()
    return execution.id


async def median_call_seconds(store: Store, execution_id: str, calls: int) -> float:
    for _ in range(50):  # warm up
        await store.get_execution(execution_id)
    timings = []
    for _ in range(calls):
        started = time.perf_counter()
        await store.get_execution(execution_id)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


@contextmanager
def datastore_process(store_url: str) -> Iterator[str]:
    command = [sys.executable, "-m", "sublim.cli", "datastore", "--port", "0", "--store", store_url]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith(READY):
            raise SystemExit(f"the datastore did not start: {line!r}")
        yield line.removeprefix(READY).strip()
    finally:
        process.terminate()
        process.wait()


async def run_once(store: Store, execution_id: str, calls: int) -> float:
    await store.open()
    try:
        return await median_call_seconds(store, execution_id, calls)
    finally:
        await store.close()


def report(name: str, runs: list[float]) -> None:
    each = ", ".join(f"{run * 1e6:.0f}" for run in runs)
    print(f"{name:<16} median {statistics.median(runs) * 1e6:7.0f} µs per call  (runs: {each})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    url = f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    execution_id = asyncio.run(seeded(url))
    direct = [
        asyncio.run(run_once(SqliteStore.from_url(url), execution_id, args.calls))
        for _ in range(args.runs)
    ]
    with datastore_process(url) as grpc_url:
        remote = [
            asyncio.run(run_once(RemoteStore.from_url(grpc_url), execution_id, args.calls))
            for _ in range(args.runs)
        ]
    report("sqlite (direct)", direct)
    report("grpc datastore", remote)


if __name__ == "__main__":
    main()
