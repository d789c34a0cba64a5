"""The process pool, with real worker processes: values, errors, crashes, limits, close."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sublim.core.task import Task
from sublim.executor.outcome import POOL_CLOSED, TIME_LIMIT_EXCEEDED, WORKER_CRASHED
from sublim.executor.process_pool import ProcessPool
from tests.unit import pool_tasks as tasks

SIZE = 2


@pytest.fixture
async def pool() -> AsyncIterator[ProcessPool]:
    started = ProcessPool(SIZE)
    await started.start()
    yield started
    await started.close(grace=1.0)


async def all_slots_run_at_once(pool: ProcessPool, directory: Path) -> set[int]:
    """Runs one CPU-bound rendezvous task per slot; their pids, once all met at once."""
    outcomes = await asyncio.gather(*(pool.run(task) for task in rendezvous_tasks(directory)))
    assert all(outcome.error is None for outcome in outcomes), outcomes
    assert all(met for _, met in (outcome.value for outcome in outcomes))
    return {pid for pid, _ in (outcome.value for outcome in outcomes)}


def rendezvous_tasks(directory: Path) -> list[tasks.SpinUntilAllArrive]:
    directory.mkdir(exist_ok=True)
    return [
        tasks.SpinUntilAllArrive(directory=str(directory), name=str(i), parties=SIZE)
        for i in range(SIZE)
    ]


async def wait_for_pid_file(path: Path, patience: float = 10.0) -> int:
    deadline = time.monotonic() + patience
    while (pid := read_pid(path)) is None:
        assert time.monotonic() < deadline, f"{path} never appeared"
        await asyncio.sleep(0.01)
    return pid


def read_pid(path: Path) -> int | None:
    text = path.read_text() if path.exists() else ""
    return int(text) if text else None


async def wait_until_gone(pid: int, patience: float = 10.0) -> None:
    deadline = time.monotonic() + patience
    while pid_exists(pid):
        assert time.monotonic() < deadline, f"process {pid} is still alive"
        await asyncio.sleep(0.01)


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# --- values and errors ---------------------------------------------------------------------


async def test_it_returns_the_value_of_a_sync_task(pool: ProcessPool) -> None:
    outcome = await pool.run(tasks.Double(n=21))
    assert (outcome.value, outcome.error, outcome.crashed) == (42, None, False)


async def test_it_returns_the_value_of_an_async_task(pool: ProcessPool) -> None:
    assert (await pool.run(tasks.AsyncDouble(n=4))).value == 8


async def test_it_runs_tasks_in_other_processes(pool: ProcessPool) -> None:
    assert (await pool.run(tasks.ReportPid())).value != os.getpid()


async def test_an_exception_becomes_error_info_with_the_child_traceback(
    pool: ProcessPool,
) -> None:
    outcome = await pool.run(tasks.Fail(message="bad input"))
    assert outcome.error is not None
    assert (outcome.error.type, outcome.error.message) == ("ValueError", "bad input")
    assert outcome.error.traceback is not None
    assert "pool_tasks.py" in outcome.error.traceback
    assert not outcome.crashed


async def test_an_unpicklable_exception_becomes_clean_error_info(pool: ProcessPool) -> None:
    outcome = await pool.run(tasks.FailUnpicklably())
    assert outcome.error is not None
    assert outcome.error.type == "tests.unit.pool_tasks.UnpicklableError"
    assert outcome.error.message == "carries a lock"
    assert not outcome.crashed


async def test_an_unpicklable_result_becomes_clean_error_info(pool: ProcessPool) -> None:
    outcome = await pool.run(tasks.ReturnUnpicklable())
    assert outcome.error is not None
    assert "return value could not be pickled" in outcome.error.message
    assert outcome.error.traceback
    assert not outcome.crashed
    assert (await pool.run(tasks.Double(n=1))).value == 2


async def test_an_unpicklable_task_fails_without_using_a_worker(pool: ProcessPool) -> None:
    class DefinedInAFunction(Task):
        def execute(self) -> None:
            return None

    outcome = await pool.run(DefinedInAFunction())
    assert outcome.error is not None
    assert "could not be pickled" in outcome.error.message
    assert not outcome.crashed


async def test_sys_exit_in_a_task_fails_the_task_not_the_worker(pool: ProcessPool) -> None:
    outcome = await pool.run(tasks.CallSysExit())
    assert outcome.error is not None
    assert (outcome.error.type, outcome.crashed) == ("SystemExit", False)


# --- concurrency ---------------------------------------------------------------------------


async def test_cpu_bound_tasks_run_at_once_in_distinct_processes(
    pool: ProcessPool, tmp_path: Path
) -> None:
    pids = await all_slots_run_at_once(pool, tmp_path)
    assert len(pids) == SIZE


# --- crashes -------------------------------------------------------------------------------


async def test_a_task_calling_os_exit_is_reported_as_a_crash(pool: ProcessPool) -> None:
    outcome = await pool.run(tasks.ExitAbruptly(code=3))
    assert outcome.crashed
    assert outcome.error is not None
    assert outcome.error.type == WORKER_CRASHED
    assert outcome.error.message == "worker process exited with code 3"


async def test_a_task_killing_its_process_is_reported_as_a_crash(pool: ProcessPool) -> None:
    outcome = await pool.run(tasks.KillOwnProcess())
    assert outcome.crashed
    assert outcome.error is not None
    assert outcome.error.message == f"worker process exited with code -{signal.SIGKILL}"


async def test_after_crashes_every_slot_runs_tasks_again(pool: ProcessPool, tmp_path: Path) -> None:
    crashes = [tasks.ExitAbruptly(code=3), tasks.KillOwnProcess()]
    outcomes = await asyncio.gather(*(pool.run(task) for task in crashes))
    assert all(outcome.crashed for outcome in outcomes)
    assert len(await all_slots_run_at_once(pool, tmp_path)) == SIZE


async def test_a_worker_killed_while_idle_is_replaced_without_failing_a_task(
    pool: ProcessPool, tmp_path: Path
) -> None:
    victim = (await pool.run(tasks.ReportPid())).value
    os.kill(victim, signal.SIGKILL)
    await wait_until_gone(victim)
    assert victim not in await all_slots_run_at_once(pool, tmp_path)


# --- time limits and cancellation ----------------------------------------------------------


async def test_a_task_past_its_time_limit_is_killed_and_its_worker_replaced(
    pool: ProcessPool, tmp_path: Path
) -> None:
    marker = tmp_path / "pid"
    outcome = await pool.run(tasks.WritePidThenSleep(marker=str(marker)), time_limit=0.3)
    assert outcome.error is not None
    assert (outcome.error.type, outcome.crashed) == (TIME_LIMIT_EXCEEDED, False)
    killed_pid = read_pid(marker)
    assert killed_pid is not None
    assert not pid_exists(killed_pid)
    assert len(await all_slots_run_at_once(pool, tmp_path / "rendezvous")) == SIZE


async def test_cancelling_run_kills_the_task_process(pool: ProcessPool, tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    running = asyncio.create_task(pool.run(tasks.WritePidThenSleep(marker=str(marker))))
    pid = await wait_for_pid_file(marker)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await wait_until_gone(pid)
    assert (await pool.run(tasks.Double(n=2))).value == 4


# --- start and close -----------------------------------------------------------------------


async def test_run_before_start_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        await ProcessPool(1).run(tasks.Double(n=1))


async def test_close_waits_for_a_short_task_and_kills_a_long_one(tmp_path: Path) -> None:
    pool = ProcessPool(SIZE)
    await pool.start()
    marker = tmp_path / "pid"
    short = asyncio.create_task(pool.run(tasks.Sleep(seconds=0.1)))
    long = asyncio.create_task(pool.run(tasks.WritePidThenSleep(marker=str(marker))))
    long_pid = await wait_for_pid_file(marker)
    await pool.close(grace=0.5)
    assert (await short).value == "slept"
    killed = await long
    assert killed.error is not None
    assert (killed.error.type, killed.crashed) == (POOL_CLOSED, True)
    assert not pid_exists(long_pid)


async def test_close_stops_idle_workers_and_later_runs_answer_pool_closed() -> None:
    pool = ProcessPool(SIZE)
    await pool.start()
    pids = {(await pool.run(tasks.ReportPid())).value for _ in range(SIZE * 2)}
    await pool.close(grace=1.0)
    assert not any(pid_exists(pid) for pid in pids)
    outcome = await pool.run(tasks.Double(n=1))
    assert outcome.error is not None
    assert (outcome.error.type, outcome.crashed) == (POOL_CLOSED, True)


async def test_a_run_waiting_for_a_worker_is_answered_when_the_pool_closes() -> None:
    pool = ProcessPool(1)
    await pool.start()
    busy = asyncio.create_task(pool.run(tasks.Sleep(seconds=30)))
    waiting = asyncio.create_task(pool.run(tasks.Double(n=1)))
    await asyncio.sleep(0.05)
    await pool.close(grace=0)
    assert (await busy).crashed
    outcome = await waiting
    assert outcome.error is not None
    assert outcome.error.type == POOL_CLOSED


async def test_a_spawn_context_pool_also_survives_a_crash() -> None:
    pool = ProcessPool(1, context=multiprocessing.get_context("spawn"))
    await pool.start()
    try:
        assert (await pool.run(tasks.ExitAbruptly(code=5))).crashed
        assert (await pool.run(tasks.AsyncDouble(n=3))).value == 6
    finally:
        await pool.close(grace=1.0)


ROOT = Path(__file__).resolve().parents[2]
#: An executor's stand-in: a process pool running a task that writes its pid, then sleeps.
OWNER_SCRIPT = """
import asyncio, sys
from sublim.executor.process_pool import ProcessPool
from tests.unit.pool_tasks import WritePidThenSleep

async def main() -> None:
    pool = ProcessPool(1)
    await pool.start()
    await pool.run(WritePidThenSleep(marker=sys.argv[1]))

if __name__ == "__main__":
    asyncio.run(main())
"""


def is_gone_or_zombie(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


@pytest.mark.skipif(not Path("/proc").exists(), reason="reads process states from /proc")
async def test_a_worker_running_a_task_dies_with_its_executor_killed(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    owner = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        OWNER_SCRIPT,
        str(marker),
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    worker = await wait_for_pid_file(marker, patience=30.0)
    owner.send_signal(signal.SIGKILL)
    await owner.wait()
    deadline = time.monotonic() + 5.0
    while not is_gone_or_zombie(worker):
        assert time.monotonic() < deadline, "the worker outlived its executor"
        await asyncio.sleep(0.01)
