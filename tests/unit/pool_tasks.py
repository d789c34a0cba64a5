"""Task types for the pool tests, at module level so that worker processes can import them."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from sublim.core.task import Task

# Threads released by the in-process tests (thread and async pools share this process).
RELEASES: dict[str, threading.Event] = {}
RELEASE_WAIT_SECONDS = 5.0
# Keys of the `RecordCancellation` tasks that saw their cancellation.
CANCELLED: set[str] = set()


class Double(Task):
    n: int

    def execute(self) -> int:
        return self.n * 2


class AsyncDouble(Task):
    n: int

    async def execute(self) -> int:
        await asyncio.sleep(0)
        return self.n * 2


class Fail(Task):
    message: str

    def execute(self) -> None:
        raise ValueError(self.message)


class AsyncFail(Task):
    message: str

    async def execute(self) -> None:
        await asyncio.sleep(0)
        raise LookupError(self.message)


class TaskError(Exception):
    """An exception with a module path, to check qualified type names."""


class FailWithOwnError(Task):
    def execute(self) -> None:
        raise TaskError("own error")


class UnpicklableError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


class FailUnpicklably(Task):
    def execute(self) -> None:
        raise UnpicklableError("carries a lock")


class ReturnUnpicklable(Task):
    def execute(self) -> Any:
        return threading.Lock()


class CallSysExit(Task):
    def execute(self) -> None:
        raise SystemExit(4)


class ExitAbruptly(Task):
    code: int

    def execute(self) -> None:
        os._exit(self.code)


class KillOwnProcess(Task):
    def execute(self) -> None:
        os.kill(os.getpid(), signal.SIGKILL)


class ReportPid(Task):
    def execute(self) -> int:
        return os.getpid()


class Sleep(Task):
    seconds: float

    def execute(self) -> str:
        time.sleep(self.seconds)
        return "slept"


class AsyncSleep(Task):
    seconds: float

    async def execute(self) -> str:
        await asyncio.sleep(self.seconds)
        return "slept"


class WaitForRelease(Task):
    """Blocks its thread until the test sets `RELEASES[key]` (or a safety timeout)."""

    key: str

    def execute(self) -> bool:
        return RELEASES.setdefault(self.key, threading.Event()).wait(RELEASE_WAIT_SECONDS)


class SpinUntilAllArrive(Task):
    """CPU-bound rendezvous: marks its arrival with a file in `directory`, then busy-waits until
    `parties` tasks have arrived. It returns (pid, True) only if they all ran at the same time."""

    directory: str
    name: str
    parties: int
    patience_seconds: float = 10.0

    def execute(self) -> tuple[int, bool]:
        folder = Path(self.directory)
        (folder / self.name).touch()
        deadline = time.monotonic() + self.patience_seconds
        while time.monotonic() < deadline:
            if len(list(folder.iterdir())) >= self.parties:
                return os.getpid(), True
        return os.getpid(), False


class RecordCancellation(Task):
    """Sleeps on the loop; notes in `CANCELLED` when it is cancelled."""

    key: str
    seconds: float = 30.0

    async def execute(self) -> str:
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            CANCELLED.add(self.key)
            raise
        return "slept"


class RaiseTimeoutError(Task):
    async def execute(self) -> None:
        raise TimeoutError("the task's own timeout")


class LimitedByClass(Task):
    time_limit = 0.05

    async def execute(self) -> str:
        await asyncio.sleep(30)
        return "slept"


class WritePidThenSleep(Task):
    """Writes its pid to `marker` (to tell the test it runs), then sleeps."""

    marker: str
    seconds: float = 30.0

    def execute(self) -> str:
        Path(self.marker).write_text(str(os.getpid()))
        time.sleep(self.seconds)
        return "slept"
