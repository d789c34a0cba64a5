"""Ids and names at every boundary (issue 10, item 5): a malformed id is refused before any
store sees it, over HTTP (422), the push route (400), gRPC (INVALID_ARGUMENT) and on
Firestore; topic names match in full; the client sends an id as one path segment; and a
module in the current directory does not shadow an installed one."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import grpc
import httpx
import pytest

import sublim
from sublim.broker.base import check_name
from sublim.broker.memory import MemoryBroker
from sublim.cli.serve import load_node
from sublim.config import Settings
from sublim.core.ids import new_ulid
from sublim.core.model import Change, Execution, TaskRecord
from sublim.core.service import Service
from sublim.datastore import datastore_pb2 as pb
from sublim.datastore import datastore_pb2_grpc as pb_grpc
from sublim.datastore.server import start_server
from sublim.errors import InvalidInput
from sublim.store.base import ExecutionQuery, ModifyFn, Page, TaskPatch, TaskQuery
from sublim.store.memory import MemoryStore
from tests.api.conftest import in_process_http
from tests.contract.store_builders import a_task

#: Ids that are no ULIDs, each dangerous somewhere: a path step, a log or header line break,
#: an unbounded length, a sub-collection path, an alphabet the stores do not order.
MALFORMED = {
    "dot-dot": "..",
    "newline": new_ulid() + "\n",
    "too-long": "0" * 27,
    "slash": "01J9ZQ8M4T4B/F7W3X2Y1V6N5K",
    "lower-case": new_ulid().lower(),
    "first-char-over-7": "8" + new_ulid()[1:],
}


class RecordingStore(MemoryStore):
    """A memory store that remembers every call that names an id or a cursor."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Any]] = []

    async def get_task(self, task_id: str) -> TaskRecord:
        self.calls.append(("get_task", task_id))
        return await super().get_task(task_id)

    async def list_tasks(self, query: TaskQuery) -> Page[TaskRecord]:
        self.calls.append(("list_tasks", query.cursor))
        return await super().list_tasks(query)

    async def update_task(self, task_id: str, patch: TaskPatch) -> TaskRecord:
        self.calls.append(("update_task", task_id))
        return await super().update_task(task_id, patch)

    async def delete_task(self, task_id: str) -> None:
        self.calls.append(("delete_task", task_id))
        await super().delete_task(task_id)

    async def get_execution(self, execution_id: str) -> Execution:
        self.calls.append(("get_execution", execution_id))
        return await super().get_execution(execution_id)

    async def list_executions(self, query: ExecutionQuery) -> Page[Execution]:
        self.calls.append(("list_executions", query.task_id))
        return await super().list_executions(query)

    async def create_executions(self, executions: Sequence[Execution]) -> None:
        self.calls.append(("create_executions", [e.id for e in executions]))
        await super().create_executions(executions)

    async def modify_executions(self, ids: Sequence[str], fn: ModifyFn) -> list[Change]:
        self.calls.append(("modify_executions", list(ids)))
        return await super().modify_executions(ids, fn)


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    settings = Settings(store_url="memory://", broker_url="memory://")
    async with Service(RecordingStore(), MemoryBroker(), settings) as started:
        yield started


@pytest.fixture
def store(service: Service) -> RecordingStore:
    assert isinstance(service.store, RecordingStore)
    return service.store


@pytest.fixture
async def http(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process_http(service) as client:
        yield client


def encoded(identifier: str) -> str:
    """`identifier` percent-encoded as one path segment (dots too, so that no client
    normalizes `..` away before it reaches the server)."""
    return quote(identifier, safe="").replace(".", "%2E")


# HTTP: paths, queries and bodies

ID_ROUTES = [
    ("GET", "/v1/tasks/{}"),
    ("PATCH", "/v1/tasks/{}"),
    ("DELETE", "/v1/tasks/{}"),
    ("POST", "/v1/tasks/{}/executions"),
    ("GET", "/v1/tasks/{}/executions"),
    ("GET", "/v1/executions/{}"),
    ("POST", "/v1/executions/{}/cancel"),
    ("POST", "/v1/executions/{}/retry"),
    ("GET", "/v1/executions/{}/events"),
]
PATH_MALFORMED = {k: v for k, v in MALFORMED.items() if k != "slash"}


@pytest.mark.parametrize(("method", "route"), ID_ROUTES, ids=[f"{m} {r}" for m, r in ID_ROUTES])
@pytest.mark.parametrize("bad", PATH_MALFORMED.values(), ids=PATH_MALFORMED.keys())
async def test_a_malformed_id_in_a_path_is_a_422_naming_the_field_and_touches_nothing(
    http: httpx.AsyncClient, store: RecordingStore, method: str, route: str, bad: str
) -> None:
    body = {"name": "x"} if method == "PATCH" else None
    response = await http.request(method, route.format(encoded(bad)), json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert error["loc"][0] == "path"
    assert error["loc"][1].endswith("_id")
    assert store.calls == []


async def test_a_slash_in_a_path_id_never_reaches_a_handler_as_part_of_the_id(
    http: httpx.AsyncClient, store: RecordingStore
) -> None:
    """%2F is decoded before routing: `x%2Fcancel` is the segments `x` and `cancel`."""
    response = await http.post(f"/v1/executions/{encoded('x/cancel')}")
    assert response.status_code == 422
    assert store.calls == []


@pytest.mark.parametrize("bad", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_cursor_is_a_422_and_touches_nothing(
    http: httpx.AsyncClient, store: RecordingStore, bad: str
) -> None:
    for path in ("/v1/tasks", "/v1/executions"):
        response = await http.get(path, params={"cursor": bad})
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["loc"] == ["query", "cursor"]
    assert store.calls == []


@pytest.mark.parametrize("bad", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_id_in_depends_on_is_a_422_and_enqueues_nothing(
    http: httpx.AsyncClient, store: RecordingStore, bad: str
) -> None:
    task = (await http.post("/v1/tasks", json={"topic": "Thumbnail"})).json()
    store.calls.clear()
    response = await http.post(f"/v1/tasks/{task['id']}/executions", json={"depends_on": [bad]})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["body", "depends_on", 0]
    assert store.calls == []


# The push route


@pytest.mark.parametrize("field", ["execution_id", "task_id"])
@pytest.mark.parametrize("bad", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_pushed_update_with_a_malformed_id_is_a_400_and_records_nothing(
    http: httpx.AsyncClient, store: RecordingStore, field: str, bad: str
) -> None:
    update = {"execution_id": new_ulid(), "task_id": new_ulid(), "attempt": 1, "seq": 1}
    update |= {"status": "Running", field: bad}
    data = base64.b64encode(json.dumps(update).encode()).decode()
    response = await http.post("/task_execution_update", json={"message": {"data": data}})
    assert response.status_code == 400, response.text
    assert field.replace("_", " ") in response.json()["detail"]
    assert store.calls == []


# gRPC


@pytest.fixture
async def datastore(store: RecordingStore) -> AsyncIterator[pb_grpc.DatastoreStub]:
    # 127.0.0.1: the loopback address, where the datastore needs no credentials.
    server, port = await start_server(store, "127.0.0.1:0")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield pb_grpc.DatastoreStub(channel)  # type: ignore[no-untyped-call]
    finally:
        await channel.close()
        await server.stop(None)


def grpc_calls(bad: str) -> dict[str, tuple[str, Any]]:
    """One request per RPC that names an id, each naming `bad`."""

    def an_execution(execution_id: str, task_id: str) -> pb.Executions:
        item = pb.Execution(id=execution_id, task_id=task_id, topic="T", status=pb.INITIALIZED)
        return pb.Executions(items=[item])

    return {
        "GetTask": ("GetTask", pb.TaskId(id=bad)),
        "DeleteTask": ("DeleteTask", pb.TaskId(id=bad)),
        "UpdateTask": ("UpdateTask", pb.UpdateTaskRequest(task_id=bad, patch=pb.TaskPatch())),
        "CreateTask": ("CreateTask", pb.Task(id=bad, name="t", topic="T")),
        "CreateTasks": ("CreateTasks", pb.Tasks(items=[pb.Task(id=bad, name="t", topic="T")])),
        "CreateExecution": ("CreateExecutions", an_execution(bad, new_ulid())),
        "CreateExecution-task": ("CreateExecutions", an_execution(new_ulid(), bad)),
        "GetExecution": ("GetExecution", pb.ExecutionId(id=bad)),
        "ReadExecutions": ("ReadExecutions", pb.ExecutionIds(ids=[bad])),
        "ModifyExecutions": (
            "ModifyExecutions",
            pb.ModifyRequest(ids=[bad], modifier=pb.Modifier(cancel=pb.Cancel(by="user"))),
        ),
        "ListTasks": ("ListTasks", pb.TaskQuery(limit=10, cursor=bad)),
        "ListExecutions": ("ListExecutions", pb.ExecutionQuery(limit=10, task_id=bad)),
    }


GRPC_CASES = list(grpc_calls("x"))


@pytest.mark.parametrize("case", GRPC_CASES)
@pytest.mark.parametrize("bad", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_id_over_grpc_is_invalid_argument_and_touches_nothing(
    datastore: pb_grpc.DatastoreStub, store: RecordingStore, case: str, bad: str
) -> None:
    method, request = grpc_calls(bad)[case]
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await getattr(datastore, method)(request)
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT, failed.value.details()
    assert "ULID" in (failed.value.details() or "")
    assert store.calls == []
    assert (await store.stats()).tasks == 0


async def test_a_topic_with_a_trailing_newline_is_invalid_argument_over_grpc(
    datastore: pb_grpc.DatastoreStub, store: RecordingStore
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await datastore.CreateTask(pb.Task(id=new_ulid(), name="t", topic="Topic\n"))
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (await store.stats()).tasks == 0


# Names


@pytest.mark.parametrize("name", ["Topic\n", "Thumbnail.v2\n"])
def test_check_name_refuses_a_trailing_newline(name: str) -> None:
    with pytest.raises(InvalidInput, match="invalid topic name"):
        check_name("topic", name)


async def test_a_library_task_with_a_trailing_newline_in_its_topic_is_refused(
    service: Service, store: RecordingStore
) -> None:
    with pytest.raises(InvalidInput, match="invalid topic name"):
        await service.create_task("Topic\n")
    assert (await store.stats()).tasks == 0


def test_check_ulid_takes_what_new_ulid_makes_and_nothing_malformed() -> None:
    from sublim.core.ids import check_ulid  # imported here: the module is older than the check

    fresh = new_ulid()
    assert check_ulid("id", fresh) == fresh
    for bad in MALFORMED.values():
        with pytest.raises(InvalidInput, match="expected a ULID"):
            check_ulid("id", bad)


# Firestore


@pytest.fixture
async def firestore() -> AsyncIterator[Any]:
    pytest.importorskip("google.cloud.firestore")
    from sublim.store.firestore import FirestoreStore
    from tests.gcp_emulators import fresh_firestore_project, reset_firestore

    project = fresh_firestore_project()
    firestore_store = FirestoreStore.from_url(f"firestore://{project}")
    await firestore_store.open()
    try:
        yield firestore_store
    finally:
        await firestore_store.close()
        reset_firestore(project)


async def test_an_id_with_a_slash_never_addresses_a_firestore_sub_collection(
    firestore: Any,
) -> None:
    from sublim.store._firestore_docs import TASKS

    parent = await firestore.create_task(a_task())
    nested = a_task().model_copy(update={"id": f"{parent.id}/sub/x"})
    with pytest.raises(InvalidInput, match="expected a ULID"):
        await firestore.create_task(nested)
    with pytest.raises(InvalidInput, match="expected a ULID"):
        await firestore.get_task(nested.id)
    with pytest.raises(InvalidInput, match="expected a ULID"):
        await firestore.get_execution(f"{parent.id}/events/00000001")
    written = firestore.client.collection(TASKS).document(parent.id).collection("sub")
    assert not (await written.document("x").get()).exists


# The Python client


def recorded_paths(client: sublim.Client) -> list[bytes]:
    """Swap the client's transport for one that records each raw path and answers 404."""
    paths: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path)
        return httpx.Response(404, json={"title": "Not Found", "status": 404, "detail": "no"})

    client._http = httpx.Client(base_url=client.url, transport=httpx.MockTransport(answer))
    return paths


@pytest.mark.parametrize(
    ("identifier", "segment"),
    [
        ("a/b", b"a%2Fb"),
        ("..", b"%2E%2E"),
        (".", b"%2E"),
        ("x\ny", b"x%0Ay"),
        ("a?b#c", b"a%3Fb%23c"),
    ],
)
def test_the_client_sends_an_id_as_one_path_segment(identifier: str, segment: bytes) -> None:
    with sublim.Client("http://127.0.0.1:1") as client:
        paths = recorded_paths(client)
        for call in (client.get_task, client.delete_task, client.get_execution, client.cancel):
            with pytest.raises(sublim.errors.NotFound):
                call(identifier)
    prefixes = [b"/v1/tasks/", b"/v1/tasks/", b"/v1/executions/", b"/v1/executions/"]
    assert [p.split(b"?")[0] for p in paths] == [
        prefix + segment + (b"/cancel" if i == 3 else b"") for i, prefix in enumerate(prefixes)
    ]


# load_node and sys.path


def test_a_module_in_the_working_directory_does_not_shadow_an_installed_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`colorsys` (standard library) next to the user's module: the real one is imported."""
    (tmp_path / "colorsys.py").write_text("raise RuntimeError('the shadow was imported')\n")
    (tmp_path / "shadowapp.py").write_text(
        "import colorsys\nfrom sublim.examples.hello import node\nSHADE = colorsys.rgb_to_hsv\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in {"", str(tmp_path)}])
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    monkeypatch.delitem(sys.modules, "shadowapp", raising=False)
    node = load_node("shadowapp:node")
    assert node is not None
    assert not sys.modules["colorsys"].__file__.startswith(str(tmp_path))  # type: ignore[union-attr]
    assert sys.path[-1] == str(tmp_path)
