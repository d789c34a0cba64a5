"""Task types the end-to-end tests run in real executor processes.

Each run appends "<n> <pid>" to the file named by SUBLIM_TEST_RECORD, so a test can count how
many times each task really ran, whatever the store says.
"""

from __future__ import annotations

import asyncio
import os

from sublim import ExecutionNodeBuilder, Task


def _record(n: int) -> None:
    path = os.environ.get("SUBLIM_TEST_RECORD")
    if path:
        with open(path, "a") as out:
            out.write(f"{n} {os.getpid()}\n")


class Noop(Task):
    n: int

    async def execute(self) -> dict[str, int]:
        _record(self.n)
        return {"n": self.n}


class Nap(Task):
    n: int
    seconds: float

    async def execute(self) -> dict[str, int]:
        await asyncio.sleep(self.seconds)
        _record(self.n)
        return {"n": self.n}


class Crash(Task):
    """Takes its whole executor process down with it: a poison task."""

    async def execute(self) -> None:
        os._exit(3)


node = (
    ExecutionNodeBuilder(workers=int(os.environ.get("SUBLIM_TEST_WORKERS", "8")))
    .with_consumer(Noop)
    .with_consumer(Nap)
    .with_consumer(Crash)
    .build()
)
