"""The domain: tasks, executions, their statuses, the transition table and updates.

Everything here is pure: no I/O. The store persists these objects; the rules that decide how
an execution changes (`apply_update`, `transition`) live here, once, for every backend.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sublim.core.ids import new_ulid

log = logging.getLogger("sublim.model")

JSON = Any


def utcnow() -> datetime:
    return datetime.now(UTC)


class TaskStatus(enum.StrEnum):
    """The eleven statuses of an execution, named as the original named them."""

    INITIALIZED = "Initialized"
    ERROR = "Error"
    CANCELLED = "Cancelled"
    READY_FOR_DISPATCH = "ReadyForDispatch"
    DISPATCHED = "Dispatched"
    RUNNING = "Running"
    PASSED = "Passed"
    FAILED = "Failed"
    KILLED = "Killed"
    INCOMPLETE = "Incomplete"
    BLOCKED = "Blocked"


S = TaskStatus

#: Statuses that end an execution for good.
TERMINAL: frozenset[TaskStatus] = frozenset({S.PASSED, S.FAILED, S.ERROR, S.CANCELLED, S.KILLED})
#: Statuses of an execution that is queued or running.
ACTIVE: frozenset[TaskStatus] = frozenset({S.READY_FOR_DISPATCH, S.DISPATCHED, S.RUNNING})
#: Statuses of an execution that waits before it can be queued.
WAITING: frozenset[TaskStatus] = frozenset({S.INITIALIZED, S.BLOCKED})

_OUTCOMES = frozenset({S.PASSED, S.FAILED, S.ERROR, S.KILLED, S.INCOMPLETE, S.CANCELLED})

#: The transition table: for each status, the statuses it may change to. A status may also
#: "change" to itself where listed (a heartbeat is Running -> Running).
TRANSITIONS: Mapping[TaskStatus, frozenset[TaskStatus]] = {
    S.INITIALIZED: frozenset({S.READY_FOR_DISPATCH, S.BLOCKED, S.CANCELLED, S.ERROR}),
    S.BLOCKED: frozenset({S.READY_FOR_DISPATCH, S.CANCELLED, S.ERROR}),
    # A worker's update may overtake the record that the message was published.
    S.READY_FOR_DISPATCH: frozenset({S.DISPATCHED, S.RUNNING} | _OUTCOMES),
    S.DISPATCHED: frozenset({S.DISPATCHED, S.RUNNING} | _OUTCOMES),
    S.RUNNING: frozenset({S.RUNNING, S.DISPATCHED} | _OUTCOMES),
    # Incomplete is terminal only once no attempts remain (see `Execution.finished`).
    S.INCOMPLETE: frozenset({S.DISPATCHED, S.RUNNING} | _OUTCOMES),
    S.PASSED: frozenset(),
    S.FAILED: frozenset(),
    S.ERROR: frozenset(),
    S.CANCELLED: frozenset(),
    S.KILLED: frozenset(),
}


def is_legal(current: TaskStatus, new: TaskStatus) -> bool:
    return new in TRANSITIONS[current]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorInfo(Model):
    type: str
    message: str
    traceback: str | None = None


class WorkerInfo(Model):
    node: str
    host: str
    pid: int


class Event(Model):
    """One status transition of an execution. The event log is append-only."""

    status: TaskStatus
    at: datetime
    attempt: int
    reason: str | None = None


class TaskResult(Model):
    """What a task's ``execute`` returns: a status and optional JSON data."""

    status: TaskStatus = S.PASSED
    data: JSON = None


class ExecutionSummary(Model):
    id: str
    status: TaskStatus
    attempt: int
    created_at: datetime
    finished_at: datetime | None = None


class TaskRecord(Model):
    """A stored task request (the user's task type lives in `sublim.Task`)."""

    id: str = Field(default_factory=new_ulid)
    name: str
    topic: str
    payload: dict[str, JSON] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    latest_execution: ExecutionSummary | None = None


class Execution(Model):
    """One run of a task, with every attempt and transition it went through."""

    id: str = Field(default_factory=new_ulid)
    task_id: str
    topic: str
    status: TaskStatus = S.INITIALIZED
    attempt: int = 1
    max_attempts: int = 1
    #: Sequence number of the last applied update of `attempt` (0: none yet).
    last_seq: int = 0
    payload: dict[str, JSON] = Field(default_factory=dict)
    result: JSON = None
    error: ErrorInfo | None = None
    worker: WorkerInfo | None = None
    created_at: datetime = Field(default_factory=utcnow)
    dispatched_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    heartbeat_at: datetime | None = None
    #: Executions that must pass before this one is dispatched (it waits Blocked till then).
    depends_on: tuple[str, ...] = ()
    events: tuple[Event, ...] = ()

    @property
    def finished(self) -> bool:
        """True once nothing can change this execution any more."""
        return self.finished_at is not None

    def summary(self) -> ExecutionSummary:
        return ExecutionSummary(
            id=self.id,
            status=self.status,
            attempt=self.attempt,
            created_at=self.created_at,
            finished_at=self.finished_at,
        )


class Update(Model):
    """A status update sent by an executor for one attempt of one execution."""

    execution_id: str
    task_id: str
    attempt: int = Field(ge=1)
    #: Per-attempt sequence number, from 1; a higher number is a newer update.
    seq: int = Field(ge=1)
    status: TaskStatus
    result: JSON = None
    error: ErrorInfo | None = None
    duration_seconds: float | None = None
    worker: WorkerInfo | None = None
    at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    #: True when this is the attempt's last word (a result, an error, a retry).
    complete: bool = False
    reason: str | None = None
    #: The task type's own max_attempts, when it sets one (it overrides the enqueue default).
    max_attempts: int | None = Field(default=None, ge=1)
    #: Set on the first Running update of an attempt whose node waits to be granted it before
    #: it runs (brokers that cannot dedupe a request published twice): a token the answer names.
    claim: str | None = None


def holds_claim(execution: Execution | None, update: Update) -> bool:
    """Whether the execution on record is running the attempt that `update` claimed: the same
    attempt, started by the same worker at the same instant. Of two copies of one request, the
    first claim recorded wins; a claim recorded again (a redelivered update) gets the same
    answer, even once a sweeper presumed the silent claimant lost (Incomplete, attempts left);
    a claim on a finished, cancelled or superseded attempt is refused."""
    return (
        execution is not None
        and not execution.finished
        and execution.status in (S.RUNNING, S.INCOMPLETE)
        and (execution.attempt, execution.worker) == (update.attempt, update.worker)
        and execution.started_at == update.started_at
    )


class ExecutionRequest(Model):
    """The message that asks an executor to run one execution."""

    execution_id: str
    task_id: str
    topic: str
    #: The attempt of the first delivery; each redelivery is the next attempt.
    attempt: int = 1
    max_attempts: int = 1
    payload: dict[str, JSON] = Field(default_factory=dict)


class Change(Model):
    """The outcome of applying an update or a transition to an execution."""

    outcome: Literal["applied", "ignored", "refused"]
    execution: Execution
    new_events: tuple[Event, ...] = ()
    reason: str | None = None

    @property
    def changed(self) -> bool:
        return self.outcome == "applied"


def _event(status: TaskStatus, at: datetime, attempt: int, reason: str | None) -> Event:
    return Event(status=status, at=at, attempt=attempt, reason=reason)


def _ignored(execution: Execution, reason: str) -> Change:
    return Change(outcome="ignored", execution=execution, reason=reason)


def _refused(execution: Execution, new: TaskStatus, why: str = "") -> Change:
    reason = f"illegal transition {execution.status} -> {new}{why}"
    log.warning("execution %s: %s; refused", execution.id, reason)
    return Change(outcome="refused", execution=execution, reason=reason)


def _finish_fields(
    status: TaskStatus, at: datetime, attempt: int, max_attempts: int
) -> dict[str, Any]:
    final = status in TERMINAL or (status == S.INCOMPLETE and attempt >= max_attempts)
    return {"finished_at": at} if final else {}


def transition(
    execution: Execution,
    status: TaskStatus,
    *,
    reason: str | None = None,
    at: datetime | None = None,
    **fields: Any,
) -> Change:
    """A change decided by the system (dispatch, cancel, sweep): legal, or refused."""
    if execution.finished or not is_legal(execution.status, status):
        return _refused(execution, status, " (finished)" if execution.finished else "")
    at = at or utcnow()
    fields |= _finish_fields(status, at, execution.attempt, execution.max_attempts)
    if status == S.DISPATCHED and execution.dispatched_at is None:
        fields["dispatched_at"] = at
    event = _event(status, at, execution.attempt, reason)
    updated = execution.model_copy(
        update={"status": status, "events": (*execution.events, event), **fields}
    )
    return Change(outcome="applied", execution=updated, new_events=(event,))


def _lost(execution: Execution, reason: str, *, at: datetime | None = None) -> Change:
    """`sublim.core.policy.lost_attempt` (Incomplete, or Error for a poison task). The policy
    builds on this module's types, so it is imported when first asked, not at the top."""
    from sublim.core.policy import lost_attempt

    return lost_attempt(execution, reason, at=at)


def apply_update(execution: Execution, update: Update) -> Change:
    """Apply one executor update, only if it is newer than what the record holds and legal.

    Duplicated, reordered and stale updates are ignored; an update of a newer attempt
    supersedes the attempt on record (a redelivery), which is then recorded Incomplete.
    """
    if execution.finished:
        return _ignored(execution, "execution already finished")
    if (update.attempt, update.seq) <= (execution.attempt, execution.last_seq):
        return _ignored(execution, "stale or duplicate update")
    if update.max_attempts is not None and update.max_attempts != execution.max_attempts:
        execution = execution.model_copy(update={"max_attempts": update.max_attempts})
    if update.attempt > execution.attempt:
        return _apply_new_attempt(execution, update)
    return _apply_same_attempt(execution, update)


def _apply_new_attempt(execution: Execution, update: Update) -> Change:
    events: list[Event] = []
    base = execution
    if execution.status == S.RUNNING:
        lost = _lost(
            execution,
            f"attempt {execution.attempt} lost: redelivered as attempt {update.attempt}",
            at=update.at,
        )
        base, events = lost.execution, list(lost.new_events)
    if update.attempt > execution.max_attempts:
        return _out_of_attempts(base, update, events)
    base = base.model_copy(update={"attempt": update.attempt, "last_seq": 0})
    change = _apply_same_attempt(base, update)
    if not change.changed:
        return change
    return change.model_copy(update={"new_events": (*events, *change.new_events)})


def _out_of_attempts(execution: Execution, update: Update, events: list[Event]) -> Change:
    if execution.finished:
        return Change(outcome="applied", execution=execution, new_events=tuple(events))
    reason = f"attempt {update.attempt} exceeds max_attempts={execution.max_attempts}"
    last = execution.model_copy(update={"attempt": execution.max_attempts})
    final = _lost(last, reason, at=update.at)
    return final.model_copy(update={"new_events": (*events, *final.new_events)})


def _apply_same_attempt(execution: Execution, update: Update) -> Change:
    status = update.status
    if not is_legal(execution.status, status):
        return _refused(execution, status)
    fields = _update_fields(execution, update)
    if status == execution.status:  # a heartbeat or a repeated report: no new event
        return Change(outcome="applied", execution=execution.model_copy(update=fields))
    return transition(execution, status, reason=update.reason, at=update.at, **fields)


def _update_fields(execution: Execution, update: Update) -> dict[str, Any]:
    fields: dict[str, Any] = {"last_seq": update.seq, "attempt": update.attempt}
    if update.worker is not None:
        fields["worker"] = update.worker
    if update.status == S.RUNNING:
        fields["heartbeat_at"] = update.at
        if execution.status != S.RUNNING:
            fields["started_at"] = update.started_at or update.at
    if update.complete or update.status != S.RUNNING:
        fields["result"] = update.result
        fields["error"] = update.error
        fields["duration_seconds"] = update.duration_seconds
    return fields
