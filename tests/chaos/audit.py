"""What a chaos run must leave behind, checked from the API's executions and the record of
what really ran; and the figures of the run."""

from __future__ import annotations

import itertools
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sublim.core.model import TaskStatus, is_legal
from tests.chaos.record import Kill, Run, ended_at, runs_by_n

S = TaskStatus
#: An execution as `GET /v1/executions/{id}` returns it (with its event log).
ExecutionJson = Mapping[str, Any]


@dataclass(frozen=True)
class Chaos:
    """What the chaos driver did."""

    kills: tuple[Kill, ...] = ()
    api_restarts: int = 0
    engine_restarts: int = 0


@dataclass(frozen=True)
class Figures:
    executions: int
    kills: int
    api_restarts: int
    engine_restarts: int
    lost: int
    #: Executions the API lists that no enqueue answered with (an enqueue done twice).
    unexpected: int
    stuck: int
    not_passed: dict[str, int]
    duplicated_concurrent_attempts: int
    illegal_event_logs: int
    never_ran: int
    redelivered_executions: int
    extra_attempts: int
    runs: int
    killed_runs: int
    redelivery_median_seconds: float | None
    redelivery_max_seconds: float | None
    seconds: float

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


# -- lost and stuck -----------------------------------------------------------------------


def lost(expected: Mapping[int, str], found: Mapping[str, ExecutionJson]) -> list[int]:
    """The `n` of every enqueued execution the API does not list."""
    return sorted(n for n, execution_id in expected.items() if execution_id not in found)


def stuck(executions: Sequence[ExecutionJson]) -> list[str]:
    """Executions that never finished (still queued, running, or between attempts)."""
    return [e["id"] for e in executions if e["finished_at"] is None]


def not_passed(executions: Sequence[ExecutionJson]) -> Counter[str]:
    return Counter(e["status"] for e in executions if e["status"] != S.PASSED)


# -- event logs ---------------------------------------------------------------------------


def log_problems(execution: ExecutionJson) -> list[str]:
    """What is wrong with an execution's event log: a transition the table does not allow,
    attempts out of order, an ending that is not its last word."""
    events = execution["events"]
    statuses = [S(event["status"]) for event in events]
    attempts = [int(event["attempt"]) for event in events]
    problems = [
        f"{before} -> {after}"
        for before, after in itertools.pairwise(statuses)
        if not is_legal(before, after)
    ]
    if statuses[:2] not in ([S.INITIALIZED, S.READY_FOR_DISPATCH], [S.INITIALIZED, S.BLOCKED]):
        problems.append(f"begins {statuses[:2]}")
    problems += _attempt_problems(execution, attempts)
    problems += _ending_problems(execution, statuses)
    return problems


def _attempt_problems(execution: ExecutionJson, attempts: list[int]) -> list[str]:
    problems = []
    if attempts != sorted(attempts) or attempts[0] != 1:
        problems.append(f"attempts out of order: {attempts}")
    if attempts[-1] != execution["attempt"]:
        problems.append(f"last event of attempt {attempts[-1]}, not {execution['attempt']}")
    if execution["attempt"] > execution["max_attempts"]:
        problems.append(f"attempt {execution['attempt']} of {execution['max_attempts']}")
    return problems


def _ending_problems(execution: ExecutionJson, statuses: list[TaskStatus]) -> list[str]:
    passes = statuses.count(S.PASSED)
    if execution["status"] == S.PASSED and (passes != 1 or statuses[-1] != S.PASSED):
        return [f"Passed {passes} times, last event {statuses[-1]}"]
    if statuses[-1] != execution["status"]:
        return [f"last event {statuses[-1]}, status {execution['status']}"]
    return []


# -- what really ran ----------------------------------------------------------------------


def concurrent_duplicates(runs: Sequence[Run], kills: Sequence[Kill]) -> list[Run]:
    """Runs that started while another run of the same execution had not stopped yet."""
    duplicates = []
    for same in runs_by_n(runs).values():
        busy_until = float("-inf")
        for run in sorted(same, key=lambda r: r.start):
            if run.start < busy_until:
                duplicates.append(run)
            busy_until = max(busy_until, ended_at(run, kills))
    return duplicates


def redelivery_delays(runs: Sequence[Run], kills: Sequence[Kill]) -> list[float]:
    """For each run a kill cut short: seconds from its worker's death to the next run of
    the same execution."""
    grouped = runs_by_n(runs)
    delays = []
    for kill in kills:
        for cut in cut_short(runs, kill):
            later = [r.start for r in grouped[cut.n] if r.start >= kill.at]
            if later:
                delays.append(min(later) - kill.at)
    return delays


def cut_short(runs: Sequence[Run], kill: Kill) -> list[Run]:
    """The runs of the killed executor (in itself or in its worker processes) that had started
    and never ended."""
    return [r for r in runs if r.pid == kill.pid and r.end is None and r.start <= kill.at]


def killed_runs(runs: Sequence[Run], kills: Sequence[Kill]) -> int:
    return sum(len(cut_short(runs, kill)) for kill in kills)


# -- figures ------------------------------------------------------------------------------


def figures(
    expected: Mapping[int, str],
    found: Mapping[str, ExecutionJson],
    runs: Sequence[Run],
    chaos: Chaos,
    seconds: float,
) -> Figures:
    executions = list(found.values())
    delays = redelivery_delays(runs, chaos.kills)
    ran = {run.n for run in runs}
    return Figures(
        executions=len(expected),
        kills=len(chaos.kills),
        api_restarts=chaos.api_restarts,
        engine_restarts=chaos.engine_restarts,
        lost=len(lost(expected, found)),
        unexpected=len(set(found) - set(expected.values())),
        stuck=len(stuck(executions)),
        not_passed=dict(not_passed(executions)),
        duplicated_concurrent_attempts=len(concurrent_duplicates(runs, chaos.kills)),
        illegal_event_logs=sum(bool(log_problems(e)) for e in executions),
        never_ran=sum(n not in ran for n in expected),
        redelivered_executions=sum(e["attempt"] > 1 for e in executions),
        extra_attempts=sum(e["attempt"] - 1 for e in executions),
        runs=len(runs),
        killed_runs=killed_runs(runs, chaos.kills),
        redelivery_median_seconds=round(statistics.median(delays), 3) if delays else None,
        redelivery_max_seconds=round(max(delays), 3) if delays else None,
        seconds=round(seconds, 1),
    )


def markdown(rows: Mapping[str, Figures]) -> str:
    """The figures of one or more runs as a markdown table, one column per run."""
    names = list(rows)
    fields = list(next(iter(rows.values())).as_json()) if rows else []
    lines = ["| figure | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for field in fields:
        values = [_cell(rows[name].as_json()[field]) for name in names]
        lines.append(f"| {field.replace('_', ' ')} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "none"
    return "-" if value is None else str(value)
