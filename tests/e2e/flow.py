"""Helpers of the end-to-end tests: enqueue through the service, wait for the outcome."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

from sublim.core.model import Execution, TaskStatus
from sublim.core.service import Service

S = TaskStatus


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
            assert time.monotonic() < deadline, (
                f"{len(unfinished)} unfinished, e.g. {unfinished[0]}"
            )
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.gather(recorder, sweeper)


def runs_per_task(record_file: Path) -> Counter[int]:
    return Counter(int(line.split()[0]) for line in record_file.read_text().splitlines())


async def wait_for_running(service: Service, ids: list[str], at_least: int) -> None:
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
