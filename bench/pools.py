"""Per-task overhead of each worker pool: the wall time of `pool.run` for a task that does
nothing, one task at a time, in microseconds (median of 3 runs).

    .venv/bin/python bench/pools.py [--tasks 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from sublim.core.task import PoolKind, Task
from sublim.executor.pools import Pool, make_pool

RUNS = 3
CASES: list[tuple[PoolKind, bool]] = [
    ("async", True),
    ("async", False),
    ("thread", False),
    ("thread", True),
    ("process", False),
    ("process", True),
]


class NoOp(Task):
    def execute(self) -> None:
        return None


class AsyncNoOp(Task):
    async def execute(self) -> None:
        return None


async def microseconds_per_task(pool: Pool, task: Task, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        outcome = await pool.run(task)
        assert outcome.error is None, outcome.error
    return (time.perf_counter() - started) / count * 1e6


async def median_overhead(kind: PoolKind, task: Task, count: int) -> float:
    pool = make_pool(kind, 2)
    await pool.start()
    try:
        await microseconds_per_task(pool, task, min(count, 50))  # warm up
        runs = [await microseconds_per_task(pool, task, count) for _ in range(RUNS)]
    finally:
        await pool.close(grace=1.0)
    return statistics.median(runs)


async def main(count: int) -> None:
    print(f"per-task overhead, no-op task, {count} sequential tasks, median of {RUNS} runs")
    for kind, is_async in CASES:
        task: Task = AsyncNoOp() if is_async else NoOp()
        overhead = await median_overhead(kind, task, count)
        label = f"{kind} pool, {'async' if is_async else 'sync'} execute"
        print(f"  {label:<32} {overhead:9.1f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000, help="tasks per run")
    asyncio.run(main(parser.parse_args().tasks))
