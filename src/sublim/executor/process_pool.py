"""The process pool: `size` long-lived worker processes, one task at a time each.

Not `concurrent.futures.ProcessPoolExecutor`: there, one child dying (`os._exit`, a segfault,
`kill -9`) breaks the whole pool. Here a dead worker fails only the task it was running
(`Outcome.crashed`, error type `WorkerCrashed`) and a fresh process takes its place.

Workers come from the "forkserver" context where the platform has it (a fork of a small,
single-threaded server: safe while the parent runs threads and an event loop, and quick to
replace), else "spawn". They are daemonic: they die with the parent, and so cannot start
processes of their own. The parent waits for answers with `loop.add_reader` on the pipe and on
the process sentinel, so no thread is held per worker (POSIX event loops only). Tasks and
results are pickled: a task class must be importable by its module path. A request or answer
is written and read whole on the loop's thread, so very large payloads or results stall the
loop while they cross the pipe. As with "spawn", each new worker imports the parent's
`__main__` module, so a heavy main script slows worker start-up (not task runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import pickle
import time
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess

from sublim.core.model import ErrorInfo
from sublim.core.task import PoolKind, Task
from sublim.errors import SublimError
from sublim.executor import process_worker
from sublim.executor.outcome import (
    POOL_CLOSED,
    WORKER_CRASHED,
    Outcome,
    described_error,
    effective_time_limit,
    elapsed_since,
    pool_closed,
    time_limit_exceeded,
)

log = logging.getLogger("sublim.executor.pools")

WorkerContext = ForkServerContext | SpawnContext

# How long a worker told to STOP may take to exit before it is killed.
_STOP_PATIENCE_SECONDS = 2.0
_RESPAWN_BACKOFF_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)


class WorkerStartError(SublimError):
    """A worker process exited before it was ready to take tasks."""


def default_context() -> WorkerContext:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Forked workers then start with the worker loop (and pydantic) already imported.
    context.set_forkserver_preload(["__main__", process_worker.__name__])
    return context


async def wait_readable(*fds: int) -> None:
    """Wait until one of `fds` is readable (data, end of file, or a process exit)."""
    loop = asyncio.get_running_loop()
    readable: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not readable.done():
            readable.set_result(None)

    for fd in fds:
        loop.add_reader(fd, wake)
    try:
        await readable
    finally:
        for fd in fds:
            loop.remove_reader(fd)


class _Worker:
    """The parent's handle on one worker process and its pipe."""

    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.retired = False  # killed or dead: never given another task
        self.stopped_as: ErrorInfo | None = None  # why the pool killed it, if it did

    @classmethod
    async def spawn(cls, context: WorkerContext) -> _Worker:
        parent_end, child_end = context.Pipe()
        process = context.Process(target=process_worker.worker_main, args=(child_end,), daemon=True)
        await asyncio.to_thread(process.start)
        child_end.close()  # so that the child's death reads as end of file here
        worker = cls(process, parent_end)
        await worker._await_ready()
        return worker

    async def _await_ready(self) -> None:
        await wait_readable(self.conn.fileno(), self.process.sentinel)
        if self._receive() != process_worker.READY:
            code = await self.reap()
            raise WorkerStartError(f"worker process exited with code {code} before it was ready")

    async def execute(self, request: bytes, limit: float | None) -> Outcome:
        started = time.perf_counter()
        try:
            self.conn.send_bytes(request)
        except OSError:  # it died while idle
            return await self._crash_outcome(started)
        try:
            async with asyncio.timeout(limit):
                await wait_readable(self.conn.fileno(), self.process.sentinel)
        except TimeoutError:
            assert limit is not None
            await self.kill()
            return time_limit_exceeded(limit, elapsed_since(started), "; its process was killed")
        return await self._read_outcome(started)

    async def _read_outcome(self, started: float) -> Outcome:
        answer = self._receive()
        if answer is None:
            return await self._crash_outcome(started)
        try:
            outcome = pickle.loads(answer)
        except Exception as exc:
            error = described_error(exc, "the task's return value could not be unpickled")
            return Outcome.failure(error, elapsed_since(started))
        assert isinstance(outcome, Outcome)
        return outcome

    def _receive(self) -> bytes | None:
        """The next message if one is there; None when the child has died."""
        try:
            return self.conn.recv_bytes() if self.conn.poll() else None
        except (EOFError, OSError):
            return None

    async def _crash_outcome(self, started: float) -> Outcome:
        self.retired = True
        code = await self.reap()
        error = self.stopped_as or ErrorInfo(
            type=WORKER_CRASHED, message=f"worker process exited with code {code}"
        )
        if self.stopped_as is None:
            log.warning("worker process %s died running a task: %s", self.process.pid, code)
        return Outcome.failure(error, elapsed_since(started), crashed=True)

    def kill_now(self, stopped_as: ErrorInfo | None = None) -> None:
        self.retired = True
        self.stopped_as = stopped_as
        self.process.kill()

    async def kill(self) -> None:
        self.kill_now()
        await self.reap()

    async def reap(self) -> int | None:
        """Wait for the process to exit; its exit code (negative: the killing signal)."""
        if self.process.exitcode is None:
            await wait_readable(self.process.sentinel)
        self.process.join()
        self.conn.close()
        return self.process.exitcode

    async def stop(self) -> None:
        """Ask an idle worker to exit; kill it if it takes too long."""
        with contextlib.suppress(OSError):
            self.conn.send_bytes(process_worker.STOP)
        try:
            async with asyncio.timeout(_STOP_PATIENCE_SECONDS):
                await self.reap()
        except TimeoutError:
            await self.kill()


def _pickled_task(task: Task) -> bytes | Outcome:
    try:
        return pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        error = described_error(exc, f"the task {type(task).__qualname__} could not be pickled")
        return Outcome.failure(error, 0.0)


class ProcessPool:
    """`size` worker processes; a task waits for an idle one. See the module's doc."""

    kind: PoolKind = "process"

    def __init__(self, size: int, *, context: WorkerContext | None = None) -> None:
        self.size = size
        self._context = context or default_context()
        self._workers: set[_Worker] = set()
        self._busy: set[_Worker] = set()
        self._idle: asyncio.Queue[_Worker | None] = asyncio.Queue()  # None: the pool closed
        self._drained = asyncio.Event()  # set while no worker is busy
        self._drained.set()
        self._replacements: set[asyncio.Task[None]] = set()
        self._started = False
        self._closing = False

    async def start(self) -> None:
        spawned = await asyncio.gather(
            *(self._spawn() for _ in range(self.size)), return_exceptions=True
        )
        workers = [worker for worker in spawned if isinstance(worker, _Worker)]
        for worker in workers:
            self._idle.put_nowait(worker)
        self._started = True
        failures = [error for error in spawned if isinstance(error, BaseException)]
        if failures:
            await self.close(grace=0)
            raise failures[0]

    async def _spawn(self) -> _Worker:
        worker = await _Worker.spawn(self._context)
        self._workers.add(worker)
        return worker

    async def run(self, task: Task, *, time_limit: float | None = None) -> Outcome:
        request = _pickled_task(task)
        if isinstance(request, Outcome):
            return request
        worker = await self._acquire()
        if worker is None:
            return pool_closed("the pool is closed", 0.0)
        try:
            return await worker.execute(request, effective_time_limit(task, time_limit))
        except BaseException:
            # Cancelled by the caller: the task may still be running in the child; stop it.
            worker.kill_now()
            raise
        finally:
            self._release(worker)

    async def _acquire(self) -> _Worker | None:
        if not self._started:
            raise RuntimeError("the process pool was not started: await start() first")
        if self._closing:
            return None
        worker = await self._next_live_worker()
        if worker is None or self._closing:
            self._idle.put_nowait(worker)  # back for close(), or the None on to the next waiter
            return None
        self._busy.add(worker)
        self._drained.clear()
        return worker

    async def _next_live_worker(self) -> _Worker | None:
        """The next idle worker, replacing those that died while idle (say, `kill -9`)."""
        while (worker := await self._idle.get()) is not None and not worker.process.is_alive():
            log.warning("worker process %s died while idle; replacing it", worker.process.pid)
            worker.retired = True
            self._start_replacing(worker)
        return worker

    def _release(self, worker: _Worker) -> None:
        self._busy.discard(worker)
        if not self._busy:
            self._drained.set()
        if worker.retired:
            self._start_replacing(worker)
        else:
            self._idle.put_nowait(worker)

    def _start_replacing(self, worker: _Worker) -> None:
        replacement = asyncio.create_task(self._replace(worker))
        self._replacements.add(replacement)
        replacement.add_done_callback(self._replacements.discard)

    async def _replace(self, dead: _Worker) -> None:
        self._workers.discard(dead)
        await dead.reap()
        for delay in (0.0, *_RESPAWN_BACKOFF_SECONDS):
            await asyncio.sleep(delay)
            if self._closing:
                return
            with contextlib.suppress(WorkerStartError, OSError):
                self._idle.put_nowait(await self._spawn())
                return
            log.error("could not start a replacement worker process; retrying")
        log.error("gave up replacing a worker process: the pool runs one worker short")

    async def close(self, *, grace: float) -> None:
        """Let running tasks finish for up to `grace` seconds, kill the rest (their outcomes:
        `PoolClosed`, crashed), then stop every worker process."""
        self._closing = True
        if not await self._drained_within(grace):
            self._kill_busy()
            await self._drained.wait()
        await asyncio.gather(*self._replacements, return_exceptions=True)
        await asyncio.gather(*(worker.stop() for worker in self._workers))
        self._workers.clear()
        while not self._idle.empty():
            self._idle.get_nowait()
        self._idle.put_nowait(None)  # wakes every run() still waiting for a worker

    async def _drained_within(self, seconds: float) -> bool:
        try:
            async with asyncio.timeout(seconds):
                await self._drained.wait()
        except TimeoutError:
            return False
        return True

    def _kill_busy(self) -> None:
        error = ErrorInfo(
            type=POOL_CLOSED,
            message="the pool closed and killed the worker process still running the task",
        )
        for worker in self._busy:
            worker.kill_now(stopped_as=error)
