"""CPU per recorded update by batch size: `Service.record_updates` on a SQLite store and
broker (one file, in this process), each execution's Running then Passed update recorded in
batches of `--batch` updates. What the recorder's linger (decision 036) trades on.

    .venv/bin/python bench/record_batches.py [--batches 1,10,100] [--executions 2000]

Prints one line per batch size: process CPU µs per update (all threads) and wall seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from sublim.config import Settings
from sublim.core.model import TaskStatus, Update, WorkerInfo, utcnow
from sublim.core.service import Service, TaskSpec

S = TaskStatus
WORKER = WorkerInfo(node="bench", host="bench", pid=1)


def updates_of(task_id: str, execution_id: str) -> tuple[Update, Update]:
    now = utcnow()
    common = {"execution_id": execution_id, "task_id": task_id, "attempt": 1, "worker": WORKER}
    running = Update(**common, seq=1, status=S.RUNNING, started_at=now, at=now)
    passed = Update(**common, seq=2, status=S.PASSED, result=1, complete=True, at=now)
    return running, passed


async def measure(batch: int, executions: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="bench-record-") as folder:
        url = f"sqlite:///{Path(folder) / 'sublim.db'}"
        async with Service.from_settings(Settings(store_url=url, broker_url=url)) as service:
            pairs = []
            for start in range(0, executions, 500):
                specs = [TaskSpec("Bench", execute=True)] * min(500, executions - start)
                created = await service.create_tasks(specs)
                pairs += [updates_of(t.id, e.id) for t, e in created if e is not None]
            cpu, wall = time.process_time(), time.perf_counter()
            for phase in zip(*pairs, strict=True):
                for i in range(0, len(phase), batch):
                    await service.record_updates(phase[i : i + batch])
            used = time.process_time() - cpu
            return 1e6 * used / (2 * executions), time.perf_counter() - wall


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,10,100")
    parser.add_argument("--executions", type=int, default=2000)
    args = parser.parse_args()
    for batch in map(int, args.batches.split(",")):
        per_update, wall = await measure(batch, args.executions)
        print(f"batch {batch}: {per_update:,.0f} µs CPU per update, {wall:.2f} s")


if __name__ == "__main__":
    asyncio.run(main())
