"""The in-process pools (async, thread) and what every pool shares: outcomes, error info.

The process pool starts processes, so its tests live in tests/integration/test_process_pool.py.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from sublim.core.task import PoolKind
from sublim.executor.outcome import (
    POOL_CLOSED,
    TIME_LIMIT_EXCEEDED,
    Outcome,
    effective_time_limit,
    error_info_from,
    qualified_name,
)
from sublim.executor.pools import AsyncPool, Pool, ProcessPool, ThreadPool, make_pool
from tests.unit import pool_tasks as tasks

IN_PROCESS_KINDS: list[PoolKind] = ["async", "thread"]


@pytest.fixture(params=IN_PROCESS_KINDS)
async def pool(request: pytest.FixtureRequest) -> AsyncIterator[Pool]:
    started = make_pool(request.param, 2)
    await started.start()
    yield started
    await started.close(grace=1.0)


@pytest.fixture
def release_key() -> Iterator[str]:
    """A fresh key for `WaitForRelease`; its thread is released at teardown at the latest."""
    key = uuid.uuid4().hex
    yield key
    release(key)


def release(key: str) -> None:
    tasks.RELEASES.setdefault(key, threading.Event()).set()


# --- make_pool -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "pool_type"),
    [("async", AsyncPool), ("thread", ThreadPool), ("process", ProcessPool)],
)
def test_make_pool_builds_a_pool_of_the_asked_kind(kind: PoolKind, pool_type: type) -> None:
    built = make_pool(kind, 2)
    assert isinstance(built, pool_type)
    assert built.kind == kind


def test_make_pool_refuses_a_pool_without_workers() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        make_pool("thread", 0)


# --- outcomes and error info ---------------------------------------------------------------


def test_a_builtin_exception_is_named_without_its_module() -> None:
    assert qualified_name(ValueError) == "ValueError"


def test_a_user_exception_is_named_with_its_module_path() -> None:
    assert qualified_name(tasks.TaskError) == "tests.unit.pool_tasks.TaskError"


def test_error_info_carries_type_message_and_formatted_traceback() -> None:
    try:
        raise KeyError("missing")
    except KeyError as exc:
        error = error_info_from(exc)
    assert (error.type, error.message) == ("KeyError", "'missing'")
    assert error.traceback is not None
    assert 'raise KeyError("missing")' in error.traceback


def test_an_outcome_is_ok_only_without_an_error() -> None:
    assert Outcome.success(1, 0.1).ok
    assert not Outcome.failure(error_info_from(ValueError("x")), 0.1).ok


def test_an_explicit_time_limit_wins_over_the_task_class_limit() -> None:
    task = tasks.LimitedByClass()
    assert effective_time_limit(task, 2.0) == 2.0
    assert effective_time_limit(task, None) == 0.05
    assert effective_time_limit(tasks.Double(n=1), None) is None


# --- values and errors, on both in-process pools --------------------------------------------


async def test_a_pool_returns_the_value_of_a_sync_task(pool: Pool) -> None:
    outcome = await pool.run(tasks.Double(n=21))
    assert (outcome.value, outcome.error, outcome.crashed) == (42, None, False)


async def test_a_pool_returns_the_value_of_an_async_task(pool: Pool) -> None:
    outcome = await pool.run(tasks.AsyncDouble(n=4))
    assert (outcome.value, outcome.error) == (8, None)


async def test_a_pool_measures_the_duration_of_the_task(pool: Pool) -> None:
    outcome = await pool.run(tasks.Sleep(seconds=0.05))
    assert outcome.value == "slept"
    assert 0.05 <= outcome.duration_seconds < 5


async def test_a_sync_exception_becomes_error_info(pool: Pool) -> None:
    outcome = await pool.run(tasks.Fail(message="bad input"))
    assert outcome.error is not None
    assert (outcome.error.type, outcome.error.message) == ("ValueError", "bad input")
    assert outcome.error.traceback is not None
    assert "raise ValueError(self.message)" in outcome.error.traceback
    assert not outcome.crashed


async def test_an_async_exception_becomes_error_info(pool: Pool) -> None:
    outcome = await pool.run(tasks.AsyncFail(message="not there"))
    assert outcome.error is not None
    assert (outcome.error.type, outcome.error.message) == ("LookupError", "not there")


async def test_a_user_exception_is_reported_by_its_qualified_name(pool: Pool) -> None:
    outcome = await pool.run(tasks.FailWithOwnError())
    assert outcome.error is not None
    assert outcome.error.type == "tests.unit.pool_tasks.TaskError"


async def test_sys_exit_in_a_task_fails_the_task_not_the_pool(pool: Pool) -> None:
    outcome = await pool.run(tasks.CallSysExit())
    assert outcome.error is not None
    assert outcome.error.type == "SystemExit"
    assert (await pool.run(tasks.Double(n=1))).value == 2


async def test_a_task_raising_its_own_timeout_error_is_not_a_time_limit(pool: Pool) -> None:
    outcome = await pool.run(tasks.RaiseTimeoutError(), time_limit=10)
    assert outcome.error is not None
    assert outcome.error.type == "TimeoutError"


# --- time limits ---------------------------------------------------------------------------


async def test_the_async_pool_cancels_a_task_past_its_time_limit() -> None:
    pool = AsyncPool()
    key = uuid.uuid4().hex
    outcome = await pool.run(tasks.RecordCancellation(key=key), time_limit=0.05)
    assert outcome.error is not None
    assert outcome.error.type == TIME_LIMIT_EXCEEDED
    assert not outcome.crashed
    assert key in tasks.CANCELLED
    assert (await pool.run(tasks.AsyncDouble(n=1))).value == 2


async def test_the_async_pool_applies_the_task_class_time_limit_by_default() -> None:
    outcome = await AsyncPool().run(tasks.LimitedByClass())
    assert outcome.error is not None
    assert outcome.error.type == TIME_LIMIT_EXCEEDED


async def test_the_thread_pool_abandons_a_task_past_its_time_limit(release_key: str) -> None:
    pool = ThreadPool(2)
    outcome = await pool.run(tasks.WaitForRelease(key=release_key), time_limit=0.05)
    assert outcome.error is not None
    assert outcome.error.type == TIME_LIMIT_EXCEEDED
    assert "cannot be stopped" in outcome.error.message
    assert (await pool.run(tasks.Double(n=5))).value == 10
    release(release_key)
    await pool.close(grace=1.0)


# --- cancellation by the caller ------------------------------------------------------------


async def test_cancelling_run_cancels_the_task_on_the_async_pool() -> None:
    pool = AsyncPool()
    key = uuid.uuid4().hex
    running = asyncio.create_task(pool.run(tasks.RecordCancellation(key=key)))
    await asyncio.sleep(0.01)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert key in tasks.CANCELLED


async def test_cancelling_run_propagates_on_the_thread_pool(release_key: str) -> None:
    pool = ThreadPool(1)
    running = asyncio.create_task(pool.run(tasks.WaitForRelease(key=release_key)))
    await asyncio.sleep(0.01)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    release(release_key)
    await pool.close(grace=1.0)


# --- close ---------------------------------------------------------------------------------


async def test_closing_the_async_pool_waits_for_short_tasks_and_cancels_long_ones() -> None:
    pool = AsyncPool()
    key = uuid.uuid4().hex
    short = asyncio.create_task(pool.run(tasks.AsyncSleep(seconds=0.05)))
    long = asyncio.create_task(pool.run(tasks.RecordCancellation(key=key)))
    await asyncio.sleep(0)
    await pool.close(grace=0.3)
    assert (await short).value == "slept"
    stopped = await long
    assert stopped.error is not None
    assert (stopped.error.type, stopped.crashed) == (POOL_CLOSED, True)
    assert key in tasks.CANCELLED


async def test_closing_the_thread_pool_waits_for_short_tasks_and_abandons_long_ones(
    release_key: str,
) -> None:
    pool = ThreadPool(2)
    short = asyncio.create_task(pool.run(tasks.Sleep(seconds=0.05)))
    long = asyncio.create_task(pool.run(tasks.WaitForRelease(key=release_key)))
    await asyncio.sleep(0)
    await pool.close(grace=0.3)
    assert (await short).value == "slept"
    stopped = await long
    assert stopped.error is not None
    assert (stopped.error.type, stopped.crashed) == (POOL_CLOSED, True)
    assert "abandoned" in stopped.error.message


async def test_a_closed_pool_answers_pool_closed(pool: Pool) -> None:
    await pool.close(grace=0)
    outcome = await pool.run(tasks.Double(n=1))
    assert outcome.error is not None
    assert (outcome.error.type, outcome.crashed) == (POOL_CLOSED, True)
