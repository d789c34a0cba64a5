"""A PostgreSQL restart mid-run (`pg_ctl stop -m immediate`, then start: crash recovery from
the WAL), with the store and the broker on that engine: the run completes, nothing lost,
nothing run twice. The engine is the test's own; the shared one on 5432 is left alone."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from sublim.config import Settings
from sublim.core.model import TaskStatus
from sublim.core.service import Service
from tests.e2e.conftest import ExecutorProcesses
from tests.e2e.deployments import Deployment
from tests.e2e.flow import enqueue, runs_per_task
from tests.e2e.own_postgres import OwnPostgres, own_postgres

S = TaskStatus
EXECUTIONS = 300
NAP_SECONDS = 0.1


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[OwnPostgres]:
    with own_postgres(tmp_path) as started:
        yield started


@pytest.fixture
def deployment(engine: OwnPostgres) -> Deployment:
    return Deployment(engine.url, engine.url)


@pytest.fixture
def e2e_settings(deployment: Deployment) -> Settings:
    """Leases far longer than the outage: no delivery is handed out twice while it lasts."""
    return Settings(
        store_url=deployment.store_url,
        broker_url=deployment.broker_url,
        lease_seconds=15.0,
        heartbeat_seconds=1.0,
        heartbeat_timeout_seconds=30.0,
        sweep_interval_seconds=0.5,
        shutdown_grace_seconds=5.0,
    )


@asynccontextmanager
async def recording_updates(service: Service) -> AsyncIterator[None]:
    """The API's updates consumer and sweeper, as `sublim api` runs them."""
    stop = asyncio.Event()
    loops = [
        asyncio.create_task(service.consume_updates(stop)),
        asyncio.create_task(service.run_sweeper(stop)),
    ]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*loops)


async def passed_count(service: Service, ids: list[str]) -> int:
    executions = [await service.get_execution(i) for i in ids]
    return sum(e.status == S.PASSED for e in executions)


async def wait_for_passed(service: Service, ids: list[str], at_least: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while (passed := await passed_count(service, ids)) < at_least:
        assert time.monotonic() < deadline, f"only {passed} of {len(ids)} passed in {timeout} s"
        await asyncio.sleep(0.1)
    return passed


def executor_logs(tmp_path: Path) -> str:
    return "\n".join(log.read_text() for log in sorted(tmp_path.glob("executor-*.log")))


async def test_a_run_survives_a_postgres_restart(
    engine: OwnPostgres,
    service: Service,
    executors: ExecutorProcesses,
    record_file: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="sublim.postgres")
    executors.start()
    executors.start()
    payloads = [{"n": n, "seconds": NAP_SECONDS} for n in range(EXECUTIONS)]
    ids = await enqueue(service, "Nap", payloads)
    async with recording_updates(service):
        before = await wait_for_passed(service, ids, at_least=EXECUTIONS // 5, timeout=60)
        assert before < EXECUTIONS, "the run ended before the restart"
        await asyncio.to_thread(engine.restart)
        await wait_for_passed(service, ids, at_least=EXECUTIONS, timeout=120)

    executions = [await service.get_execution(i) for i in ids]
    assert Counter(e.status for e in executions) == {S.PASSED: EXECUTIONS}
    assert all(sum(ev.status == S.PASSED for ev in e.events) == 1 for e in executions)
    assert runs_per_task(record_file) == Counter(range(EXECUTIONS))
    # Whoever noticed the outage said so, and said when it ended.
    said = caplog.text + executor_logs(tmp_path)
    assert f"PostgreSQL at 127.0.0.1:{engine.port}/postgres is unreachable" in said
    assert "is back after" in said
