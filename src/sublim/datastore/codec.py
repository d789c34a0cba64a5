"""Conversions between sublim's models and the datastore's protobuf messages.

Times travel as int64 microseconds since the epoch (UTC); free-form JSON as JSON bytes
(`pydantic_core`, fast); statuses as the proto enum whose names are `TaskStatus` member
names. Decoding validates through the pydantic models, so a malformed message raises
`InvalidInput` (or pydantic's `ValidationError`), which the server answers INVALID_ARGUMENT.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, assert_never

from pydantic_core import from_json, to_json

from sublim.core.model import (
    Change,
    ErrorInfo,
    Event,
    Execution,
    ExecutionSummary,
    Model,
    TaskRecord,
    TaskStatus,
    Update,
    WorkerInfo,
)
from sublim.core.modifiers import (
    ApplyUpdates,
    Cancel,
    CancelBlocked,
    ClaimUnpublished,
    MarkDispatched,
    MarkLostIfSilent,
    Modifier,
    Unblock,
)
from sublim.datastore import datastore_pb2 as pb
from sublim.errors import InvalidInput
from sublim.store.base import (
    EXECUTION_FILTERS,
    TASK_FILTERS,
    ExecutionQuery,
    ListFilter,
    Page,
    StoreStats,
    TaskPatch,
    TaskQuery,
)

Outcome = Literal["applied", "ignored", "refused"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)

# Scalars ------------------------------------------------------------------------------------


def micros(at: datetime) -> int:
    """Microseconds since the epoch; a naive time is taken as UTC."""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return (aware - EPOCH) // MICROSECOND


def from_micros(value: int) -> datetime:
    """The time `value` microseconds after the epoch; `InvalidInput` past year 1 or 9999 (an
    int64 reaches far beyond what `datetime` holds)."""
    try:
        return EPOCH + timedelta(microseconds=value)
    except OverflowError as exc:
        raise InvalidInput(f"time out of range in a datastore message: {value} µs") from exc


def optional_micros(at: datetime | None) -> int | None:
    return None if at is None else micros(at)


def optional_time(message: Any, name: str) -> datetime | None:
    return from_micros(getattr(message, name)) if message.HasField(name) else None


def optional_value(message: Any, name: str) -> Any:
    return getattr(message, name) if message.HasField(name) else None


def json_bytes(value: object) -> bytes:
    return to_json(value)


def json_value(data: bytes) -> Any:
    try:
        return from_json(data) if data else None
    except ValueError as exc:
        raise InvalidInput(f"invalid JSON in a datastore message: {exc}") from exc


_STATUS_TO_PB: dict[TaskStatus, pb.TaskStatus] = {s: getattr(pb, s.name) for s in TaskStatus}
_STATUS_FROM_PB: dict[int, TaskStatus] = {value: s for s, value in _STATUS_TO_PB.items()}
_OUTCOME_TO_PB: dict[Outcome, pb.Outcome] = {
    "applied": pb.APPLIED,
    "ignored": pb.IGNORED,
    "refused": pb.REFUSED,
}
_OUTCOME_FROM_PB: dict[int, Outcome] = {value: o for o, value in _OUTCOME_TO_PB.items()}


def status_to_pb(status: TaskStatus) -> pb.TaskStatus:
    return _STATUS_TO_PB[status]


def status_from_pb(value: int) -> TaskStatus:
    try:
        return _STATUS_FROM_PB[value]
    except KeyError:
        raise InvalidInput(f"unknown task status {value} in a datastore message") from None


def outcome_from_pb(value: int) -> Outcome:
    try:
        return _OUTCOME_FROM_PB[value]
    except KeyError:
        raise InvalidInput(f"unknown change outcome {value} in a datastore message") from None


# Small records ------------------------------------------------------------------------------


def error_to_pb(error: ErrorInfo | None) -> pb.ErrorInfo | None:
    if error is None:
        return None
    return pb.ErrorInfo(type=error.type, message=error.message, traceback=error.traceback)


def error_from_pb(message: Any, name: str = "error") -> ErrorInfo | None:
    if not message.HasField(name):
        return None
    error = getattr(message, name)
    return ErrorInfo(
        type=error.type, message=error.message, traceback=optional_value(error, "traceback")
    )


def worker_to_pb(worker: WorkerInfo | None) -> pb.WorkerInfo | None:
    if worker is None:
        return None
    return pb.WorkerInfo(node=worker.node, host=worker.host, pid=worker.pid)


def worker_from_pb(message: Any, name: str = "worker") -> WorkerInfo | None:
    if not message.HasField(name):
        return None
    worker = getattr(message, name)
    return WorkerInfo(node=worker.node, host=worker.host, pid=worker.pid)


def event_to_pb(event: Event) -> pb.Event:
    return pb.Event(
        status=status_to_pb(event.status),
        at_us=micros(event.at),
        attempt=event.attempt,
        reason=event.reason,
    )


def event_from_pb(message: pb.Event) -> Event:
    return Event(
        status=status_from_pb(message.status),
        at=from_micros(message.at_us),
        attempt=message.attempt,
        reason=optional_value(message, "reason"),
    )


def events_from_pb(messages: Iterable[pb.Event]) -> tuple[Event, ...]:
    return tuple(event_from_pb(message) for message in messages)


# Tasks --------------------------------------------------------------------------------------


def summary_to_pb(summary: ExecutionSummary | None) -> pb.ExecutionSummary | None:
    if summary is None:
        return None
    return pb.ExecutionSummary(
        id=summary.id,
        status=status_to_pb(summary.status),
        attempt=summary.attempt,
        created_at_us=micros(summary.created_at),
        finished_at_us=optional_micros(summary.finished_at),
    )


def summary_from_pb(message: pb.Task) -> ExecutionSummary | None:
    if not message.HasField("latest_execution"):
        return None
    summary = message.latest_execution
    return ExecutionSummary(
        id=summary.id,
        status=status_from_pb(summary.status),
        attempt=summary.attempt,
        created_at=from_micros(summary.created_at_us),
        finished_at=optional_time(summary, "finished_at_us"),
    )


def task_to_pb(task: TaskRecord) -> pb.Task:
    return pb.Task(
        id=task.id,
        name=task.name,
        topic=task.topic,
        payload_json=json_bytes(task.payload),
        labels=task.labels,
        created_at_us=micros(task.created_at),
        updated_at_us=micros(task.updated_at),
        latest_execution=summary_to_pb(task.latest_execution),
    )


def task_from_pb(message: pb.Task) -> TaskRecord:
    return TaskRecord(
        id=message.id,
        name=message.name,
        topic=message.topic,
        payload=json_value(message.payload_json) or {},
        labels=dict(message.labels),
        created_at=from_micros(message.created_at_us),
        updated_at=from_micros(message.updated_at_us),
        latest_execution=summary_from_pb(message),
    )


def patch_to_pb(task_id: str, patch: TaskPatch) -> pb.UpdateTaskRequest:
    payload = None if patch.payload is None else json_bytes(patch.payload)
    labels = None if patch.labels is None else pb.Labels(labels=patch.labels)
    message = pb.TaskPatch(name=patch.name, payload_json=payload, labels=labels)
    return pb.UpdateTaskRequest(task_id=task_id, patch=message)


def patch_from_pb(message: pb.TaskPatch) -> TaskPatch:
    has = message.HasField
    return TaskPatch(
        name=optional_value(message, "name"),
        payload=json_value(message.payload_json) if has("payload_json") else None,
        labels=dict(message.labels.labels) if has("labels") else None,
    )


# Queries: their filters travel as the fields of the same names (times as `<name>_us`,
# statuses as the enum), following the one declaration of `store.base`.

_TIME_OPS = frozenset({"at_or_after", "before"})


def filters_to_pb(query: Model, filters: Iterable[ListFilter]) -> dict[str, Any]:
    """The message fields of the filters `query` sets."""
    fields: dict[str, Any] = {}
    for spec in filters:
        value = spec.value_in(query)
        if value is None:
            continue
        if spec.op in _TIME_OPS:
            fields[f"{spec.name}_us"] = micros(value)
        elif isinstance(value, TaskStatus):
            fields[spec.name] = status_to_pb(value)
        elif spec.op == "one_of":
            fields[spec.name] = sorted(status_to_pb(status) for status in value)
        else:
            fields[spec.name] = value
    return fields


def filters_from_pb(message: Any, filters: Iterable[ListFilter]) -> dict[str, Any]:
    """The query fields of the filters `message` sets (the inverse of `filters_to_pb`)."""
    fields: dict[str, Any] = {}
    for spec in filters:
        if spec.op in _TIME_OPS:
            fields[spec.name] = optional_time(message, f"{spec.name}_us")
        elif spec.op == "one_of":
            fields[spec.name] = frozenset(map(status_from_pb, getattr(message, spec.name)))
        elif spec.op == "has_labels":
            fields[spec.name] = dict(getattr(message, spec.name))
        elif message.DESCRIPTOR.fields_by_name[spec.name].enum_type is not None:
            has = message.HasField(spec.name)
            fields[spec.name] = status_from_pb(getattr(message, spec.name)) if has else None
        else:
            fields[spec.name] = optional_value(message, spec.name)
    return fields


def task_query_to_pb(query: TaskQuery) -> pb.TaskQuery:
    fields = filters_to_pb(query, TASK_FILTERS)
    return pb.TaskQuery(**fields, limit=query.limit, cursor=query.cursor)


def task_query_from_pb(message: pb.TaskQuery) -> TaskQuery:
    fields = filters_from_pb(message, TASK_FILTERS)
    return TaskQuery(**fields, limit=message.limit, cursor=optional_value(message, "cursor"))


def task_page_to_pb(page: Page[TaskRecord]) -> pb.TaskPage:
    return pb.TaskPage(items=[task_to_pb(t) for t in page.items], next_cursor=page.next_cursor)


def task_page_from_pb(message: pb.TaskPage) -> Page[TaskRecord]:
    items = [task_from_pb(task) for task in message.items]
    return Page(items=items, next_cursor=optional_value(message, "next_cursor"))


# Executions ---------------------------------------------------------------------------------


def execution_to_pb(execution: Execution) -> pb.Execution:
    return pb.Execution(
        id=execution.id,
        task_id=execution.task_id,
        topic=execution.topic,
        status=status_to_pb(execution.status),
        attempt=execution.attempt,
        max_attempts=execution.max_attempts,
        last_seq=execution.last_seq,
        payload_json=json_bytes(execution.payload),
        result_json=json_bytes(execution.result),
        error=error_to_pb(execution.error),
        worker=worker_to_pb(execution.worker),
        created_at_us=micros(execution.created_at),
        dispatched_at_us=optional_micros(execution.dispatched_at),
        started_at_us=optional_micros(execution.started_at),
        finished_at_us=optional_micros(execution.finished_at),
        duration_seconds=execution.duration_seconds,
        heartbeat_at_us=optional_micros(execution.heartbeat_at),
        events=[event_to_pb(event) for event in execution.events],
        depends_on=execution.depends_on,
    )


def execution_from_pb(message: pb.Execution) -> Execution:
    return Execution(
        id=message.id,
        task_id=message.task_id,
        topic=message.topic,
        status=status_from_pb(message.status),
        attempt=message.attempt,
        max_attempts=message.max_attempts,
        last_seq=message.last_seq,
        payload=json_value(message.payload_json) or {},
        result=json_value(message.result_json),
        error=error_from_pb(message),
        worker=worker_from_pb(message),
        created_at=from_micros(message.created_at_us),
        dispatched_at=optional_time(message, "dispatched_at_us"),
        started_at=optional_time(message, "started_at_us"),
        finished_at=optional_time(message, "finished_at_us"),
        duration_seconds=optional_value(message, "duration_seconds"),
        heartbeat_at=optional_time(message, "heartbeat_at_us"),
        events=events_from_pb(message.events),
        depends_on=tuple(message.depends_on),
    )


def tasks_to_pb(tasks: Iterable[TaskRecord]) -> pb.Tasks:
    return pb.Tasks(items=[task_to_pb(task) for task in tasks])


def tasks_from_pb(message: pb.Tasks) -> list[TaskRecord]:
    return [task_from_pb(task) for task in message.items]


def executions_to_pb(executions: Iterable[Execution]) -> pb.Executions:
    return pb.Executions(items=[execution_to_pb(execution) for execution in executions])


def executions_from_pb(message: pb.Executions) -> list[Execution]:
    return [execution_from_pb(execution) for execution in message.items]


def execution_query_to_pb(query: ExecutionQuery) -> pb.ExecutionQuery:
    return pb.ExecutionQuery(
        **filters_to_pb(query, EXECUTION_FILTERS),
        limit=query.limit,
        cursor=query.cursor,
        oldest_first=query.oldest_first,
    )


def execution_query_from_pb(message: pb.ExecutionQuery) -> ExecutionQuery:
    return ExecutionQuery(
        **filters_from_pb(message, EXECUTION_FILTERS),
        limit=message.limit,
        cursor=optional_value(message, "cursor"),
        oldest_first=message.oldest_first,
    )


def execution_page_to_pb(page: Page[Execution]) -> pb.ExecutionPage:
    items = [execution_to_pb(execution) for execution in page.items]
    return pb.ExecutionPage(items=items, next_cursor=page.next_cursor)


def execution_page_from_pb(message: pb.ExecutionPage) -> Page[Execution]:
    items = [execution_from_pb(execution) for execution in message.items]
    return Page(items=items, next_cursor=optional_value(message, "next_cursor"))


# Changes ------------------------------------------------------------------------------------


def change_to_pb(change: Change) -> pb.Change:
    return pb.Change(
        outcome=_OUTCOME_TO_PB[change.outcome],
        execution=execution_to_pb(change.execution),
        new_events=[event_to_pb(event) for event in change.new_events],
        reason=change.reason,
    )


def change_from_pb(message: pb.Change) -> Change:
    return Change(
        outcome=outcome_from_pb(message.outcome),
        execution=execution_from_pb(message.execution),
        new_events=events_from_pb(message.new_events),
        reason=optional_value(message, "reason"),
    )


def changes_to_pb(changes: Iterable[Change]) -> pb.Changes:
    return pb.Changes(items=[change_to_pb(change) for change in changes])


def changes_from_pb(message: pb.Changes) -> list[Change]:
    return [change_from_pb(change) for change in message.items]


def steps_to_pb(ids: Sequence[str], steps: Iterable[tuple[Execution, Change]]) -> Any:
    written = [pb.WriteStep(expected=execution_to_pb(e), change=change_to_pb(c)) for e, c in steps]
    return pb.CompareAndWriteRequest(ids=ids, steps=written)


def steps_from_pb(message: pb.CompareAndWriteRequest) -> list[tuple[Execution, Change]]:
    return [(execution_from_pb(s.expected), change_from_pb(s.change)) for s in message.steps]


# Updates and modifiers ----------------------------------------------------------------------


def update_to_pb(update: Update) -> pb.Update:
    return pb.Update(
        execution_id=update.execution_id,
        task_id=update.task_id,
        attempt=update.attempt,
        seq=update.seq,
        status=status_to_pb(update.status),
        result_json=json_bytes(update.result),
        error=error_to_pb(update.error),
        duration_seconds=update.duration_seconds,
        worker=worker_to_pb(update.worker),
        at_us=micros(update.at),
        started_at_us=optional_micros(update.started_at),
        complete=update.complete,
        reason=update.reason,
        max_attempts=update.max_attempts,
        claim=update.claim,
    )


def update_from_pb(message: pb.Update) -> Update:
    return Update(
        execution_id=message.execution_id,
        task_id=message.task_id,
        attempt=message.attempt,
        seq=message.seq,
        status=status_from_pb(message.status),
        result=json_value(message.result_json),
        error=error_from_pb(message),
        duration_seconds=optional_value(message, "duration_seconds"),
        worker=worker_from_pb(message),
        at=from_micros(message.at_us),
        started_at=optional_time(message, "started_at_us"),
        complete=message.complete,
        reason=optional_value(message, "reason"),
        max_attempts=optional_value(message, "max_attempts"),
        claim=optional_value(message, "claim"),
    )


def modifier_to_pb(modifier: Modifier) -> pb.Modifier:
    match modifier:
        case ApplyUpdates(updates=updates):
            applied = pb.ApplyUpdates(updates=[update_to_pb(u) for u in updates])
            return pb.Modifier(apply_updates=applied)
        case MarkDispatched(reason=reason):
            return pb.Modifier(mark_dispatched=pb.MarkDispatched(reason=reason))
        case Cancel(by=by):
            return pb.Modifier(cancel=pb.Cancel(by=by))
        case MarkLostIfSilent(cutoff=cutoff):
            return pb.Modifier(mark_lost_if_silent=pb.MarkLostIfSilent(cutoff_us=micros(cutoff)))
        case ClaimUnpublished(now=now, expired_before=expired_before):
            claim = pb.ClaimUnpublished(
                now_us=micros(now), expired_before_us=micros(expired_before)
            )
            return pb.Modifier(claim_unpublished=claim)
        case Unblock(reason=reason):
            return pb.Modifier(unblock=pb.Unblock(reason=reason))
        case CancelBlocked(reason=reason):
            return pb.Modifier(cancel_blocked=pb.CancelBlocked(reason=reason))
        case _:
            assert_never(modifier)


_MODIFIER_READERS: dict[str, Callable[[Any], Modifier]] = {
    "apply_updates": lambda m: ApplyUpdates(tuple(update_from_pb(u) for u in m.updates)),
    "mark_dispatched": lambda m: MarkDispatched(m.reason),
    "cancel": lambda m: Cancel(m.by),
    "mark_lost_if_silent": lambda m: MarkLostIfSilent(from_micros(m.cutoff_us)),
    "claim_unpublished": lambda m: ClaimUnpublished(
        now=from_micros(m.now_us), expired_before=from_micros(m.expired_before_us)
    ),
    "unblock": lambda m: Unblock(m.reason),
    "cancel_blocked": lambda m: CancelBlocked(m.reason),
}


def modifier_from_pb(message: pb.Modifier) -> Modifier:
    kind = message.WhichOneof("kind")
    if kind is None or kind not in _MODIFIER_READERS:
        raise InvalidInput(f"unknown modifier {kind!r}: this datastore is older than its client")
    return _MODIFIER_READERS[kind](getattr(message, kind))


# Statistics ---------------------------------------------------------------------------------


def stats_to_pb(stats: StoreStats) -> pb.StoreStats:
    counts = [
        pb.StatusCount(status=status_to_pb(status), count=count)
        for status, count in stats.executions.items()
    ]
    return pb.StoreStats(tasks=stats.tasks, executions=counts)


def stats_from_pb(message: pb.StoreStats) -> StoreStats:
    counts = {status_from_pb(item.status): item.count for item in message.executions}
    return StoreStats(tasks=message.tasks, executions=counts)
