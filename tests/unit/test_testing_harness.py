"""`sublim.testing`: the in-memory harness users write their own tests with."""

from __future__ import annotations

import pytest

from sublim import Task, TaskResult, TaskStatus
from sublim.testing import Harness, run_inline, run_inline_async

S = TaskStatus


class Greet(Task):
    name: str

    async def execute(self) -> dict[str, str]:
        return {"greeting": f"hello {self.name}"}


class Refuse(Task):
    def execute(self) -> TaskResult:
        return TaskResult(status=S.FAILED, data={"why": "refused"})


class Explode(Task):
    max_attempts = 2

    def execute(self) -> None:
        raise ValueError("boom")


async def test_the_harness_runs_enqueued_executions_until_idle() -> None:
    async with Harness(Greet, Refuse) as harness:
        greet = await harness.enqueue(Greet(name="ada"))
        refuse = await harness.enqueue(Refuse())
        await harness.run_until_idle()
        assert (await harness.get(greet.id)).result == {"greeting": "hello ada"}
        assert (await harness.get(refuse.id)).status == S.FAILED


async def test_a_task_that_raises_is_retried_then_failed_with_its_traceback() -> None:
    async with Harness(Explode) as harness:
        execution = await harness.enqueue(Explode())
        await harness.run_until_idle(timeout=20)
        failed = await harness.get(execution.id)
    assert failed.status == S.FAILED
    assert failed.attempt == 2
    assert failed.error is not None
    assert "ValueError: boom" in (failed.error.traceback or "")
    assert [e.status for e in failed.events].count(S.RUNNING) == 2


async def test_a_payload_that_does_not_decode_ends_in_error_without_retrying() -> None:
    async with Harness(Greet) as harness:
        _, execution = await harness.service.create_task("Greet", {"nom": 1}, execute=True)
        assert execution is not None
        await harness.run_until_idle()
        errored = await harness.get(execution.id)
    assert errored.status == S.ERROR
    assert errored.error is not None
    assert errored.error.type == "InvalidPayload"
    assert errored.attempt == 1


async def test_executions_can_be_listed_by_status() -> None:
    async with Harness(Greet, Refuse) as harness:
        await harness.enqueue(Greet(name="a"))
        await harness.enqueue(Refuse())
        await harness.run_until_idle()
        passed = await harness.executions(status=S.PASSED)
    assert [e.topic for e in passed] == ["Greet"]


def test_run_inline_returns_the_result_a_worker_would_report() -> None:
    assert run_inline(Greet(name="x")) == TaskResult(status=S.PASSED, data={"greeting": "hello x"})


async def test_run_inline_async_awaits_an_async_task() -> None:
    assert (await run_inline_async(Greet(name="y"))).data == {"greeting": "hello y"}


def test_run_inline_lets_the_exception_through() -> None:
    with pytest.raises(ValueError, match="boom"):
        run_inline(Explode())
