"""Failures a real process cannot easily be made to show, in process (httpx.ASGITransport)."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.routing import APIRoute

from sublim.api import events, routes_executions, routes_ops, routes_tasks, updates
from sublim.api.auth import authorize
from sublim.api.idempotency import IdempotencyCache
from sublim.broker.memory import MemoryBroker
from sublim.config import Settings
from sublim.core.ids import new_ulid
from sublim.core.service import Service
from sublim.errors import BrokerError, StoreError
from sublim.store.memory import MemoryStore
from tests.api.conftest import assert_problem, in_process_http


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    settings = Settings(store_url="memory://", broker_url="memory://")
    async with Service(MemoryStore(), MemoryBroker(), settings) as svc:
        yield svc


@pytest.fixture
async def http(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process_http(service) as client:
        yield client


async def test_a_store_outage_is_a_503_with_retry_after(
    http: httpx.AsyncClient, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(*args: object) -> None:
        raise StoreError("database is locked")

    monkeypatch.setattr(service.store, "get_task", down)
    response = await http.get("/v1/tasks/01HZZZZZZZZZZZZZZZZZZZZZZZ")
    assert_problem(response, 503)
    assert int(response.headers["retry-after"]) > 0


async def test_an_unexpected_error_is_a_500_without_internals(
    http: httpx.AsyncClient,
    service: Service,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(*args: object) -> None:
        raise RuntimeError("secret internals at 0xdeadbeef")

    monkeypatch.setattr(service.store, "get_task", broken)
    response = await http.get("/v1/tasks/01HZZZZZZZZZZZZZZZZZZZZZZZ")
    body = assert_problem(response, 500)
    assert "secret internals" not in response.text
    assert "RuntimeError" not in body["detail"]
    assert "secret internals" in caplog.text  # logged on the server side


async def test_readyz_is_a_503_while_the_broker_is_down(
    http: httpx.AsyncClient, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(*args: object) -> None:
        raise BrokerError("connection refused")

    monkeypatch.setattr(service.broker, "ensure_subscription", down)
    assert_problem(await http.get("/readyz"), 503)
    assert (await http.get("/healthz")).status_code == 200


async def test_a_pushed_update_during_a_store_outage_is_a_503_so_that_it_comes_again(
    http: httpx.AsyncClient, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.api.conftest import push_envelope

    async def down(*args: object) -> None:
        raise StoreError("disk full")

    monkeypatch.setattr(service.store, "modify_executions", down)
    ids = {"execution_id": new_ulid(), "task_id": new_ulid()}
    update = ids | {"attempt": 1, "seq": 1, "status": "Running"}
    assert_problem(await http.post("/task_execution_update", json=push_envelope(update)), 503)


async def test_the_idempotency_cache_forgets_after_its_ttl_and_beyond_its_size() -> None:
    now = [0.0]
    cache = IdempotencyCache(ttl=10, max_entries=2, clock=lambda: now[0])

    async def produce() -> tuple[int, object]:
        return 201, {"n": len(cache)}

    assert (await cache.run("a", "f", produce)).replayed is False
    assert (await cache.run("a", "f", produce)).replayed is True
    await cache.run("b", "f", produce)
    await cache.run("c", "f", produce)
    assert len(cache) == 2
    assert (await cache.run("a", "f", produce)).replayed is False  # evicted: oldest first
    now[0] = 11.0
    assert (await cache.run("c", "f", produce)).replayed is False  # expired


async def test_a_failed_response_is_not_kept_for_replay() -> None:
    cache = IdempotencyCache()
    statuses = iter([503, 201])

    async def produce() -> tuple[int, object]:
        return next(statuses), {}

    assert (await cache.run("k", "f", produce)).status == 503
    assert (await cache.run("k", "f", produce)).status == 201


def _calls(dependant: Dependant) -> Iterator[Any]:
    yield dependant.call
    for dependency in dependant.dependencies:
        yield from _calls(dependency)


def _runs_on_the_loop(call: Any) -> bool:
    return inspect.iscoroutinefunction(call) or (
        not inspect.isclass(call) and inspect.iscoroutinefunction(type(call).__call__)
    )


def test_no_endpoint_or_dependency_runs_in_the_thread_pool() -> None:
    """FastAPI runs a sync endpoint or dependency (or a class's __init__) in its thread
    pool: a thread hop on every request."""
    routers = [routes_tasks, routes_executions, events, updates, routes_ops]
    routes = [r for module in routers for r in module.router.routes if isinstance(r, APIRoute)]
    assert len(routes) > 10
    dependants = [route.dependant for route in routes] + [get_dependant(path="", call=authorize)]
    for dependant in dependants:
        sync = [call for call in _calls(dependant) if not _runs_on_the_loop(call)]
        assert sync == [], dependant.path
