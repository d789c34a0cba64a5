"""The datastore's wire format: every model and modifier survives the trip, and every error
comes back as the same class of the sublim error tree."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import get_args

import grpc
import pytest

from sublim.core.model import Change, Event, TaskStatus
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
from sublim.datastore import codec
from sublim.datastore.wire_errors import StaleRead, error_of, status_of
from sublim.errors import (
    AlreadyExists,
    Conflict,
    ExecutionNotFound,
    IllegalTransition,
    InvalidInput,
    StoreError,
    SublimError,
    TaskNotFound,
)
from sublim.store.base import ExecutionQuery, Page, StoreStats, TaskPatch, TaskQuery
from tests.contract.store_builders import a_finished_execution, a_task, an_execution, an_update, at

ROOT = Path(__file__).resolve().parents[2]
S = TaskStatus


def test_a_time_travels_to_the_microsecond_and_comes_back_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    sent = datetime(2025, 3, 1, 13, 0, 0, 999999, tzinfo=paris)
    received = codec.from_micros(codec.micros(sent))
    assert received == sent
    assert received.tzinfo == UTC


def test_a_naive_time_is_taken_as_utc() -> None:
    naive = datetime(2025, 3, 1, 12, 0, 0, 1)
    assert codec.from_micros(codec.micros(naive)) == naive.replace(tzinfo=UTC)


def test_an_execution_with_every_field_set_survives_the_trip() -> None:
    execution = a_finished_execution(a_task())
    assert codec.execution_from_pb(codec.execution_to_pb(execution)) == execution


def test_an_execution_keeps_its_dependencies_in_order() -> None:
    execution = an_execution(a_task(), status=S.BLOCKED, depends_on=("01B", "01A", "01C"))
    assert codec.execution_from_pb(codec.execution_to_pb(execution)) == execution


def test_an_execution_with_no_optional_field_set_survives_the_trip() -> None:
    execution = an_execution(a_task(), result=None, payload={})
    assert codec.execution_from_pb(codec.execution_to_pb(execution)) == execution


def test_a_task_with_its_latest_execution_survives_the_trip() -> None:
    execution = a_finished_execution(a_task())
    task = a_task(payload={"a": [1, 2.5, None]}, labels={"team": "media"})
    task = task.model_copy(update={"latest_execution": execution.summary()})
    assert codec.task_from_pb(codec.task_to_pb(task)) == task


@pytest.mark.parametrize(
    "patch",
    [TaskPatch(), TaskPatch(name="n"), TaskPatch(payload={}, labels={}), TaskPatch(labels={})],
)
def test_a_patch_keeps_which_fields_it_sets(patch: TaskPatch) -> None:
    request = codec.patch_to_pb("task-1", patch)
    assert (request.task_id, codec.patch_from_pb(request.patch)) == ("task-1", patch)


def test_queries_with_every_filter_survive_the_trip() -> None:
    tasks = TaskQuery(topic="T", labels={"a": "b"}, status=S.RUNNING, limit=7, cursor="c")
    executions = ExecutionQuery(
        task_id="t",
        topic="T",
        statuses=frozenset({S.RUNNING, S.BLOCKED}),
        created_after=at(1),
        created_before=at(2),
        heartbeat_before=at(3),
        waiting_on="01DEP",
        oldest_first=True,
        limit=9,
        cursor="c",
    )
    assert codec.task_query_from_pb(codec.task_query_to_pb(tasks)) == tasks
    assert codec.execution_query_from_pb(codec.execution_query_to_pb(executions)) == executions


def test_an_execution_query_with_no_filter_survives_the_trip() -> None:
    query = ExecutionQuery()
    assert codec.execution_query_from_pb(codec.execution_query_to_pb(query)) == query


def test_a_page_keeps_its_next_cursor_and_a_last_page_has_none() -> None:
    task = a_task()
    for page in (Page(items=[task], next_cursor=task.id), Page(items=[task])):
        assert codec.task_page_from_pb(codec.task_page_to_pb(page)) == page


def test_a_change_with_its_new_events_survives_the_trip() -> None:
    execution = an_execution(a_task())
    event = Event(status=S.CANCELLED, at=at(5), attempt=1, reason="cancelled by user")
    change = Change(outcome="applied", execution=execution, new_events=(event,), reason="why")
    assert codec.change_from_pb(codec.change_to_pb(change)) == change


def test_stats_survive_the_trip() -> None:
    stats = StoreStats(tasks=3, executions={S.RUNNING: 2, S.PASSED: 1})
    assert codec.stats_from_pb(codec.stats_to_pb(stats)) == stats


def examples_of_every_modifier() -> list[Modifier]:
    execution = an_execution(a_task())
    updates = (
        an_update(execution, 1, S.RUNNING, at=at(1)),
        an_update(execution, 2, S.FAILED, at=at(2), result={"x": 1}, complete=True),
        an_update(execution, 3, S.INCOMPLETE, at=at(3), complete=True, max_attempts=4),
    )
    return [
        ApplyUpdates(updates),
        MarkDispatched("published by the sweeper"),
        Cancel("admin"),
        MarkLostIfSilent(at(60)),
        ClaimUnpublished(now=at(10), expired_before=at(0)),
        Unblock("dependencies passed"),
        CancelBlocked("dependency 01DEP failed"),
    ]


def test_the_examples_cover_every_kind_of_modifier() -> None:
    assert {type(m) for m in examples_of_every_modifier()} == set(get_args(Modifier))


@pytest.mark.parametrize("modifier", examples_of_every_modifier(), ids=lambda m: type(m).__name__)
def test_every_modifier_survives_the_trip(modifier: Modifier) -> None:
    assert codec.modifier_from_pb(codec.modifier_to_pb(modifier)) == modifier


def test_an_unknown_status_number_is_invalid_input() -> None:
    message = codec.execution_to_pb(an_execution(a_task()))
    message.status = 99
    with pytest.raises(InvalidInput, match="unknown task status 99"):
        codec.execution_from_pb(message)


# Errors


def rpc_error(
    code: grpc.StatusCode, details: str, metadata: tuple[tuple[str, str], ...] = ()
) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(*metadata), details)


def round_trip(exc: Exception) -> SublimError:
    code, details, metadata = status_of(exc)
    return error_of(rpc_error(code, details, metadata), "datastore:50051")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (TaskNotFound("t1"), grpc.StatusCode.NOT_FOUND),
        (ExecutionNotFound("e1"), grpc.StatusCode.NOT_FOUND),
        (AlreadyExists("a task with id 't1' exists already"), grpc.StatusCode.ALREADY_EXISTS),
        (IllegalTransition("Passed -> Running"), grpc.StatusCode.FAILED_PRECONDITION),
        (Conflict("contradicts"), grpc.StatusCode.FAILED_PRECONDITION),
        (InvalidInput("bad payload"), grpc.StatusCode.INVALID_ARGUMENT),
        (StaleRead("changed since it was read"), grpc.StatusCode.ABORTED),
        (StoreError("database is locked"), grpc.StatusCode.UNAVAILABLE),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else value.name,
)
def test_an_error_crosses_the_wire_as_its_code_and_comes_back_as_its_class(
    error: Exception, code: grpc.StatusCode
) -> None:
    assert status_of(error)[0] == code
    received = round_trip(error)
    assert type(received) is type(error)
    assert str(error) in str(received)


def test_a_missing_object_comes_back_with_its_id() -> None:
    received = round_trip(ExecutionNotFound("01HEXECUTION"))
    assert isinstance(received, ExecutionNotFound)
    assert received.execution_id == "01HEXECUTION"


def test_an_unexpected_exception_is_internal_and_comes_back_as_a_store_error() -> None:
    assert status_of(RuntimeError("boom"))[0] == grpc.StatusCode.INTERNAL
    assert isinstance(round_trip(RuntimeError("boom")), StoreError)


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED])
def test_an_unreachable_or_slow_datastore_is_a_store_error_naming_it(code: grpc.StatusCode) -> None:
    received = error_of(rpc_error(code, "connection refused"), "datastore:50051")
    assert isinstance(received, StoreError)
    assert "datastore:50051" in str(received)
    assert code.name in str(received)


# Generated code


def test_the_committed_generated_modules_match_a_fresh_generation(tmp_path: Path) -> None:
    script = ROOT / "scripts" / "gen_proto.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], check=True)
    fresh = sorted((tmp_path / "sublim" / "datastore").glob("datastore_pb2*"))
    assert [path.name for path in fresh] == [
        "datastore_pb2.py",
        "datastore_pb2.pyi",
        "datastore_pb2_grpc.py",
    ]
    committed = ROOT / "src" / "sublim" / "datastore"
    stale = [p.name for p in fresh if p.read_bytes() != (committed / p.name).read_bytes()]
    assert stale == [], f"regenerate with: python scripts/gen_proto.py ({stale} differ)"
