"""End-to-end executions per second on one store and broker.

The service runs in this process: it enqueues N no-op executions and records their updates;
two `sublim executor` processes (8 workers each) run them. The time is from the first enqueue
until every execution has finished; each run starts from fresh state, and the median of the
runs is reported.

With `--latency`, it enqueues at a steady `--rate` (200/s) for `--seconds` instead, and
reports enqueue-to-start latency (each execution's `started_at - created_at`) p50 / p99.

URLs may hold `{run}` (a fresh name per run) and `{tmp}` (a temporary folder), e.g.

    .venv/bin/python bench/e2e_engines.py --broker 'redis://127.0.0.1:6379/0?prefix=bench{run}'
    .venv/bin/python bench/e2e_engines.py --broker 'nats://127.0.0.1:4222?prefix=bench{run}'
    .venv/bin/python bench/e2e_engines.py --broker 'sqlite:///{tmp}/sublim-{run}.db' \
        --store 'sqlite:///{tmp}/sublim-{run}.db'
    .venv/bin/python bench/e2e_engines.py \
        --store 'postgresql://postgres@127.0.0.1:5432/postgres?search_path=bench{run}' \
        --broker 'postgresql://postgres@127.0.0.1:5432/postgres?search_path=bench{run}'

Leftovers of a run on a shared engine (Redis keys, NATS streams) are not removed: use a
prefix of its own for benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from sublim.api.app import run_background_loops
from sublim.config import Settings
from sublim.core.model import TaskStatus
from sublim.core.service import Service
from sublim.store.base import ExecutionQuery

T = TypeVar("T")
Measure = Callable[[Settings], Awaitable[T]]

ROOT = Path(__file__).resolve().parents[1]
NODE = "tests.e2e.tasks:node"
S = TaskStatus
UNFINISHED = frozenset({S.INITIALIZED, S.READY_FOR_DISPATCH, S.BLOCKED, S.DISPATCHED, S.RUNNING})
ENQUEUE_CHUNK = 500
EXECUTOR_BOOT_SECONDS = 3.0


def settings_for(store_url: str, broker_url: str) -> Settings:
    return Settings(store_url=store_url, broker_url=broker_url, lease_seconds=30.0)


def start_executors(settings: Settings, count: int, log_dir: Path) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SUBLIM_BROKER_URL": settings.broker_url,
        "SUBLIM_STORE_URL": settings.store_url,
        "SUBLIM_LEASE_SECONDS": "30",
    }
    command = [sys.executable, "-m", "sublim.cli", "executor", NODE]
    logs = [open(log_dir / f"executor-{i}.log", "wb") for i in range(count)]  # noqa: SIM115
    return [subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log) for log in logs]


def stop_executors(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=30)


async def enqueue(service: Service, count: int) -> None:
    for start in range(0, count, ENQUEUE_CHUNK):
        numbers = range(start, min(start + ENQUEUE_CHUNK, count))
        creating = (service.create_task("Noop", {"n": n}, execute=True) for n in numbers)
        await asyncio.gather(*creating)


async def enqueue_steadily(service: Service, rate: float, seconds: float) -> None:
    """Enqueue one execution every 1/rate seconds, on schedule however long each takes."""
    started, count = time.perf_counter(), int(rate * seconds)
    pending = []
    for n in range(count):
        await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
        pending.append(asyncio.create_task(service.create_task("Noop", {"n": n}, execute=True)))
    await asyncio.gather(*pending)


async def start_latencies(service: Service) -> list[float]:
    """Seconds from each execution's creation (its enqueue) to its start by a worker."""
    latencies: list[float] = []
    query = ExecutionQuery(limit=1000)
    while True:
        page = await service.list_executions(query)
        started = [(e.started_at, e.created_at) for e in page.items if e.started_at]
        latencies += [(start - created).total_seconds() for start, created in started]
        if page.next_cursor is None:
            return latencies
        query = query.model_copy(update={"cursor": page.next_cursor})


async def wait_until_all_finished(service: Service) -> None:
    """Poll the store (the updates are recorded by the service's own loops)."""
    query = ExecutionQuery(statuses=UNFINISHED, limit=1)
    while True:
        if not (await service.list_executions(query)).items:
            return
        await asyncio.sleep(0.05)


async def one_run(settings: Settings, count: int) -> float:
    """Seconds from the first enqueue until all `count` executions finished."""
    async with Service.from_settings(settings) as service:
        stop = asyncio.Event()
        loops = asyncio.create_task(run_background_loops(service, stop))
        started = time.perf_counter()
        await enqueue(service, count)
        await wait_until_all_finished(service)
        elapsed = time.perf_counter() - started
        stop.set()
        await loops
    return elapsed


async def one_latency_run(settings: Settings, rate: float, seconds: float) -> list[float]:
    """Enqueue-to-start latencies of executions enqueued at a steady rate."""
    async with Service.from_settings(settings) as service:
        stop = asyncio.Event()
        loops = asyncio.create_task(run_background_loops(service, stop))
        await enqueue_steadily(service, rate, seconds)
        await wait_until_all_finished(service)
        stop.set()
        await loops
        return await start_latencies(service)


def run(store: str, broker: str, executors: int, tmp: Path, measure: Measure[T]) -> T:
    names = {"run": secrets.token_hex(4), "tmp": str(tmp)}
    settings = settings_for(store.format(**names), broker.format(**names))
    processes = start_executors(settings, executors, tmp)
    try:
        time.sleep(EXECUTOR_BOOT_SECONDS)
        return asyncio.run(measure(settings))
    finally:
        stop_executors(processes)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report_latency(args: argparse.Namespace, tmp: Path) -> None:
    def measure(settings: Settings) -> Awaitable[list[float]]:
        return one_latency_run(settings, args.rate, args.seconds)

    latencies = run(args.store, args.broker, args.executors, tmp, measure)
    print(
        f"enqueue-to-start at {args.rate:.0f}/s for {args.seconds:.0f} s "
        f"({len(latencies)} executions): p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms "
        f"(store {args.store}, broker {args.broker})"
    )


def report_throughput(args: argparse.Namespace, tmp: Path) -> None:
    def measure(settings: Settings) -> Awaitable[float]:
        return one_run(settings, args.executions)

    rates = []
    for index in range(args.runs):
        seconds = run(args.store, args.broker, args.executors, tmp, measure)
        rates.append(args.executions / seconds)
        print(
            f"run {index + 1}: {args.executions} executions in {seconds:.2f} s = {rates[-1]:.0f}/s",
            flush=True,
        )
    print(
        f"median: {statistics.median(rates):.0f} executions/s "
        f"(store {args.store}, broker {args.broker})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", default="sqlite:///{tmp}/store-{run}.db")
    parser.add_argument("--broker", required=True)
    parser.add_argument("-n", "--executions", type=int, default=2000)
    parser.add_argument("--executors", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--latency",
        action="store_true",
        help="measure enqueue-to-start latency at a steady rate instead",
    )
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sublim-bench-") as tmp:
        report = report_latency if args.latency else report_throughput
        report(args, Path(tmp))


if __name__ == "__main__":
    main()
