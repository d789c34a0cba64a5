"""DNS rebinding: a web page whose name resolves to 127.0.0.1 reaches an API that serves
without tokens, but its requests carry the page's name in `Host`, which is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest

from sublim.broker.memory import MemoryBroker
from sublim.config import Settings
from sublim.core.service import Service
from sublim.store.memory import MemoryStore
from tests.api.conftest import ApiProcess, assert_problem, in_process_http, start_api

TOKEN = "rebinding-test-token-0123"


@asynccontextmanager
async def client_of(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        Service(MemoryStore(), MemoryBroker(), settings) as service,
        in_process_http(service) as http,
    ):
        yield http


@pytest.fixture
async def open_api() -> AsyncIterator[httpx.AsyncClient]:
    """An API that serves without tokens (loopback, auth=auto)."""
    async with client_of(Settings(store_url="memory://", broker_url="memory://")) as http:
        yield http


@pytest.fixture
async def secured_api() -> AsyncIterator[httpx.AsyncClient]:
    """An API on every interface, which requires tokens."""
    settings = Settings(
        store_url="memory://", broker_url="memory://", host="0.0.0.0", api_tokens={TOKEN: ["admin"]}
    )
    async with client_of(settings) as http:
        yield http


@pytest.fixture(scope="module")
def api_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    process = start_api(tmp_path_factory.mktemp("rebinding"), {})
    yield process
    process.stop()


@pytest.mark.parametrize(
    "host",
    ["attacker.example", "attacker.example:8080", "127.0.0.1.attacker.example", "127.1", ""],
)
async def test_a_foreign_host_is_refused_while_auth_is_off(
    open_api: httpx.AsyncClient, host: str
) -> None:
    response = await open_api.get("/v1/tasks", headers={"Host": host})
    body = assert_problem(response, 421)
    assert "loopback Host names" in body["detail"]


async def test_a_foreign_host_changes_nothing(open_api: httpx.AsyncClient) -> None:
    refused = await open_api.post(
        "/v1/tasks", json={"topic": "Rebound"}, headers={"Host": "attacker.example"}
    )
    assert refused.status_code == 421
    assert (await open_api.get("/v1/tasks")).json()["items"] == []


async def test_even_health_is_refused_to_a_foreign_host(open_api: httpx.AsyncClient) -> None:
    assert (await open_api.get("/healthz", headers={"Host": "attacker.example"})).status_code == 421


@pytest.mark.parametrize(
    "host", ["localhost:8080", "localhost", "LOCALHOST", "127.0.0.1", "127.9.8.7:80", "[::1]:8080"]
)
async def test_loopback_hosts_are_served_while_auth_is_off(
    open_api: httpx.AsyncClient, host: str
) -> None:
    assert (await open_api.get("/v1/tasks", headers={"Host": host})).status_code == 200


async def test_with_tokens_required_any_host_is_served(secured_api: httpx.AsyncClient) -> None:
    headers = {"Host": "api.example.com", "Authorization": f"Bearer {TOKEN}"}
    assert (await secured_api.get("/v1/tasks", headers=headers)).status_code == 200
    assert (await secured_api.get("/healthz", headers={"Host": "10.0.0.7:8080"})).status_code == 200


def test_a_real_server_refuses_a_rebound_host(api_process: ApiProcess) -> None:
    port = api_process.url.rsplit(":", 1)[1]
    with api_process.client() as http:
        assert http.get("/v1/tasks").status_code == 200
        assert http.get("/v1/tasks", headers={"Host": f"localhost:{port}"}).status_code == 200
        refused = http.get("/v1/tasks", headers={"Host": f"attacker.example:{port}"})
    assert_problem(refused, 421)
