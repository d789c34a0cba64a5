"""Task types of the chaos suite, run in real `sublim executor` processes.

Every run of a task appends two lines to the record file named by CHAOS_RECORD: one when it
starts and one when it ends (a run killed with its worker never writes its end). Each line is
`start|end N RUN PID WORKER SECONDS`: the payload's `n` (one per execution), a token naming this
run, the executor process it belongs to (what the chaos driver kills), the process it ran in
(the same, except on the process pool: one of the executor's worker processes) and the
wall-clock time.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
import uuid

from sublim import ExecutionNodeBuilder, Task

RECORD_ENV = "CHAOS_RECORD"
WORKERS_ENV = "CHAOS_WORKERS"


def executor_pid() -> int:
    """The executor process this code runs for: this process, or, in a worker process of the
    process pool, the executor that started it."""
    parent = multiprocessing.parent_process()
    if parent is not None and parent.pid is not None:
        return parent.pid
    return os.getpid()


def record(kind: str, n: int, run: str) -> None:
    path = os.environ.get(RECORD_ENV)
    if path:
        with open(path, "a") as out:
            line = f"{kind} {n} {run} {executor_pid()} {os.getpid()} {time.time():.6f}\n"
            out.write(line)


class ChaosAsync(Task):
    """Sleeps `ms` milliseconds on the event loop (the async pool)."""

    n: int
    ms: int

    async def execute(self) -> dict[str, int]:
        run = uuid.uuid4().hex[:12]
        record("start", self.n, run)
        await asyncio.sleep(self.ms / 1000)
        record("end", self.n, run)
        return {"n": self.n}


class ChaosThread(Task):
    """Sleeps `ms` milliseconds in a thread (the thread pool)."""

    pool = "thread"

    n: int
    ms: int

    def execute(self) -> dict[str, int]:
        run = uuid.uuid4().hex[:12]
        record("start", self.n, run)
        time.sleep(self.ms / 1000)
        record("end", self.n, run)
        return {"n": self.n}


class ChaosProcess(ChaosThread):
    """Sleeps `ms` milliseconds in a worker process of the executor (the process pool)."""

    pool = "process"


node = (
    ExecutionNodeBuilder(workers=int(os.environ.get(WORKERS_ENV, "4")))
    .with_consumer(ChaosAsync)
    .with_consumer(ChaosThread)
    .with_consumer(ChaosProcess)
    .build()
)
