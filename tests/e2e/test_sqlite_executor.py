"""End to end on the embedded default: a real executor process, a SQLite store and broker."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

from sublim.model import Execution, TaskStatus
from sublim.service import Service
from tests.e2e.conftest import ExecutorProcesses

S = TaskStatus
HAPPY_PATHS = (
    [S.INITIALIZED, S.READY_FOR_DISPATCH, S.DISPATCHED, S.RUNNING, S.PASSED],
    # the worker's Running may be recorded before the publish is
    [S.INITIALIZED, S.READY_FOR_DISPATCH, S.RUNNING, S.PASSED],
)


async def enqueue(service: Service, topic: str, payloads: list[dict[str, object]]) -> list[str]:
    executions = await asyncio.gather(*(_enqueue_one(service, topic, p) for p in payloads))
    return [e.id for e in executions]


async def _enqueue_one(service: Service, topic: str, payload: dict[str, object]) -> Execution:
    _, execution = await service.create_task(topic, payload, execute=True)
    assert execution is not None
    return execution


async def wait_until_finished(service: Service, ids: list[str], timeout: float) -> list[Execution]:
    stop = asyncio.Event()
    recorder = asyncio.create_task(service.consume_updates(stop))
    sweeper = asyncio.create_task(service.run_sweeper(stop))
    deadline = time.monotonic() + timeout
    try:
        while True:
            executions = [await service.get_execution(i) for i in ids]
            unfinished = [e for e in executions if not e.finished]
            if not unfinished:
                return executions
            assert time.monotonic() < deadline, f"{len(unfinished)} unfinished, e.g. {unfinished[0]}"
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.gather(recorder, sweeper)


def runs_per_task(record_file: Path) -> Counter[int]:
    return Counter(int(line.split()[0]) for line in record_file.read_text().splitlines())


async def test_a_thousand_executions_each_pass_exactly_once(
    service: Service, executors: ExecutorProcesses, record_file: Path
) -> None:
    executors.start()
    ids = await enqueue(service, "Noop", [{"n": n} for n in range(1000)])
    executions = await wait_until_finished(service, ids, timeout=120)
    assert Counter(e.status for e in executions) == {S.PASSED: 1000}
    assert all(e.attempt == 1 for e in executions)
    assert all([ev.status for ev in e.events] in HAPPY_PATHS for e in executions)
    assert sorted(e.result["n"] for e in executions) == list(range(1000))
    assert runs_per_task(record_file) == Counter(range(1000))


async def test_killing_an_executor_mid_run_redelivers_its_attempts(
    service: Service, executors: ExecutorProcesses, record_file: Path
) -> None:
    first = executors.start()
    ids = await enqueue(service, "Nap", [{"n": n, "seconds": 1.5} for n in range(16)])
    await _wait_for_running(service, ids, at_least=4)
    first.kill()  # SIGKILL: no chance to release anything
    first.wait()
    executors.start()
    executions = await wait_until_finished(service, ids, timeout=90)
    assert Counter(e.status for e in executions) == {S.PASSED: 16}
    interrupted = [e for e in executions if e.attempt > 1]
    assert interrupted, "the kill interrupted no attempt"
    for execution in interrupted:
        statuses = [(ev.status, ev.attempt) for ev in execution.events]
        assert (S.INCOMPLETE, 1) in statuses
        assert statuses[-1] == (S.PASSED, execution.attempt)
    assert set(runs_per_task(record_file)) == set(range(16))


async def _wait_for_running(service: Service, ids: list[str], at_least: int) -> None:
    stop = asyncio.Event()
    recorder = asyncio.create_task(service.consume_updates(stop))
    try:
        for _ in range(300):
            executions = [await service.get_execution(i) for i in ids]
            if sum(e.status == S.RUNNING for e in executions) >= at_least:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("executions never started running")
    finally:
        stop.set()
        await recorder
