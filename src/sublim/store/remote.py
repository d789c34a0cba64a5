"""`grpc://host:port` and `grpcs://host:port`: a store that is a remote `sublim datastore`.

Every Store method is one RPC. `modify_executions` sends the core's named modifiers
(`sublim.core.modifiers`) in one round trip; any other function runs here, by optimistic
concurrency: read the executions, apply the function, and write the changes only if no one
changed the executions meanwhile (else read again).

A datastore that is down or slow makes calls raise `StoreError` (the API answers 503); the
gRPC channel reconnects by itself when it comes back. URL options:
`?timeout=SECONDS` (per call, default 30) and, for grpcs://, `?ca=PATH` (a PEM file of
trusted roots; default: `datastore_tls_ca`, else the system's).

Built with settings (as every process builds its store), the store authenticates as they say
(`sublim.datastore.auth`): `datastore_token`, a client certificate (`datastore_tls_cert` and
`datastore_tls_key`, grpcs:// only), and with `datastore_auth=platform` a Google ID token.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc

from sublim.config import Settings
from sublim.core.model import Change, Execution, TaskRecord
from sublim.core.modifiers import Modifier
from sublim.datastore import codec
from sublim.datastore import datastore_pb2 as pb
from sublim.datastore import datastore_pb2_grpc as pb_grpc
from sublim.datastore.auth import ClientAuth
from sublim.datastore.wire_errors import StaleRead, error_of
from sublim.errors import ConfigError, StoreError
from sublim.store._common import planned_steps
from sublim.store.base import ExecutionQuery, ModifyFn, Page, StoreStats, TaskPatch, TaskQuery

DEFAULT_PORT = 50051
DEFAULT_TIMEOUT = 30.0
#: How many times a client-side read-modify-write is tried against concurrent writers.
OPTIMISTIC_ATTEMPTS = 1000
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
CHANNEL_OPTIONS = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # Retry a lost connection quickly: the default waits up to two minutes between tries.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.keepalive_time_ms", 30_000),
)


async def _pause_before_retry(attempt: int) -> None:
    """A random pause that grows with the attempts, so that contenders spread out."""
    await asyncio.sleep(random.uniform(0, min(0.05, 0.0005 * 2**attempt)))


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the datastore's {what} {path}: {exc}") from exc


def _root_certificates(options: dict[str, list[str]], settings: Settings | None) -> bytes | None:
    if "ca" in options:
        return _read(Path(options["ca"][0]), "CA file")
    if settings is not None and settings.datastore_tls_ca is not None:
        return _read(settings.datastore_tls_ca, "CA file")
    return None


def _client_certificate(settings: Settings | None, tls: bool) -> tuple[bytes, bytes] | None:
    """The (key, certificate chain) this client presents for mutual TLS, if any."""
    if settings is None:
        return None
    cert, key = settings.datastore_tls_cert, settings.datastore_tls_key
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigError("datastore_tls_cert and datastore_tls_key go together: give both")
    if not tls:
        raise ConfigError("a client certificate (datastore_tls_cert) needs a grpcs:// store URL")
    return _read(key, "TLS key"), _read(cert, "TLS certificate")


class RemoteStore:
    """The Store protocol, each method one call to a `sublim datastore`."""

    def __init__(
        self,
        target: str,
        *,
        tls: bool = False,
        root_certificates: bytes | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        client_certificate: tuple[bytes, bytes] | None = None,
        auth: ClientAuth | None = None,
    ) -> None:
        self.target = target
        self.tls = tls
        self.timeout = timeout
        self.auth = auth or ClientAuth()
        self._root_certificates = root_certificates
        self._client_certificate = client_certificate
        self._channel: Any = None
        self._stub: Any = None

    @classmethod
    def from_url(cls, url: str, settings: Settings | None = None) -> RemoteStore:
        """The store at `url`; with `settings`, authenticating as they say."""
        parts = urlsplit(url)
        if parts.scheme not in {"grpc", "grpcs"} or not parts.hostname:
            raise ConfigError(f"expected grpc://HOST:PORT or grpcs://HOST:PORT, got {url!r}")
        options = parse_qs(parts.query)
        tls = parts.scheme == "grpcs"
        return cls(
            f"{parts.hostname}:{parts.port or DEFAULT_PORT}",
            tls=tls,
            root_certificates=_root_certificates(options, settings),
            timeout=float(options.get("timeout", [DEFAULT_TIMEOUT])[0]),
            client_certificate=_client_certificate(settings, tls),
            auth=ClientAuth.from_settings(settings, url) if settings else None,
        )

    @property
    def url(self) -> str:
        return f"{'grpcs' if self.tls else 'grpc'}://{self.target}"

    # Lifecycle

    async def open(self) -> None:
        """Open the channel (once) and check that the datastore answers."""
        if self._channel is None:
            self._channel = self._new_channel()
            self._stub = pb_grpc.DatastoreStub(self._channel)  # type: ignore[no-untyped-call]
        await self.ping(wait=True)

    def _new_channel(self) -> Any:
        if not self.tls:
            interceptors = self.auth.interceptors() if self.auth else None
            return grpc.aio.insecure_channel(
                self.target, options=CHANNEL_OPTIONS, interceptors=interceptors
            )
        return grpc.aio.secure_channel(self.target, self._credentials(), options=CHANNEL_OPTIONS)

    def _credentials(self) -> Any:
        key, chain = self._client_certificate or (None, None)
        channel = grpc.ssl_channel_credentials(
            root_certificates=self._root_certificates, private_key=key, certificate_chain=chain
        )
        if not self.auth:
            return channel
        return grpc.composite_channel_credentials(channel, self.auth.call_credentials())

    async def close(self) -> None:
        if self._channel is not None:
            channel, self._channel, self._stub = self._channel, None, None
            await channel.close()

    async def ping(self, *, wait: bool = False) -> str:
        """The datastore's version, once it has reached its own store; with `wait`, wait
        (up to the call timeout) for a datastore that is starting."""
        reply: pb.PingReply = await self._call("Ping", pb.PingRequest(), wait_for_ready=wait)
        return reply.version

    async def _call(self, method: str, request: Any, *, wait_for_ready: bool = False) -> Any:
        if self._stub is None:
            raise StoreError(f"the store {self.url} is not open")
        rpc = getattr(self._stub, method)
        try:
            return await rpc(request, timeout=self.timeout, wait_for_ready=wait_for_ready)
        except grpc.aio.AioRpcError as exc:
            raise error_of(exc, self.target) from exc

    # Tasks

    async def create_task(self, task: TaskRecord) -> TaskRecord:
        return codec.task_from_pb(await self._call("CreateTask", codec.task_to_pb(task)))

    async def create_tasks(self, tasks: Sequence[TaskRecord]) -> list[TaskRecord]:
        if not tasks:
            return []
        return codec.tasks_from_pb(await self._call("CreateTasks", codec.tasks_to_pb(tasks)))

    async def get_task(self, task_id: str) -> TaskRecord:
        return codec.task_from_pb(await self._call("GetTask", pb.TaskId(id=task_id)))

    async def list_tasks(self, query: TaskQuery) -> Page[TaskRecord]:
        reply = await self._call("ListTasks", codec.task_query_to_pb(query))
        return codec.task_page_from_pb(reply)

    async def update_task(self, task_id: str, patch: TaskPatch) -> TaskRecord:
        reply = await self._call("UpdateTask", codec.patch_to_pb(task_id, patch))
        return codec.task_from_pb(reply)

    async def delete_task(self, task_id: str) -> None:
        await self._call("DeleteTask", pb.TaskId(id=task_id))

    # Executions

    async def create_executions(self, executions: Sequence[Execution]) -> None:
        if executions:
            await self._call("CreateExecutions", codec.executions_to_pb(executions))

    async def get_execution(self, execution_id: str) -> Execution:
        reply = await self._call("GetExecution", pb.ExecutionId(id=execution_id))
        return codec.execution_from_pb(reply)

    async def list_executions(self, query: ExecutionQuery) -> Page[Execution]:
        reply = await self._call("ListExecutions", codec.execution_query_to_pb(query))
        return codec.execution_page_from_pb(reply)

    async def modify_executions(self, ids: Sequence[str], fn: ModifyFn) -> list[Change]:
        if isinstance(fn, Modifier):  # every named modifier, sent by name
            return await self._modify_remotely(ids, fn)
        return await self._modify_optimistically(ids, fn)

    async def _modify_remotely(self, ids: Sequence[str], modifier: Modifier) -> list[Change]:
        request = pb.ModifyRequest(ids=ids, modifier=codec.modifier_to_pb(modifier))
        return codec.changes_from_pb(await self._call("ModifyExecutions", request))

    async def _modify_optimistically(self, ids: Sequence[str], fn: ModifyFn) -> list[Change]:
        for attempt in range(OPTIMISTIC_ATTEMPTS):
            steps = planned_steps(ids, await self._read_rows(ids), fn)
            try:
                reply = await self._call("CompareAndWrite", codec.steps_to_pb(ids, steps))
            except StaleRead:
                await _pause_before_retry(attempt)
                continue
            return codec.changes_from_pb(reply)
        tries = OPTIMISTIC_ATTEMPTS
        raise StoreError(f"executions {list(ids)} kept changing: {tries} tries failed")

    async def _read_rows(self, ids: Sequence[str]) -> dict[str, Execution]:
        reply = await self._call("ReadExecutions", pb.ExecutionIds(ids=sorted(set(ids))))
        return {execution.id: execution for execution in codec.executions_from_pb(reply)}

    async def stats(self) -> StoreStats:
        return codec.stats_from_pb(await self._call("Stats", pb.Empty()))
