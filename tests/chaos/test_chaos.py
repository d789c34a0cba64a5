"""2,000 executions through a real API and executors while executors are killed with
SIGKILL, the API is killed and started again, and (on Redis) the engine too. Afterwards every
execution is checked through the API and against the record of what really ran."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.chaos.audit import (
    concurrent_duplicates,
    log_problems,
    lost,
    redelivery_delays,
    stuck,
)
from tests.chaos.deployments import DEPLOYMENTS
from tests.chaos.scenario import ChaosRun, run_chaos

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300)]


@pytest.fixture(scope="module", params=sorted(DEPLOYMENTS))
def chaos_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChaosRun]:
    folder = tmp_path_factory.mktemp(f"chaos-{request.param}")
    with DEPLOYMENTS[request.param](folder) as deployment:
        yield asyncio.run(run_chaos(deployment, folder))


def test_the_chaos_happened(chaos_run: ChaosRun) -> None:
    figures = chaos_run.figures
    assert figures.kills >= 3
    assert figures.api_restarts >= 1
    assert figures.engine_restarts == (1 if chaos_run.driver.engine is not None else 0)
    assert figures.killed_runs > 0, "no kill caught a running attempt"
    assert figures.redelivered_executions > 0


def test_no_execution_is_lost(chaos_run: ChaosRun) -> None:
    assert len(chaos_run.expected) == chaos_run.figures.executions
    assert lost(chaos_run.expected, chaos_run.found) == []
    assert set(chaos_run.found) == set(chaos_run.expected.values())


def test_no_execution_is_left_unfinished(chaos_run: ChaosRun) -> None:
    assert stuck(list(chaos_run.found.values())) == []


def test_every_execution_passed(chaos_run: ChaosRun) -> None:
    assert chaos_run.figures.not_passed == {}


def test_every_execution_really_ran(chaos_run: ChaosRun) -> None:
    assert {run.n for run in chaos_run.runs} == set(chaos_run.expected)


def test_no_attempt_ran_twice_at_once(chaos_run: ChaosRun) -> None:
    assert concurrent_duplicates(chaos_run.runs, chaos_run.driver.kills) == []


def test_every_event_log_follows_the_transition_table(chaos_run: ChaosRun) -> None:
    problems = {i: p for i, e in chaos_run.found.items() if (p := log_problems(e))}
    assert problems == {}


def test_every_attempt_a_kill_cut_short_ran_again(chaos_run: ChaosRun) -> None:
    delays = redelivery_delays(chaos_run.runs, chaos_run.driver.kills)
    assert len(delays) == chaos_run.figures.killed_runs
