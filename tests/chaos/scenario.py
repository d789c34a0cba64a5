"""One chaos run, end to end: a real `sublim api` and executor processes on one deployment,
executions enqueued over HTTP while the driver kills things, then every execution read back
and audited. Shared by the chaos tests and `bench/chaos_report.py`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.chaos.audit import Figures, cut_short, figures
from tests.chaos.driver import Driver, Plan
from tests.chaos.processes import ApiServer, Executors, chaos_env
from tests.chaos.record import Kill, Run, read_runs
from tests.chaos.workload import Workload
from tests.own_engines import OwnEngine, free_port


@dataclass(frozen=True)
class Deployment:
    """Where a run keeps its state; `engine` is the broker's own server, which the driver
    restarts (None: nothing to restart, as on the embedded default); `plan`, when set, is
    the deployment's own schedule of kills (an engine whose shortest lease is longer)."""

    name: str
    store_url: str
    broker_url: str
    engine: OwnEngine | None = None
    plan: Plan | None = None


@dataclass(frozen=True)
class Setup:
    executions: int = 2000
    executors: int = 3
    workers: int = 4
    enqueue_seconds: float = 15.0
    finish_timeout: float = 120.0
    plan: Plan = field(default_factory=Plan)
    seed: int = field(default_factory=lambda: random.randrange(1_000_000))


@dataclass(frozen=True)
class ChaosRun:
    """What a run left behind: figures, and the material they were computed from."""

    figures: Figures
    #: n -> execution id, as the API answered the enqueue.
    expected: dict[int, str]
    #: Every execution the API lists, read one by one with its event log.
    found: dict[str, dict[str, Any]]
    runs: list[Run]
    driver: Driver
    figures_file: Path


async def run_chaos(deployment: Deployment, folder: Path, setup: Setup | None = None) -> ChaosRun:
    setup = setup or Setup()
    record = folder / "runs.txt"
    env = chaos_env(deployment.store_url, deployment.broker_url, record, setup.workers)
    api = ApiServer(free_port(), env, folder)
    executors = Executors(env, folder)
    driver = Driver(api, executors, deployment.engine, random.Random(setup.seed), record)
    began = time.monotonic()
    async with _processes(api, executors, setup.executors):
        plan = deployment.plan or setup.plan
        expected, found = await _work_through_chaos(api, driver, setup, plan)
    runs = read_runs(record)
    chaos_run = ChaosRun(
        figures=figures(expected, found, runs, driver.chaos(), time.monotonic() - began),
        expected=expected,
        found=found,
        runs=runs,
        driver=driver,
        figures_file=folder / "chaos-figures.json",
    )
    _write_figures(chaos_run, deployment, setup)
    return chaos_run


@contextlib.asynccontextmanager
async def _processes(api: ApiServer, executors: Executors, count: int) -> AsyncIterator[None]:
    """The API and `count` executors; at the end every process still alive is stopped
    gracefully (executors first, so that what they ran is all in the record)."""
    try:
        await asyncio.to_thread(api.start)
        for _ in range(count):
            executors.start_chaos_node()
        yield
    finally:
        await asyncio.to_thread(executors.stop_all)
        await asyncio.to_thread(api.stop)


async def _work_through_chaos(
    api: ApiServer, driver: Driver, setup: Setup, plan: Plan
) -> tuple[dict[int, str], dict[str, dict[str, Any]]]:
    async with httpx.AsyncClient(base_url=api.url, timeout=30.0) as http:
        workload = Workload(http, setup.executions, setup.seed)
        stop = asyncio.Event()
        chaos = asyncio.create_task(driver.run(plan, stop))
        try:
            await workload.enqueue_all(setup.enqueue_seconds)
            listed = await workload.wait_until_finished(setup.finish_timeout)
        finally:
            stop.set()
            await chaos
        found = await workload.read_all([e["id"] for e in listed])
    return workload.ids, found


def _kill_detail(kill: Kill, runs: list[Run]) -> dict[str, Any]:
    """A kill, the runs it cut short, and how long until each ran again."""
    return {
        "pid": kill.pid,
        "at": kill.at,
        "cut_short": {run.n: _next_start(run.n, kill.at, runs) for run in cut_short(runs, kill)},
    }


def _next_start(n: int, after: float, runs: list[Run]) -> float | None:
    later = [run.start - after for run in runs if run.n == n and run.start >= after]
    return round(min(later), 3) if later else None


def _write_figures(chaos_run: ChaosRun, deployment: Deployment, setup: Setup) -> None:
    document = {
        "deployment": {"name": deployment.name, "broker": deployment.broker_url},
        "seed": setup.seed,
        "figures": chaos_run.figures.as_json(),
        "timeline": chaos_run.driver.timeline,
        "kills": [_kill_detail(kill, chaos_run.runs) for kill in chaos_run.driver.kills],
    }
    chaos_run.figures_file.write_text(json.dumps(document, indent=2) + "\n")
    print(f"chaos figures ({deployment.name}): {chaos_run.figures_file}")
    print(json.dumps(document["figures"], indent=2))
