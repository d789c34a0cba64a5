"""Task types of the chaos suite, run in real `sublim executor` processes.

Every run of a task appends two lines to the record file named by CHAOS_RECORD: one when it
starts and one when it ends (a run killed with its worker never writes its end). Each line is
`start|end N RUN PID SECONDS`: the payload's `n` (one per execution), a token naming this run,
the process and the wall-clock time.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid

from sublim import ExecutionNodeBuilder, Task

RECORD_ENV = "CHAOS_RECORD"
WORKERS_ENV = "CHAOS_WORKERS"


def record(kind: str, n: int, run: str) -> None:
    path = os.environ.get(RECORD_ENV)
    if path:
        with open(path, "a") as out:
            out.write(f"{kind} {n} {run} {os.getpid()} {time.time():.6f}\n")


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


node = (
    ExecutionNodeBuilder(workers=int(os.environ.get(WORKERS_ENV, "4")))
    .with_consumer(ChaosAsync)
    .with_consumer(ChaosThread)
    .build()
)
