"""The Datastore service end to end: a `grpc://` store over a served store, in this process
(to watch the calls) and as a real `sublim datastore` process (to stop and restart it)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest

from sublim.broker.memory import MemoryBroker
from sublim.config import load_settings
from sublim.core.model import (
    Change,
    Execution,
    TaskRecord,
    TaskStatus,
    Update,
    apply_update,
    transition,
)
from sublim.core.modifiers import MarkDispatched
from sublim.core.service import Service
from sublim.datastore import datastore_pb2 as pb
from sublim.datastore import datastore_pb2_grpc as pb_grpc
from sublim.datastore.server import TlsFiles, start_server
from sublim.errors import AlreadyExists, ExecutionNotFound, StoreError, TaskNotFound
from sublim.store.memory import MemoryStore
from sublim.store.remote import RemoteStore
from tests.contract.store_builders import a_task, an_execution, an_update
from tests.datastore_process import DatastoreProcess, remote_store

T = TypeVar("T")
S = TaskStatus


class Served:
    """A datastore served in this process over a memory store, and a client that records
    which RPCs it makes."""

    def __init__(self, backend: MemoryStore, client: RemoteStore) -> None:
        self.backend = backend
        self.client = client
        self.calls: list[str] = []
        original = client._call

        async def recording(method: str, request: Any, **options: Any) -> Any:
            self.calls.append(method)
            return await original(method, request, **options)

        client._call = recording  # type: ignore[method-assign]


async def serving(
    backend: MemoryStore, url_of: Callable[[int], str], tls: TlsFiles | None = None
) -> AsyncIterator[RemoteStore]:
    """A client of `backend` served in this process (at `url_of(port)`), until closed."""
    host = "127.0.0.1" if tls is None else "localhost"  # the test certificate names localhost
    server, port = await start_server(backend, f"{host}:0", tls)
    try:
        async with remote_store(url_of(port)) as client:
            yield client
    finally:
        await server.stop(None)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    backend = MemoryStore()
    async for client in serving(backend, lambda port: f"grpc://127.0.0.1:{port}"):
        yield Served(backend, client)


async def stored_execution(store: MemoryStore | RemoteStore, **fields: Any) -> Execution:
    task = await store.create_task(a_task())
    execution = an_execution(task, **fields)
    await store.create_executions([execution])
    return execution


# Changes to executions


async def test_a_named_modifier_is_applied_by_the_datastore_in_one_call(served: Served) -> None:
    execution = await stored_execution(served.backend, status=S.READY_FOR_DISPATCH)
    [change] = await served.client.modify_executions([execution.id], MarkDispatched("published"))
    assert change.execution.status == S.DISPATCHED
    assert served.calls == ["ModifyExecutions"]
    assert (await served.backend.get_execution(execution.id)).status == S.DISPATCHED


async def test_any_other_function_is_read_then_compared_and_written(served: Served) -> None:
    execution = await stored_execution(served.backend, status=S.READY_FOR_DISPATCH)
    await served.client.modify_executions([execution.id], lambda e: transition(e, S.DISPATCHED))
    assert served.calls == ["ReadExecutions", "CompareAndWrite"]
    assert (await served.backend.get_execution(execution.id)).status == S.DISPATCHED


async def test_a_write_based_on_a_stale_read_is_redone_from_a_fresh_read(served: Served) -> None:
    execution = await stored_execution(served.backend, status=S.RUNNING)
    seen: list[int] = []

    def heartbeat_racing_another_writer(current: Execution) -> Change:
        seen.append(current.last_seq)
        if len(seen) == 1:  # another writer records seq 1 between our read and our write
            rival = an_update(current, 1, S.RUNNING)
            asyncio.get_running_loop().create_task(
                served.backend.modify_executions([current.id], lambda e: _applied(e, rival))
            )
        return _applied(current, an_update(current, current.last_seq + 1, S.RUNNING))

    racing = heartbeat_racing_another_writer
    [change] = await served.client.modify_executions([execution.id], racing)
    assert seen == [0, 1]
    assert change.execution.last_seq == 2
    assert (await served.backend.get_execution(execution.id)).last_seq == 2


def _applied(execution: Execution, update: Update) -> Change:
    return apply_update(execution, update)


async def test_the_service_runs_an_execution_through_the_datastore_with_named_modifiers(
    served: Served,
) -> None:
    service = Service(served.client, MemoryBroker())
    async with service:
        _, execution = await service.create_task("Thumbnail", {"url": "u"}, execute=True)
        assert execution is not None
        updates = [an_update(execution, 1, S.RUNNING), an_update(execution, 2, S.PASSED)]
        await service.record_updates(updates)
        other = await service.enqueue(execution.task_id)
        cancelled = await service.cancel(other.id)
    assert (await served.backend.get_execution(execution.id)).status == S.PASSED
    assert cancelled.status == S.CANCELLED
    assert "ModifyExecutions" in served.calls
    assert "CompareAndWrite" not in served.calls


# Errors


async def test_missing_objects_come_back_as_not_found_with_their_ids(served: Served) -> None:
    with pytest.raises(TaskNotFound) as missing_task:
        await served.client.get_task("01HZZZZZZZZZZZZZZZZZZZZZZT")
    with pytest.raises(ExecutionNotFound) as missing_execution:
        await served.client.get_execution("01HZZZZZZZZZZZZZZZZZZZZZZE")
    assert missing_task.value.task_id == "01HZZZZZZZZZZZZZZZZZZZZZZT"
    assert missing_execution.value.execution_id == "01HZZZZZZZZZZZZZZZZZZZZZZE"


async def test_a_taken_id_comes_back_as_already_exists(served: Served) -> None:
    task = await served.client.create_task(a_task())
    with pytest.raises(AlreadyExists, match=task.id):
        await served.client.create_task(task)


async def test_a_message_that_does_not_validate_is_answered_invalid_argument(
    served: Served,
) -> None:
    channel = grpc.aio.insecure_channel(served.client.target)
    bad = pb.Execution(id="e", task_id="t", topic="T", status=pb.RUNNING, payload_json=b"{x")
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await pb_grpc.DatastoreStub(channel).CreateExecutions(pb.Executions(items=[bad]))
    await channel.close()
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "invalid JSON" in (failed.value.details() or "")


class BrokenStore(MemoryStore):
    async def get_task(self, task_id: str) -> TaskRecord:
        raise StoreError("disk I/O error")


async def test_a_failing_store_behind_the_datastore_is_a_store_error() -> None:
    async for client in serving(BrokenStore(), lambda port: f"grpc://127.0.0.1:{port}"):
        with pytest.raises(StoreError, match="UNAVAILABLE: disk I/O error"):
            await client.get_task("01HZZZZZZZZZZZZZZZZZZZZZZZ")


# TLS


@pytest.fixture
def certificate(tmp_path: Path) -> TlsFiles:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return TlsFiles(cert=cert, key=key)


async def test_grpcs_talks_tls_to_a_datastore_with_a_trusted_certificate(
    certificate: TlsFiles,
) -> None:
    url_of = lambda port: f"grpcs://localhost:{port}?ca={certificate.cert}"  # noqa: E731
    async for client in serving(MemoryStore(), url_of, certificate):
        task = await client.create_task(a_task())
        assert await client.get_task(task.id) == task


async def test_plain_grpc_cannot_talk_to_a_tls_datastore(certificate: TlsFiles) -> None:
    server, port = await start_server(MemoryStore(), "localhost:0", certificate)
    client = RemoteStore.from_url(f"grpc://localhost:{port}?timeout=2")
    try:
        with pytest.raises(StoreError):
            await client.open()
    finally:
        await client.close()
        await server.stop(None)


# A real datastore process


async def eventually(call: Callable[[], Awaitable[T]], within: float = 20.0) -> T:
    """The result of `call` once it stops raising StoreError (the datastore is back)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            return await call()
        except StoreError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_calls_fail_while_the_datastore_is_down_and_work_again_when_it_is_back(
    tmp_path: Path,
) -> None:
    first = DatastoreProcess(tmp_path)
    first.start()
    first.wait_ready()
    restarted = DatastoreProcess(tmp_path, first.port)
    try:
        async with remote_store(first.url) as store:
            task = await store.create_task(a_task())
            first.stop()
            with pytest.raises(StoreError, match="UNAVAILABLE"):
                await store.get_task(task.id)
            restarted.start()
            restarted.wait_ready()
            assert await eventually(lambda: store.get_task(task.id)) == task
    finally:
        first.stop()
        restarted.stop()


def sublim(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "sublim.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_the_datastore_refuses_to_serve_another_datastore() -> None:
    result = sublim("datastore", "--port", "0", "--store", "grpc://elsewhere:50051")
    assert result.returncode == 2
    assert "needs a database store, not another datastore" in result.stderr


def test_the_datastore_wants_both_tls_files_or_neither(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'd.db'}"
    result = sublim("datastore", "--port", "0", "--store", store, "--tls-cert", "c.pem")
    assert result.returncode == 2
    assert "--tls-cert and --tls-key go together" in result.stderr


# The original's configuration


def test_datastore_address_and_use_tls_point_the_service_at_a_grpcs_datastore(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATASTORE_ADDRESS", "datastore.internal:443")
    monkeypatch.setenv("USE_TLS", "true")
    service = Service.from_settings(load_settings(broker_url="memory://"))
    assert isinstance(service.store, RemoteStore)
    assert service.store.url == "grpcs://datastore.internal:443"
