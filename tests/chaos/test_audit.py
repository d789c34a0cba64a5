"""The chaos suite's checks catch what they are meant to catch."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chaos.audit import (
    Chaos,
    concurrent_duplicates,
    figures,
    log_problems,
    lost,
    markdown,
    redelivery_delays,
    stuck,
)
from tests.chaos.record import Kill, Run, read_runs

pytestmark = pytest.mark.chaos


def run(n: int, pid: int, start: float, end: float | None) -> Run:
    return Run(n=n, token=f"{n}-{pid}-{start}", pid=pid, start=start, end=end)


def execution(events: list[tuple[str, int]], **fields: Any) -> dict[str, Any]:
    status, attempt = events[-1]
    return {
        "id": "E1",
        "status": status,
        "attempt": attempt,
        "max_attempts": 10,
        "finished_at": "2026-01-01T00:00:00Z",
        "events": [{"status": s, "attempt": a} for s, a in events],
    } | fields


PASSED_AFTER_A_LOST_ATTEMPT = [
    ("Initialized", 1),
    ("ReadyForDispatch", 1),
    ("Dispatched", 1),
    ("Running", 1),
    ("Incomplete", 1),
    ("Running", 2),
    ("Passed", 2),
]


def test_a_run_cut_short_by_a_kill_and_run_again_after_it_is_no_duplicate() -> None:
    runs = [run(1, pid=10, start=1.0, end=None), run(1, pid=11, start=3.5, end=3.6)]
    assert concurrent_duplicates(runs, [Kill(pid=10, at=2.0)]) == []


def test_a_run_started_before_the_kill_of_the_other_is_a_duplicate() -> None:
    runs = [run(1, pid=10, start=1.0, end=None), run(1, pid=11, start=1.5, end=1.6)]
    assert concurrent_duplicates(runs, [Kill(pid=10, at=2.0)]) == [runs[1]]


def test_a_run_that_never_ended_in_a_live_process_overlaps_every_later_run() -> None:
    runs = [run(1, pid=10, start=1.0, end=None), run(1, pid=11, start=9.0, end=9.1)]
    assert concurrent_duplicates(runs, []) == [runs[1]]


def test_overlapping_runs_of_different_executions_are_no_duplicates() -> None:
    runs = [run(1, pid=10, start=1.0, end=2.0), run(2, pid=10, start=1.5, end=2.5)]
    assert concurrent_duplicates(runs, []) == []


def test_redelivery_is_timed_from_the_death_of_the_worker_to_the_next_run() -> None:
    runs = [run(1, pid=10, start=1.0, end=None), run(1, pid=11, start=4.5, end=4.6)]
    assert redelivery_delays(runs, [Kill(pid=10, at=2.0)]) == [2.5]


def test_runs_that_ended_before_the_kill_were_not_cut_short() -> None:
    runs = [run(1, pid=10, start=1.0, end=1.5), run(1, pid=11, start=4.5, end=4.6)]
    assert redelivery_delays(runs, [Kill(pid=10, at=2.0)]) == []


def test_an_event_log_superseding_a_lost_attempt_is_legal() -> None:
    assert log_problems(execution(PASSED_AFTER_A_LOST_ATTEMPT)) == []


def test_a_transition_out_of_a_terminal_status_is_flagged() -> None:
    events = [*PASSED_AFTER_A_LOST_ATTEMPT, ("Running", 2), ("Passed", 2)]
    problems = log_problems(execution(events))
    assert "Passed -> Running" in problems
    assert "Passed 2 times, last event Passed" in problems


def test_attempts_going_backwards_are_flagged() -> None:
    events = [("Initialized", 1), ("ReadyForDispatch", 1), ("Running", 2), ("Passed", 1)]
    assert log_problems(execution(events)) == ["attempts out of order: [1, 1, 2, 1]"]


def test_an_execution_the_api_does_not_list_is_lost() -> None:
    assert lost({0: "E0", 1: "E1"}, {"E0": execution(PASSED_AFTER_A_LOST_ATTEMPT)}) == [1]


def test_an_execution_without_an_end_is_stuck() -> None:
    running = execution(PASSED_AFTER_A_LOST_ATTEMPT[:-1], finished_at=None)
    assert stuck([running]) == ["E1"]


def test_figures_count_redelivered_attempts_and_read_as_a_table() -> None:
    found = {"E1": execution(PASSED_AFTER_A_LOST_ATTEMPT)}
    runs = [run(0, pid=10, start=1.0, end=None), run(0, pid=11, start=3.0, end=3.1)]
    counted = figures({0: "E1"}, found, runs, Chaos(kills=(Kill(10, 2.0),)), seconds=5.0)
    assert (counted.lost, counted.redelivered_executions, counted.extra_attempts) == (0, 1, 1)
    assert (counted.killed_runs, counted.redelivery_max_seconds) == (1, 1.0)
    assert "| extra attempts | 1 |" in markdown({"sqlite": counted})


def test_the_record_file_is_read_back_as_runs_ignoring_a_line_cut_short(tmp_path: Any) -> None:
    record = tmp_path / "runs.txt"
    lines = ["start 3 abc 10 10 1.5", "start 4 def 10 12 1.6", "end 3 abc 10 10 1.7", "end 4 de"]
    record.write_text("\n".join(lines))
    assert read_runs(record) == [
        Run(3, "abc", 10, 1.5, 1.7, worker=10),
        Run(4, "def", 10, 1.6, None, worker=12),
    ]


def test_a_run_in_a_worker_process_is_cut_short_by_the_kill_of_its_executor() -> None:
    in_child = Run(n=1, token="a", pid=10, start=1.0, end=None, worker=99)
    again = run(1, pid=11, start=3.5, end=3.6)
    assert redelivery_delays([in_child, again], [Kill(pid=10, at=2.0)]) == [1.5]
    assert concurrent_duplicates([in_child, again], [Kill(pid=10, at=2.0)]) == []


def test_a_worker_process_that_outlives_its_executor_overlaps_the_run_after_the_kill() -> None:
    orphan = Run(n=1, token="a", pid=10, start=1.0, end=4.0, worker=99)
    again = run(1, pid=11, start=3.5, end=3.6)
    assert concurrent_duplicates([orphan, again], [Kill(pid=10, at=2.0)]) == [again]
