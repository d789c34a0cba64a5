"""Caps on what one call may ask for: label filters per query, labels per task, depends_on.
Over a cap, every path answers a clear refusal naming it (422 over HTTP, INVALID_ARGUMENT over
gRPC, `InvalidInput` in the library), instead of a 503 from the database (1,100 label
filters exceeded SQLite's variables) or work without bound."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest

from sublim.broker.memory import MemoryBroker
from sublim.config import Settings
from sublim.core.caps import MAX_DEPENDS_ON, MAX_LABEL_FILTERS, MAX_LABELS_PER_TASK
from sublim.core.ids import new_ulid
from sublim.core.model import Execution
from sublim.core.service import Service
from sublim.datastore import codec
from sublim.datastore import datastore_pb2 as pb
from sublim.datastore import datastore_pb2_grpc as pb_grpc
from sublim.datastore.server import start_server
from sublim.errors import InvalidInput
from sublim.store.base import ExecutionQuery, TaskPatch, TaskQuery
from sublim.store.sqlite import SqliteStore
from tests.api.conftest import assert_problem, in_process_http

FILTERS_THAT_BROKE_SQLITE = 1_100


def many_labels(count: int) -> dict[str, str]:
    return {f"key{i}": f"value{i}" for i in range(count)}


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    settings = Settings(store_url="memory://", broker_url="memory://")
    store = SqliteStore(str(tmp_path / "store.db"))
    async with Service(store, MemoryBroker(), settings) as svc:
        yield svc


@pytest.fixture
async def http(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process_http(service) as client:
        yield client


@pytest.fixture
async def datastore(service: Service) -> AsyncIterator[pb_grpc.DatastoreStub]:
    """The gRPC datastore over the same SQLite store, called with raw messages."""
    server, port = await start_server(service.store, "127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield pb_grpc.DatastoreStub(channel)  # type: ignore[no-untyped-call]
    finally:
        await server.stop(None)


# Label filters per query


async def test_1100_label_filters_are_a_422_naming_the_cap(http: httpx.AsyncClient) -> None:
    filters = httpx.QueryParams(
        [("label", f"key{i}:value") for i in range(FILTERS_THAT_BROKE_SQLITE)]
    )
    response = await http.get("/v1/tasks", params=filters)
    problem = assert_problem(response, 422)
    assert f"at most {MAX_LABEL_FILTERS}" in problem["detail"]


def test_a_library_query_over_the_cap_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match=f"at most {MAX_LABEL_FILTERS}"):
        TaskQuery(labels=many_labels(FILTERS_THAT_BROKE_SQLITE))


async def test_a_datastore_query_over_the_cap_is_invalid_argument(
    datastore: pb_grpc.DatastoreStub,
) -> None:
    query = pb.TaskQuery(labels=many_labels(FILTERS_THAT_BROKE_SQLITE), limit=10)
    with pytest.raises(grpc.aio.AioRpcError) as refusal:
        await datastore.ListTasks(query)
    assert refusal.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"at most {MAX_LABEL_FILTERS}" in (refusal.value.details() or "")


# Labels per task


async def test_a_task_with_too_many_labels_is_a_422_naming_the_cap(
    http: httpx.AsyncClient, service: Service
) -> None:
    body = {"topic": "Echo", "labels": many_labels(MAX_LABELS_PER_TASK + 1)}
    problem = assert_problem(await http.post("/v1/tasks", json=body), 422)
    assert f"at most {MAX_LABELS_PER_TASK}" in problem["detail"]
    assert (await service.list_tasks(TaskQuery())).items == []


async def test_a_patch_to_too_many_labels_is_a_422_and_changes_nothing(
    http: httpx.AsyncClient, service: Service
) -> None:
    task, _ = await service.create_task("Echo", labels={"kept": "yes"})
    patch = {"labels": many_labels(MAX_LABELS_PER_TASK + 1)}
    problem = assert_problem(await http.patch(f"/v1/tasks/{task.id}", json=patch), 422)
    assert f"at most {MAX_LABELS_PER_TASK}" in problem["detail"]
    assert (await service.get_task(task.id)).labels == {"kept": "yes"}


async def test_the_library_refuses_too_many_labels_on_create_and_patch(service: Service) -> None:
    with pytest.raises(InvalidInput, match=f"at most {MAX_LABELS_PER_TASK}"):
        await service.create_task("Echo", labels=many_labels(MAX_LABELS_PER_TASK + 1))
    with pytest.raises(InvalidInput, match=f"at most {MAX_LABELS_PER_TASK}"):
        TaskPatch(labels=many_labels(MAX_LABELS_PER_TASK + 1))


async def test_a_datastore_task_with_too_many_labels_is_invalid_argument(
    datastore: pb_grpc.DatastoreStub,
) -> None:
    task = pb.Task(id=new_ulid(), name="t", topic="Echo", payload_json=b"{}")
    task.labels.update(many_labels(MAX_LABELS_PER_TASK + 1))
    with pytest.raises(grpc.aio.AioRpcError) as refusal:
        await datastore.CreateTask(task)
    assert refusal.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"at most {MAX_LABELS_PER_TASK}" in (refusal.value.details() or "")


# depends_on


async def dependencies(service: Service, count: int) -> list[str]:
    task, _ = await service.create_task("Echo")
    return [(await service.enqueue(task.id)).id for _ in range(count)]


# (Over HTTP, `depends_on` was already refused past 100 by the body's schema: a 422.)


async def test_the_library_refuses_a_too_long_depends_on_before_recording_it(
    service: Service,
) -> None:
    ids = await dependencies(service, MAX_DEPENDS_ON + 1)
    task, _ = await service.create_task("Echo")
    with pytest.raises(InvalidInput, match=f"at most {MAX_DEPENDS_ON}"):
        await service.enqueue(task.id, depends_on=ids)
    recorded = await service.list_executions(ExecutionQuery(task_id=task.id))
    assert recorded.items == []


async def test_a_datastore_execution_with_a_too_long_depends_on_is_invalid_argument(
    datastore: pb_grpc.DatastoreStub,
) -> None:
    waiting_on = tuple(new_ulid() for _ in range(MAX_DEPENDS_ON + 1))
    execution = Execution(task_id=new_ulid(), topic="Echo", depends_on=waiting_on)
    with pytest.raises(grpc.aio.AioRpcError) as refusal:
        await datastore.CreateExecutions(codec.executions_to_pb([execution]))
    assert refusal.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"at most {MAX_DEPENDS_ON}" in (refusal.value.details() or "")
