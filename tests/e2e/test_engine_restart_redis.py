"""A Redis restart mid-run (kill -9, append-only file fsynced on every write): the run
completes, nothing lost, nothing passed twice. Runs on a Redis of the test's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sublim.core.service import Service
from tests.e2e.conftest import ExecutorProcesses
from tests.e2e.deployments import Deployment
from tests.e2e.engine_restart import run_through_a_restart
from tests.own_engines import OwnEngine, own_engine, redis_command


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[OwnEngine]:
    with own_engine("redis", redis_command(tmp_path / "redis-data"), tmp_path) as started:
        yield started


@pytest.fixture
def deployment(engine: OwnEngine, tmp_path: Path) -> Deployment:
    broker_url = f"redis://127.0.0.1:{engine.port}/0"
    return Deployment(f"sqlite:///{tmp_path / 'store.db'}", broker_url)


async def test_a_run_survives_a_redis_restart(
    engine: OwnEngine, service: Service, executors: ExecutorProcesses, record_file: Path
) -> None:
    await run_through_a_restart(engine, service, executors, record_file)
