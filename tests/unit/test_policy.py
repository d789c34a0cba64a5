"""The policy: attempts, retries on a time limit, poison, and messages too large."""

from __future__ import annotations

from typing import ClassVar

from sublim.core.model import ErrorInfo, Execution, TaskStatus, Update, WorkerInfo
from sublim.core.policy import (
    POISON,
    Failure,
    RetryPolicy,
    attempt_number,
    attempts_allowed,
    lost_attempt,
    next_update_of,
    out_of_attempts,
    too_large,
    verdict_for_failure,
)
from sublim.core.task import Task
from sublim.executor.outcome import TIME_LIMIT_EXCEEDED, Outcome, time_limit_exceeded

S = TaskStatus


class Patient(Task):
    max_attempts: ClassVar[int | None] = 4
    retry_backoff: ClassVar[float] = 2.0
    retry_backoff_max: ClassVar[float] = 8.0
    retry_on_timeout: ClassVar[bool] = True


def running(attempt: int, max_attempts: int, error: ErrorInfo | None = None) -> Execution:
    return Execution(
        task_id="T",
        topic="t",
        status=S.RUNNING,
        attempt=attempt,
        max_attempts=max_attempts,
        last_seq=3,
        error=error,
    )


def test_the_first_delivery_runs_the_requests_attempt_and_each_redelivery_the_next() -> None:
    assert [attempt_number(1, deliveries) for deliveries in (1, 2, 3)] == [1, 2, 3]
    assert attempt_number(2, 1) == 2  # a retry enqueued as attempt 2


def test_a_task_types_own_max_attempts_wins_over_the_enqueued_one() -> None:
    assert attempts_allowed(4, 1) == 4
    assert attempts_allowed(None, 3) == 3


def test_a_delivery_past_the_last_attempt_ends_incomplete_and_one_within_runs() -> None:
    assert out_of_attempts(3, 3) is None
    verdict = out_of_attempts(4, 3)
    assert verdict is not None
    assert (verdict.status, verdict.retry_in) == (S.INCOMPLETE, None)


def test_a_retry_policy_is_read_from_the_task_types_class_variables() -> None:
    assert RetryPolicy.of(Patient, 4) == RetryPolicy(4, 2.0, 8.0, retry_on_timeout=True)


def test_an_attempt_past_its_time_limit_says_so_in_a_field_not_only_in_its_error_type() -> None:
    outcome = time_limit_exceeded(1.0, 1.2)
    assert outcome.timed_out
    assert outcome.error is not None
    assert outcome.error.type == TIME_LIMIT_EXCEEDED
    assert not Outcome.failure(ErrorInfo(type=TIME_LIMIT_EXCEEDED, message="m"), 1.0).timed_out


def test_a_timed_out_attempt_ends_killed_unless_its_task_type_retries_on_timeout() -> None:
    failure = Failure(ErrorInfo(type="TimeLimitExceeded", message="late"), timed_out=True)
    assert verdict_for_failure(failure, attempt=1, policy=RetryPolicy(3)).status == S.KILLED
    again = verdict_for_failure(failure, attempt=1, policy=RetryPolicy.of(Patient, 3))
    assert again.status == S.DISPATCHED
    assert again.retry_in is not None


def test_an_execution_whose_every_attempt_lost_its_worker_is_quarantined_as_poison() -> None:
    change = lost_attempt(running(attempt=2, max_attempts=2), "worker lost")
    assert change.execution.status == S.ERROR
    assert change.execution.error is not None
    assert change.execution.error.type == POISON


def test_a_lost_attempt_with_attempts_left_or_after_a_reported_outcome_is_incomplete() -> None:
    assert lost_attempt(running(1, 2), "lost").execution.status == S.INCOMPLETE
    failed_before = running(2, 2, error=ErrorInfo(type="E", message="m"))
    assert lost_attempt(failed_before, "lost").execution.status == S.INCOMPLETE


def test_a_request_too_large_becomes_the_next_update_of_its_attempt_ending_it_error() -> None:
    execution = running(attempt=2, max_attempts=3)
    refusal = too_large(next_update_of(execution, S.ERROR), of="request", size=9, limit=5)
    assert (refusal.attempt, refusal.seq, refusal.status) == (2, 4, S.ERROR)
    assert refusal.complete
    assert refusal.error is not None
    assert refusal.error.type == "MessageTooLarge"
    assert (
        refusal.error.message == "its request is 9 bytes, more than the broker's limit of 5 bytes"
    )
    assert refusal.reason == f"not published: {refusal.error.message}"


def test_an_update_too_large_is_replaced_by_an_error_of_the_same_attempt_without_its_result() -> (
    None
):
    worker = WorkerInfo(node="n", host="h", pid=1)
    big = Update(
        execution_id="E", task_id="T", attempt=1, seq=2, status=S.PASSED, result="x" * 9,
        worker=worker, complete=True,
    )  # fmt: skip
    stand_in = too_large(big, of="update", size=9, limit=5)
    assert (stand_in.seq, stand_in.worker, stand_in.status, stand_in.result) == (
        2,
        worker,
        S.ERROR,
        None,
    )
    assert stand_in.error is not None
    assert stand_in.error.type == "MessageTooLarge"
    assert "the attempt's outcome was not recorded: its update is 9 bytes" in stand_in.error.message
    assert stand_in.reason is not None
    assert stand_in.reason.startswith("not reported: ")
