"""The gRPC datastore has a lock: a token or mutual TLS, and no open datastore beyond loopback.

Before issue 10, anyone who reached `sublim datastore` could read every payload and write any
execution (a full bypass of the API's tokens); each test here failed then.
"""

from __future__ import annotations

import datetime
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sublim.config import load_settings
from sublim.core.backends import store_from_url
from sublim.datastore import codec
from sublim.datastore import datastore_pb2 as pb
from sublim.datastore import datastore_pb2_grpc as pb_grpc
from sublim.datastore.server import TlsFiles, start_server
from sublim.errors import ConfigError, StoreError
from sublim.store.base import Store, TaskQuery
from sublim.store.memory import MemoryStore
from tests.contract.store_builders import a_task
from tests.datastore_process import DatastoreProcess, _child_env

TOKEN = "s3cret-datastore-token-0123456789"


# Test certificates ------------------------------------------------------------------------


@dataclass(frozen=True)
class Pem:
    cert: Path
    key: Path


class Authority:
    """A throwaway certificate authority that issues server and client certificates."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        ca = x509.BasicConstraints(ca=True, path_length=None)
        builder = _certificate(self.name, self.name, self.key.public_key())
        self.cert = builder.add_extension(ca, critical=True).sign(self.key, hashes.SHA256())
        self.cert_path = directory / f"{name}-ca.pem"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, common_name: str, usage: x509.ObjectIdentifier) -> Pem:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        builder = _certificate(subject, self.name, key.public_key())
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        names = x509.SubjectAlternativeName([x509.DNSName(common_name)])
        cert = builder.add_extension(names, critical=False).sign(self.key, hashes.SHA256())
        pem = Pem(self.directory / f"{common_name}.pem", self.directory / f"{common_name}.key")
        pem.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        pem.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return pem


def _certificate(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


@dataclass(frozen=True)
class Pki:
    server_ca: Authority
    server: Pem
    client_ca: Authority
    client: Pem
    stranger: Pem  # a client certificate from a CA the datastore does not trust


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    server_ca, client_ca = Authority(directory, "servers"), Authority(directory, "clients")
    other_ca = Authority(directory, "others")
    return Pki(
        server_ca=server_ca,
        server=server_ca.issue("localhost", ExtendedKeyUsageOID.SERVER_AUTH),
        client_ca=client_ca,
        client=client_ca.issue("api", ExtendedKeyUsageOID.CLIENT_AUTH),
        stranger=other_ca.issue("stranger", ExtendedKeyUsageOID.CLIENT_AUTH),
    )


# Helpers --------------------------------------------------------------------------------


@dataclass
class Guarded:
    backend: MemoryStore
    port: int


@pytest.fixture
async def guarded() -> AsyncIterator[Guarded]:
    """A datastore over a memory store that requires TOKEN, on plaintext gRPC."""
    backend = MemoryStore()
    server, port = await start_server(backend, "127.0.0.1:0", token=TOKEN)
    try:
        yield Guarded(backend, port)
    finally:
        await server.stop(None)


async def raw_call(
    port: int, method: str, request: object, metadata: tuple[tuple[str, str], ...] = ()
) -> object:
    """One RPC with a bare generated stub: no sublim client in the way."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.DatastoreStub(channel)  # type: ignore[no-untyped-call]
        return await getattr(stub, method)(request, metadata=metadata, timeout=5)


def a_task_pb() -> pb.Task:
    return codec.task_to_pb(a_task())


async def opened(url: str, **settings: object) -> Store:
    store = store_from_url(url, load_settings(None, **settings))
    await store.open()
    return store


# The token ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "metadata",
    [(), (("authorization", "Bearer wrong-token-wrong-token"),), (("authorization", TOKEN),)],
    ids=["no token", "a wrong token", "the token without Bearer"],
)
async def test_a_call_without_the_token_is_unauthenticated_and_writes_nothing(
    guarded: Guarded, metadata: tuple[tuple[str, str], ...]
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await raw_call(guarded.port, "CreateTask", a_task_pb(), metadata)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert (await guarded.backend.list_tasks(TaskQuery())).items == []


async def test_a_call_without_the_token_reads_nothing(guarded: Guarded) -> None:
    await guarded.backend.create_task(a_task())
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await raw_call(guarded.port, "ListTasks", pb.TaskQuery(limit=10))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_raw_call_with_the_token_is_served(guarded: Guarded) -> None:
    metadata = (("authorization", f"Bearer {TOKEN}"),)
    await raw_call(guarded.port, "CreateTask", a_task_pb(), metadata)
    assert len((await guarded.backend.list_tasks(TaskQuery())).items) == 1


async def test_a_grpc_store_with_the_token_setting_works(guarded: Guarded) -> None:
    store = await opened(f"grpc://127.0.0.1:{guarded.port}", datastore_token=TOKEN)
    try:
        task = await store.create_task(a_task())
        assert await store.get_task(task.id) == task
    finally:
        await store.close()


async def test_a_grpc_store_without_the_token_setting_is_refused(guarded: Guarded) -> None:
    with pytest.raises(StoreError, match="UNAUTHENTICATED"):
        await opened(f"grpc://127.0.0.1:{guarded.port}?timeout=5")


async def test_a_grpcs_store_sends_the_token_as_call_credentials(pki: Pki) -> None:
    backend = MemoryStore()
    tls = TlsFiles(cert=pki.server.cert, key=pki.server.key)
    server, port = await start_server(backend, "localhost:0", tls, token=TOKEN)
    url = f"grpcs://localhost:{port}?ca={pki.server_ca.cert_path}"
    try:
        store = await opened(url, datastore_token=TOKEN)
        await store.create_task(a_task())
        await store.close()
        with pytest.raises(StoreError, match="UNAUTHENTICATED"):
            await opened(url + "&timeout=5")
    finally:
        await server.stop(None)
    assert len((await backend.list_tasks(TaskQuery())).items) == 1


def test_a_token_shorter_than_16_characters_is_refused_at_start() -> None:
    with pytest.raises(ConfigError, match=r"datastore_token: .*at least 16 characters"):
        load_settings(datastore_token="short-token")
    with pytest.raises(ConfigError, match="at least 16 characters"):
        load_settings(datastore_token="")


# Mutual TLS -----------------------------------------------------------------------------


@pytest.fixture
async def mutual_tls(pki: Pki) -> AsyncIterator[tuple[MemoryStore, str]]:
    """A datastore that requires a client certificate of pki.client_ca; its grpcs:// URL."""
    backend = MemoryStore()
    tls = TlsFiles(cert=pki.server.cert, key=pki.server.key, client_ca=pki.client_ca.cert_path)
    server, port = await start_server(backend, "localhost:0", tls)
    try:
        yield backend, f"grpcs://localhost:{port}?timeout=3"
    finally:
        await server.stop(None)


async def test_mutual_tls_refuses_a_client_without_a_certificate(
    mutual_tls: tuple[MemoryStore, str], pki: Pki
) -> None:
    backend, url = mutual_tls
    with pytest.raises(StoreError):
        await opened(url, datastore_tls_ca=pki.server_ca.cert_path)
    assert (await backend.list_tasks(TaskQuery())).items == []


async def test_mutual_tls_refuses_a_certificate_from_another_authority(
    mutual_tls: tuple[MemoryStore, str], pki: Pki
) -> None:
    _, url = mutual_tls
    with pytest.raises(StoreError):
        await opened(
            url,
            datastore_tls_ca=pki.server_ca.cert_path,
            datastore_tls_cert=pki.stranger.cert,
            datastore_tls_key=pki.stranger.key,
        )


async def test_mutual_tls_serves_a_client_with_a_certificate_of_its_authority(
    mutual_tls: tuple[MemoryStore, str], pki: Pki
) -> None:
    backend, url = mutual_tls
    store = await opened(
        url,
        datastore_tls_ca=pki.server_ca.cert_path,
        datastore_tls_cert=pki.client.cert,
        datastore_tls_key=pki.client.key,
    )
    try:
        task = await store.create_task(a_task())
    finally:
        await store.close()
    assert await backend.get_task(task.id) == task


def test_a_client_certificate_on_plaintext_grpc_is_a_config_error(pki: Pki) -> None:
    settings = load_settings(datastore_tls_cert=pki.client.cert, datastore_tls_key=pki.client.key)
    with pytest.raises(ConfigError, match="needs a grpcs:// store URL"):
        store_from_url("grpc://localhost:50051", settings)


# Starting beyond loopback ---------------------------------------------------------------


def sublim_datastore(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "sublim.cli", "datastore", "--port", "0"]
    command += ["--store", f"sqlite:///{tmp_path / 'd.db'}", *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, env=_child_env() | env
    )


def test_the_datastore_on_every_interface_without_authentication_refuses_to_start(
    tmp_path: Path,
) -> None:
    result = sublim_datastore(tmp_path, "--host", "0.0.0.0")
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "listen on 0.0.0.0 without authentication" in message
    for setting in ("SUBLIM_DATASTORE_TOKEN", "SUBLIM_DATASTORE_TLS_CA", "SUBLIM_DATASTORE_AUTH"):
        assert setting in message
    assert not (tmp_path / "d.db").exists()


def test_a_datastore_with_tls_but_no_client_ca_is_not_authenticated(
    tmp_path: Path, pki: Pki
) -> None:
    tls = ("--tls-cert", str(pki.server.cert), "--tls-key", str(pki.server.key))
    result = sublim_datastore(tmp_path, "--host", "0.0.0.0", *tls)
    assert result.returncode == 2
    assert "without authentication" in " ".join(result.stderr.split())


def test_a_host_that_only_looks_like_loopback_needs_authentication(tmp_path: Path) -> None:
    result = sublim_datastore(tmp_path, "--host", "127.attacker.example")
    assert result.returncode == 2
    assert "without authentication" in " ".join(result.stderr.split())


def test_the_platform_setting_is_what_lets_the_datastore_start_without_a_token(
    tmp_path: Path,
) -> None:
    assert sublim_datastore(tmp_path, "--host", "0.0.0.0").returncode == 2
    datastore = DatastoreProcess(
        tmp_path, 0, "--host", "0.0.0.0", env={"SUBLIM_DATASTORE_AUTH": "platform"}
    )
    datastore.start()
    try:
        assert datastore.wait_ready().startswith("grpc://0.0.0.0:")
    finally:
        datastore.stop()


async def test_a_datastore_process_on_every_interface_with_a_token_refuses_a_raw_call(
    tmp_path: Path,
) -> None:
    env = {"SUBLIM_DATASTORE_TOKEN": TOKEN}
    datastore = DatastoreProcess(tmp_path, 0, "--host", "0.0.0.0", env=env)
    datastore.start()
    try:
        datastore.wait_ready()
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await raw_call(datastore.port, "CreateTask", a_task_pb())
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        store = await opened(f"grpc://127.0.0.1:{datastore.port}", datastore_token=TOKEN)
        assert (await store.list_tasks(TaskQuery())).items == []
        await store.close()
    finally:
        datastore.stop()
