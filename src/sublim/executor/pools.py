"""Worker pools: where a task's `execute` runs — on the event loop, in threads, in processes.

Every pool has the same shape (`Pool`): `start()`, `run(task)` → `Outcome`, `close(grace=…)`.
`run` never raises for a task's failure: the task's exception, a crashed worker process, a
time limit, the pool closing under a running task — each comes back as an `Outcome` with an
`ErrorInfo`. Only `asyncio.CancelledError` propagates, when the caller cancels `run`.

Time limits: `run(task, time_limit=…)` (default: the task class's `time_limit`).

- async pool: the task is cancelled at the limit.
- process pool: the worker process is killed at the limit and replaced.
- thread pool: Python cannot stop a thread, so the attempt is *abandoned*: `run` returns
  `TimeLimitExceeded` at the limit while the thread runs on, holding its pool slot until
  `execute` returns. The same holds for a sync `execute` on the async pool (it runs in
  `asyncio.to_thread`), and for threads still busy when `close(grace)` gives up on them.
  An abandoned thread also delays interpreter exit until it returns.

Concurrency on the async pool is bounded by the caller (the node's slot semaphore); the thread
and process pools run at most `size` tasks at once and queue the rest.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from sublim.core.task import PoolKind, Task
from sublim.executor.outcome import (
    TASK_ERRORS,
    Outcome,
    effective_time_limit,
    elapsed_since,
    outcome_of_exception,
    pool_closed,
    run_captured,
    time_limit_exceeded,
)
from sublim.executor.process_pool import ProcessPool

__all__ = ["AsyncPool", "Outcome", "Pool", "ProcessPool", "ThreadPool", "make_pool"]

# After close() cancels what outlived its grace, how long to wait for the cancellations to land.
_CANCELLATION_WAIT_SECONDS = 1.0


class Pool(Protocol):
    kind: PoolKind

    async def start(self) -> None: ...

    async def run(self, task: Task, *, time_limit: float | None = None) -> Outcome: ...

    async def close(self, *, grace: float) -> None: ...


def make_pool(kind: PoolKind, size: int) -> Pool:
    """A pool of `kind`; `size` is its number of threads or processes (unused by `async`)."""
    if size < 1:
        raise ValueError(f"a pool needs at least one worker, not {size}")
    if kind == "async":
        return AsyncPool()
    if kind == "thread":
        return ThreadPool(size)
    if kind == "process":
        return ProcessPool(size)
    raise ValueError(f"unknown pool kind {kind!r}")


def _caller_is_cancelled() -> bool:
    current = asyncio.current_task()
    return current is not None and current.cancelling() > 0


class _InProcessPool:
    """Shared by the async and thread pools: each run is an asyncio future of its `Outcome`,
    which a time limit or `close` can cancel without the caller being cancelled."""

    kind: PoolKind
    _abandon_detail: str = ""
    _closed_message: str = "the pool closed while the task was running"

    def __init__(self) -> None:
        self._running: set[asyncio.Future[Outcome]] = set()
        self._closing = False

    async def start(self) -> None:
        return None

    async def run(self, task: Task, *, time_limit: float | None = None) -> Outcome:
        if self._closing:
            return pool_closed("the pool is closed", 0.0)
        started = time.perf_counter()
        work = self._submit(task)
        self._running.add(work)
        try:
            return await self._outcome_of(work, effective_time_limit(task, time_limit), started)
        finally:
            self._running.discard(work)

    async def close(self, *, grace: float) -> None:
        self._closing = True
        if self._running:
            _, overdue = await asyncio.wait(set(self._running), timeout=grace)
            await self._cancel(overdue)
        self._shutdown()

    def _submit(self, task: Task) -> asyncio.Future[Outcome]:
        raise NotImplementedError

    def _shutdown(self) -> None:
        return None

    async def _outcome_of(
        self, work: asyncio.Future[Outcome], limit: float | None, started: float
    ) -> Outcome:
        # `work` never raises a task's exception (it resolves to an Outcome), so a TimeoutError
        # here is the limit's, and a CancelledError is either the caller's or close()'s.
        try:
            async with asyncio.timeout(limit):
                return await work
        except TimeoutError:
            assert limit is not None
            return time_limit_exceeded(limit, elapsed_since(started), self._abandon_detail)
        except asyncio.CancelledError:
            if _caller_is_cancelled():
                raise
            return pool_closed(self._closed_message, elapsed_since(started))

    @staticmethod
    async def _cancel(overdue: set[asyncio.Future[Outcome]]) -> None:
        for work in overdue:
            work.cancel()
        if overdue:
            await asyncio.wait(overdue, timeout=_CANCELLATION_WAIT_SECONDS)


class AsyncPool(_InProcessPool):
    """Runs `await task.execute()` on the running loop (a sync `execute` via `to_thread`)."""

    kind: PoolKind = "async"
    _closed_message = "the pool closed and cancelled the task"

    def _submit(self, task: Task) -> asyncio.Future[Outcome]:
        return asyncio.ensure_future(_execute_on_loop(task))


class ThreadPool(_InProcessPool):
    """Runs `execute` in a thread of its own `ThreadPoolExecutor` (an async `execute` with
    `asyncio.run` in that thread). Threads past a time limit or a close grace are abandoned."""

    kind: PoolKind = "thread"
    _abandon_detail = "; its thread cannot be stopped and runs on until execute returns"
    _closed_message = "the pool closed; the task's thread was abandoned while still running"

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="sublim-thread")

    def _submit(self, task: Task) -> asyncio.Future[Outcome]:
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, run_captured, task)

    def _shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


async def _execute_on_loop(task: Task) -> Outcome:
    started = time.perf_counter()
    try:
        if task.is_async():
            value = await task.execute()
        else:
            value = await asyncio.to_thread(task.execute)
    except TASK_ERRORS as exc:
        return outcome_of_exception(exc, elapsed_since(started))
    return Outcome.success(value, elapsed_since(started))
