"""The state machine: transitions, and updates that are idempotent and monotonic."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sublim.core.model import (
    ACTIVE,
    TERMINAL,
    TRANSITIONS,
    ErrorInfo,
    Execution,
    TaskStatus,
    Update,
    apply_update,
    transition,
    utcnow,
)
from sublim.core.policy import lost_attempt

S = TaskStatus
T0 = utcnow()


def dispatched(max_attempts: int = 3) -> Execution:
    return Execution(task_id="T", topic="t", status=S.DISPATCHED, max_attempts=max_attempts)


def update(status: TaskStatus, seq: int, attempt: int = 1, **kw: object) -> Update:
    at = T0 + timedelta(seconds=attempt * 100 + seq)
    return Update(
        execution_id="E", task_id="T", attempt=attempt, seq=seq, status=status, at=at, **kw
    )


def apply_all(execution: Execution, updates: list[Update]) -> Execution:
    for u in updates:
        execution = apply_update(execution, u).execution
    return execution


def test_there_are_exactly_the_eleven_statuses_of_the_original() -> None:
    assert {s.value for s in S} == {
        "Initialized",
        "Error",
        "Cancelled",
        "ReadyForDispatch",
        "Dispatched",
        "Running",
        "Passed",
        "Failed",
        "Killed",
        "Incomplete",
        "Blocked",
    }


def test_every_status_has_a_row_in_the_transition_table() -> None:
    assert set(TRANSITIONS) == set(S)


def test_terminal_statuses_allow_no_transition() -> None:
    for status in TERMINAL:
        assert TRANSITIONS[status] == frozenset()


def test_terminal_and_active_sets_do_not_overlap() -> None:
    assert not TERMINAL & ACTIVE


def test_a_running_then_passed_sequence_ends_passed_with_both_events() -> None:
    final = apply_all(
        dispatched(), [update(S.RUNNING, 1), update(S.PASSED, 2, result={"x": 1}, complete=True)]
    )
    assert final.status == S.PASSED
    assert final.result == {"x": 1}
    assert [e.status for e in final.events] == [S.RUNNING, S.PASSED]
    assert final.finished


def test_a_duplicate_update_is_ignored() -> None:
    once = apply_update(dispatched(), update(S.RUNNING, 1)).execution
    change = apply_update(once, update(S.RUNNING, 1))
    assert change.outcome == "ignored"
    assert change.execution == once


def test_an_older_update_arriving_late_does_not_move_the_status_back() -> None:
    passed = apply_update(dispatched(), update(S.PASSED, 2, complete=True)).execution
    change = apply_update(passed, update(S.RUNNING, 1))
    assert change.outcome == "ignored"
    assert change.execution.status == S.PASSED


def test_a_heartbeat_refreshes_heartbeat_at_without_a_new_event() -> None:
    running = apply_update(dispatched(), update(S.RUNNING, 1)).execution
    beat = apply_update(running, update(S.RUNNING, 2))
    assert beat.changed
    assert beat.new_events == ()
    assert beat.execution.heartbeat_at is not None
    assert beat.execution.heartbeat_at > running.heartbeat_at  # type: ignore[operator]


def test_an_illegal_transition_is_refused_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    initialized = Execution(task_id="T", topic="t")
    change = apply_update(initialized, update(S.RUNNING, 1))
    assert change.outcome == "refused"
    assert change.execution == initialized
    assert "illegal transition Initialized -> Running" in caplog.text


def test_a_system_transition_out_of_a_terminal_status_is_refused() -> None:
    passed = apply_update(dispatched(), update(S.PASSED, 1)).execution
    assert transition(passed, S.CANCELLED).outcome == "refused"


def test_a_newer_attempt_supersedes_a_running_one_and_records_it_incomplete() -> None:
    running = apply_update(dispatched(), update(S.RUNNING, 5)).execution
    change = apply_update(running, update(S.RUNNING, 1, attempt=2))
    assert change.execution.attempt == 2
    assert change.execution.status == S.RUNNING
    assert [(e.status, e.attempt) for e in change.new_events] == [(S.INCOMPLETE, 1), (S.RUNNING, 2)]


def test_updates_of_a_superseded_attempt_are_ignored() -> None:
    second = apply_all(dispatched(), [update(S.RUNNING, 1), update(S.RUNNING, 1, attempt=2)])
    change = apply_update(second, update(S.PASSED, 9, attempt=1))
    assert change.outcome == "ignored"
    assert change.execution.status == S.RUNNING


def test_an_attempt_beyond_max_attempts_ends_the_execution_incomplete() -> None:
    running = apply_update(dispatched(max_attempts=1), update(S.RUNNING, 1)).execution
    change = apply_update(running, update(S.INCOMPLETE, 1, attempt=2))
    assert change.execution.status == S.INCOMPLETE
    assert change.execution.finished
    assert change.execution.attempt == 1


def test_incomplete_with_attempts_left_is_not_final() -> None:
    running = apply_update(dispatched(max_attempts=2), update(S.RUNNING, 1)).execution
    lost = transition(running, S.INCOMPLETE, reason="worker lost").execution
    assert not lost.finished
    again = apply_update(lost, update(S.RUNNING, 1, attempt=2))
    assert again.execution.status == S.RUNNING


def test_a_retry_report_puts_the_execution_back_to_dispatched() -> None:
    retried = apply_all(
        dispatched(), [update(S.RUNNING, 1), update(S.DISPATCHED, 2, complete=True)]
    )
    assert retried.status == S.DISPATCHED
    assert not retried.finished


def test_cancel_is_final_and_later_worker_updates_change_nothing() -> None:
    cancelled = transition(dispatched(), S.CANCELLED, reason="by user").execution
    assert cancelled.finished
    assert apply_update(cancelled, update(S.PASSED, 1)).outcome == "ignored"


# -- property-based: shuffled, duplicated and dropped update sequences --------------------------

OUTCOMES = [S.PASSED, S.FAILED, S.ERROR, S.KILLED]


@st.composite
def attempt_histories(draw: st.DrawFn) -> list[Update]:
    """What workers send: per attempt, Running, heartbeats, then retry (or a final outcome)."""
    attempts = draw(st.integers(min_value=1, max_value=3))
    updates: list[Update] = []
    for number in range(1, attempts + 1):
        beats = draw(st.integers(min_value=0, max_value=3))
        seqs = range(1, beats + 2)
        updates += [update(S.RUNNING, seq, attempt=number) for seq in seqs]
        last = S.DISPATCHED if number < attempts else draw(st.sampled_from(OUTCOMES))
        updates.append(update(last, beats + 2, attempt=number, complete=True))
    return updates


@settings(max_examples=300, deadline=None)
@given(history=attempt_histories(), data=st.data())
def test_any_delivery_order_with_duplicates_ends_as_the_in_order_history(
    history: list[Update], data: st.DataObject
) -> None:
    delivered = data.draw(st.permutations(history + data.draw(st.lists(st.sampled_from(history)))))
    in_order = apply_all(dispatched(max_attempts=3), history)
    shuffled = apply_all(dispatched(max_attempts=3), delivered)
    assert shuffled.status == in_order.status == history[-1].status
    assert shuffled.attempt == history[-1].attempt
    assert shuffled.finished


@settings(max_examples=300, deadline=None)
@given(history=attempt_histories(), data=st.data())
def test_dropping_updates_never_moves_an_execution_backwards(
    history: list[Update], data: st.DataObject
) -> None:
    kept = [u for u in history if data.draw(st.booleans())]
    delivered = data.draw(st.permutations(kept))
    execution = dispatched(max_attempts=3)
    for u in delivered:
        before = (execution.attempt, execution.last_seq)
        change = apply_update(execution, u)
        execution = change.execution
        assert (execution.attempt, execution.last_seq) >= before
        if change.changed:
            assert (execution.attempt, execution.last_seq) == (u.attempt, u.seq)
    if history[-1] in kept:
        assert execution.status == history[-1].status


@settings(max_examples=200, deadline=None)
@given(history=attempt_histories(), data=st.data())
def test_the_event_log_follows_the_transition_table(
    history: list[Update], data: st.DataObject
) -> None:
    delivered = data.draw(st.permutations(history))
    final = apply_all(dispatched(max_attempts=3), delivered)
    previous = S.DISPATCHED
    for event in final.events:
        assert event.status in TRANSITIONS[previous] or (
            event.status == S.INCOMPLETE and previous == S.RUNNING
        )
        previous = event.status
    assert [e.attempt for e in final.events] == sorted(e.attempt for e in final.events)


def test_an_update_carrying_the_task_types_max_attempts_overrides_the_enqueued_one() -> None:
    running = apply_update(
        dispatched(max_attempts=3), update(S.RUNNING, 1, max_attempts=1)
    ).execution
    assert running.max_attempts == 1
    lost = transition(running, S.INCOMPLETE, reason="worker lost").execution
    assert lost.finished


def test_a_task_whose_every_attempt_loses_its_worker_is_quarantined_as_error() -> None:
    history = [update(S.RUNNING, 1, attempt=n) for n in (1, 2, 3)]
    execution = apply_all(dispatched(max_attempts=3), history)
    final = apply_update(execution, update(S.INCOMPLETE, 1, attempt=4)).execution
    assert final.status == S.ERROR
    assert final.error is not None
    assert final.error.type == "PoisonTask"
    assert [e.status for e in final.events].count(S.INCOMPLETE) == 2


def test_a_lost_last_attempt_after_a_real_failure_ends_incomplete_not_poison() -> None:
    failed_once = apply_all(
        dispatched(max_attempts=2),
        [update(S.RUNNING, 1), update(S.DISPATCHED, 2, error=ErrorInfo(type="E", message="m"))],
    )
    running = apply_update(failed_once, update(S.RUNNING, 1, attempt=2)).execution
    assert lost_attempt(running, "worker lost").execution.status == S.INCOMPLETE
