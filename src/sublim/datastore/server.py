"""`sublim datastore`: the Store protocol served over gRPC, in front of any store URL.

Every RPC is one call of the store behind it. Changes to executions travel as named
modifiers (`ModifyExecutions`), applied here with the core's pure functions, or as a
client's own read-modify-write checked here (`ReadExecutions` + `CompareAndWrite`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar

import grpc

from sublim.config import Settings
from sublim.core.backends import scheme_of, store_from_url
from sublim.core.model import Change, Execution
from sublim.core.redaction import redact
from sublim.core.shutdown import stop_on_signals
from sublim.datastore import codec, inbound
from sublim.datastore import datastore_pb2 as pb
from sublim.datastore import datastore_pb2_grpc as pb_grpc
from sublim.datastore.auth import TokenGuard, require_authentication
from sublim.datastore.wire_errors import StaleRead, status_of
from sublim.errors import ConfigError, ExecutionNotFound
from sublim.store.base import Store, TaskQuery

log = logging.getLogger("sublim.datastore")

ServicerT = TypeVar("ServicerT")
RequestT = TypeVar("RequestT")
ReplyT = TypeVar("ReplyT")
Handler = Callable[[ServicerT, RequestT, Any], Awaitable[ReplyT]]

#: Largest message either side accepts (a page of 1000 executions with big payloads).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
SERVER_OPTIONS = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
)


def _package_version() -> str:
    try:
        return version("sublim")
    except PackageNotFoundError:
        return "unknown"


def reporting_errors(
    method: Handler[ServicerT, RequestT, ReplyT],
) -> Handler[ServicerT, RequestT, ReplyT]:
    """The RPC handler `method`, answering each exception with its gRPC status."""

    @functools.wraps(method)
    async def reported(self: ServicerT, request: RequestT, context: Any) -> ReplyT:
        try:
            return await method(self, request, context)
        except Exception as exc:
            code, details, metadata = status_of(exc)
            if code == grpc.StatusCode.INTERNAL:
                log.exception("%s failed", method.__name__)
            await context.abort(code, details, trailing_metadata=metadata)
            raise  # context.abort raised already; this line is never reached

    return reported


class Replay:
    """The changes a client computed, handed back to the store in order, provided every
    execution is still as the client read it; otherwise `StaleRead`, and nothing is written."""

    def __init__(self, steps: Sequence[tuple[Execution, Change]]) -> None:
        self._steps = steps
        self._next = 0

    def __call__(self, execution: Execution) -> Change:
        if self._next >= len(self._steps):
            raise StaleRead(f"execution {execution.id} appeared since it was read")
        expected, change = self._steps[self._next]
        self._next += 1
        if execution != expected:
            raise StaleRead(f"execution {execution.id} changed since it was read")
        return change


class DatastoreServicer(pb_grpc.DatastoreServicer):
    """The Datastore RPCs over one opened store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.version = _package_version()

    @reporting_errors
    async def Ping(self, request: pb.PingRequest, context: Any) -> pb.PingReply:
        await self.store.list_tasks(TaskQuery(limit=1))
        return pb.PingReply(version=self.version)

    @reporting_errors
    async def CreateTask(self, request: pb.Task, context: Any) -> pb.Task:
        created = await self.store.create_task(inbound.task(codec.task_from_pb(request)))
        return codec.task_to_pb(created)

    @reporting_errors
    async def CreateTasks(self, request: pb.Tasks, context: Any) -> pb.Tasks:
        created = await self.store.create_tasks(inbound.tasks(codec.tasks_from_pb(request)))
        return codec.tasks_to_pb(created)

    @reporting_errors
    async def GetTask(self, request: pb.TaskId, context: Any) -> pb.Task:
        return codec.task_to_pb(await self.store.get_task(inbound.task_id(request.id)))

    @reporting_errors
    async def ListTasks(self, request: pb.TaskQuery, context: Any) -> pb.TaskPage:
        page = await self.store.list_tasks(inbound.task_query(codec.task_query_from_pb(request)))
        return codec.task_page_to_pb(page)

    @reporting_errors
    async def UpdateTask(self, request: pb.UpdateTaskRequest, context: Any) -> pb.Task:
        patch = codec.patch_from_pb(request.patch)
        task_id = inbound.task_id(request.task_id)
        return codec.task_to_pb(await self.store.update_task(task_id, patch))

    @reporting_errors
    async def DeleteTask(self, request: pb.TaskId, context: Any) -> pb.Empty:
        await self.store.delete_task(inbound.task_id(request.id))
        return pb.Empty()

    @reporting_errors
    async def CreateExecutions(self, request: pb.Executions, context: Any) -> pb.Empty:
        await self.store.create_executions(inbound.executions(codec.executions_from_pb(request)))
        return pb.Empty()

    @reporting_errors
    async def GetExecution(self, request: pb.ExecutionId, context: Any) -> pb.Execution:
        execution_id = inbound.execution_id(request.id)
        return codec.execution_to_pb(await self.store.get_execution(execution_id))

    @reporting_errors
    async def ListExecutions(self, request: pb.ExecutionQuery, context: Any) -> pb.ExecutionPage:
        query = inbound.execution_query(codec.execution_query_from_pb(request))
        page = await self.store.list_executions(query)
        return codec.execution_page_to_pb(page)

    @reporting_errors
    async def ModifyExecutions(self, request: pb.ModifyRequest, context: Any) -> pb.Changes:
        modifier = inbound.modifier(codec.modifier_from_pb(request.modifier))
        changes = await self.store.modify_executions(inbound.execution_ids(request.ids), modifier)
        return codec.changes_to_pb(changes)

    @reporting_errors
    async def ReadExecutions(self, request: pb.ExecutionIds, context: Any) -> pb.Executions:
        ids = inbound.execution_ids(request.ids)
        found = [await self._row_or_none(execution_id) for execution_id in ids]
        return codec.executions_to_pb(e for e in found if e is not None)

    async def _row_or_none(self, execution_id: str) -> Execution | None:
        try:
            execution = await self.store.get_execution(execution_id)
        except ExecutionNotFound:
            return None
        return execution.model_copy(update={"events": ()})

    @reporting_errors
    async def CompareAndWrite(self, request: pb.CompareAndWriteRequest, context: Any) -> pb.Changes:
        replay = Replay(inbound.steps(codec.steps_from_pb(request)))
        changes = await self.store.modify_executions(inbound.execution_ids(request.ids), replay)
        return codec.changes_to_pb(changes)

    @reporting_errors
    async def Stats(self, request: pb.Empty, context: Any) -> pb.StoreStats:
        return codec.stats_to_pb(await self.store.stats())


# Serving ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The server's certificate chain and private key, PEM files; with `client_ca`, the CA
    bundle that every client's certificate must chain to (mutual TLS)."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    def credentials(self) -> Any:
        try:
            pair = (self.key.read_bytes(), self.cert.read_bytes())
            client_ca = self.client_ca.read_bytes() if self.client_ca else None
        except OSError as exc:
            raise ConfigError(f"cannot read the datastore's TLS files: {exc}") from exc
        return grpc.ssl_server_credentials(
            [pair], root_certificates=client_ca, require_client_auth=client_ca is not None
        )


def served_store_url(settings: Settings) -> str:
    """The store the datastore serves: `store_url` itself, never another datastore."""
    if scheme_of(settings.store_url) in {"grpc", "grpcs"}:
        raise ConfigError(
            "the datastore needs a database store, not another datastore "
            f"({redact(settings.store_url)})"
        )
    return settings.store_url


def _bind(server: Any, address: str, tls: TlsFiles | None) -> int:
    port: int = (
        server.add_secure_port(address, tls.credentials())
        if tls
        else server.add_insecure_port(address)
    )
    if port == 0:
        raise ConfigError(f"the datastore cannot listen on {address}")
    return port


async def start_server(
    store: Store, address: str, tls: TlsFiles | None = None, *, token: str | None = None
) -> tuple[Any, int]:
    """A started gRPC server for `store` on `address` ("host:port"), and its port; with
    `token`, only calls that carry it are served."""
    interceptors = [TokenGuard(token)] if token else []
    server = grpc.aio.server(options=SERVER_OPTIONS, interceptors=interceptors)
    servicer = DatastoreServicer(store)
    pb_grpc.add_DatastoreServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    port = _bind(server, address, tls)
    await server.start()
    return server, port


async def serve_datastore(settings: Settings, stop: asyncio.Event, *, grace: float = 5.0) -> None:
    """Serve `settings.store_url` on `settings.host:settings.datastore_port` until `stop`."""
    require_authentication(settings)
    tls = tls_files(settings)
    store = store_from_url(served_store_url(settings))
    await store.open()
    try:
        address = f"{settings.host}:{settings.datastore_port}"
        server, port = await start_server(store, address, tls, token=settings.datastore_token)
        _announce(settings, port, tls)
        await stop.wait()
        await server.stop(grace)
    finally:
        await store.close()


def _announce(settings: Settings, port: int, tls: TlsFiles | None) -> None:
    scheme = "grpcs" if tls else "grpc"
    # One line on stdout, that scripts (and tests) wait for.
    print(f"sublim datastore listening on {scheme}://{settings.host}:{port}", flush=True)
    log.info("serving store %s", redact(settings.store_url))


def tls_files(settings: Settings) -> TlsFiles | None:
    """The datastore's TLS files: its certificate and key, both or neither (plain gRPC), and
    the CA of client certificates (mutual TLS), which needs them."""
    cert, key = settings.datastore_tls_cert, settings.datastore_tls_key
    ca = settings.datastore_tls_ca
    if cert is None and key is None:
        if ca is not None:
            raise ConfigError(
                "datastore_tls_ca (--tls-ca) needs the datastore's own TLS files: "
                "set datastore_tls_cert and datastore_tls_key too"
            )
        return None
    if cert is None or key is None:
        raise ConfigError(
            "--tls-cert and --tls-key go together (datastore_tls_cert and datastore_tls_key): "
            "give both, or neither"
        )
    return TlsFiles(cert=cert, key=key, client_ca=ca)


async def run_datastore(settings: Settings) -> None:
    """`sublim datastore`: serve until SIGTERM or SIGINT, then stop gracefully."""
    await serve_datastore(settings, stop_on_signals())
