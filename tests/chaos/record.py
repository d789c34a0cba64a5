"""The record file the chaos tasks write, read back as runs: what really ran, where and when."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Run:
    """One run of a task in a worker: `end` is None when it never finished (killed).

    `pid` is the executor process the run belongs to, which kills are matched against;
    `worker` the process it ran in: the executor itself, or on the process pool one of its
    worker processes (None when not recorded)."""

    n: int
    token: str
    pid: int
    start: float
    end: float | None
    worker: int | None = None


@dataclass(frozen=True, slots=True)
class Kill:
    """An executor process killed with SIGKILL, and when it was dead."""

    pid: int
    at: float


def read_runs(path: Path) -> list[Run]:
    """The runs in the record file, in the order they started."""
    starts: dict[str, tuple[int, int, int, float]] = {}
    ends: dict[str, float] = {}
    lines = path.read_text().splitlines() if path.exists() else []
    for kind, n, token, pid, worker, at in _fields(lines):
        if kind == "start":
            starts[token] = (n, pid, worker, at)
        elif kind == "end":
            ends[token] = at
    runs = [
        Run(n, token, pid, at, ends.get(token), worker)
        for token, (n, pid, worker, at) in starts.items()
    ]
    return sorted(runs, key=lambda run: run.start)


def _fields(lines: Iterable[str]) -> Iterable[tuple[str, int, str, int, int, float]]:
    """`kind n token pid worker seconds` of each line (see tests/chaos/tasks.py)."""
    for line in lines:
        parts = line.split()
        if len(parts) == 6:  # a line cut short by a kill is not a record
            kind, n, token, pid, worker, at = parts
            yield kind, int(n), token, int(pid), int(worker), float(at)


def runs_by_n(runs: Iterable[Run]) -> dict[int, list[Run]]:
    grouped: dict[int, list[Run]] = defaultdict(list)
    for run in runs:
        grouped[run.n].append(run)
    return grouped


def ended_at(run: Run, kills: Sequence[Kill]) -> float:
    """When a run stopped: its end, else the kill of its executor (not before it started),
    else never (it may still be running). A worker process of the process pool that outlives
    the kill of its executor writes its end when it is done: that end is when it stopped."""
    if run.end is not None:
        return run.end
    # A kill's time is taken just before the signal, so a run may start a hair after it.
    deaths = [max(kill.at, run.start) for kill in kills if kill.pid == run.pid]
    return min(deaths, default=math.inf)
