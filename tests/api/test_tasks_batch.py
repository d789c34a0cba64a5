"""POST /v1/tasks:batch: many tasks in one call, against a real `sublim api` process (and,
for a broker with a small message limit, in process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sublim.broker.memory import MemoryBroker
from sublim.config import Settings
from sublim.core.service import Service
from sublim.store.memory import MemoryStore
from tests.api.conftest import assert_problem, in_process_http

BATCH = "/v1/tasks:batch"


def tasks_of(client: httpx.Client, topic: str) -> list[dict[str, Any]]:
    response = client.get("/v1/tasks", params={"topic": topic, "limit": 1000})
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_a_batch_answers_201_with_its_tasks_in_the_order_given(
    client: httpx.Client, topic: str
) -> None:
    tasks = [{"topic": topic, "name": f"n{i}", "payload": {"i": i}} for i in range(20)]
    response = client.post(BATCH, json={"tasks": tasks})
    assert response.status_code == 201, response.text
    items = response.json()["items"]
    assert [item["name"] for item in items] == [f"n{i}" for i in range(20)]
    assert [item["payload"] for item in items] == [{"i": i} for i in range(20)]
    assert {item["id"] for item in items} == {task["id"] for task in tasks_of(client, topic)}


def test_executed_tasks_of_a_batch_come_back_with_their_dispatched_execution(
    client: httpx.Client, topic: str
) -> None:
    tasks = [{"topic": topic, "execute": True, "max_attempts": 2}, {"topic": topic}]
    executed, plain = client.post(BATCH, json={"tasks": tasks}).json()["items"]
    execution = executed["execution"]
    assert execution["status"] == "Dispatched"
    assert execution["max_attempts"] == 2
    assert executed["latest_execution"]["id"] == execution["id"]
    assert plain["execution"] is None
    assert plain["latest_execution"] is None


def test_a_batch_of_a_thousand_tasks_is_taken(client: httpx.Client, topic: str) -> None:
    response = client.post(BATCH, json={"tasks": [{"topic": topic}] * 1000})
    assert response.status_code == 201, response.text
    assert len(response.json()["items"]) == 1000


def test_a_batch_over_a_thousand_tasks_is_a_422_and_creates_nothing(
    client: httpx.Client, topic: str
) -> None:
    assert_problem(client.post(BATCH, json={"tasks": [{"topic": topic}] * 1001}), 422)
    assert tasks_of(client, topic) == []


def test_an_empty_batch_is_a_422(client: httpx.Client) -> None:
    assert_problem(client.post(BATCH, json={"tasks": []}), 422)


def test_a_task_that_does_not_validate_is_a_422_naming_its_index_and_nothing_is_created(
    client: httpx.Client, topic: str
) -> None:
    tasks = [{"topic": topic}, {"topic": topic, "max_attempts": 0}]
    problem = assert_problem(client.post(BATCH, json={"tasks": tasks}), 422)
    assert [error["loc"][:3] for error in problem["errors"]] == [["body", "tasks", 1]]
    assert tasks_of(client, topic) == []


def test_a_task_over_the_label_cap_is_a_422_naming_its_index(
    client: httpx.Client, topic: str
) -> None:
    labels = {f"k{i}": "v" for i in range(100)}
    tasks = [{"topic": topic}, {"topic": topic}, {"topic": topic, "labels": labels}]
    problem = assert_problem(client.post(BATCH, json={"tasks": tasks}), 422)
    assert problem["detail"].startswith("tasks[2]: ")
    assert tasks_of(client, topic) == []


def test_the_batch_route_is_not_taken_for_a_task_id(client: httpx.Client) -> None:
    assert client.get(BATCH).status_code == 405
    assert_problem(client.get("/v1/tasks/batch"), 422)


def test_a_retried_batch_with_the_same_key_returns_the_first_response(
    client: httpx.Client, topic: str
) -> None:
    headers = {"Idempotency-Key": f"batch-{topic}"}
    body = {"tasks": [{"topic": topic, "execute": True}, {"topic": topic}]}
    first = client.post(BATCH, json=body, headers=headers)
    again = client.post(BATCH, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert len(tasks_of(client, topic)) == 2


def test_the_same_key_with_a_different_batch_is_a_422(client: httpx.Client, topic: str) -> None:
    headers = {"Idempotency-Key": f"batch-reuse-{topic}"}
    first = client.post(BATCH, json={"tasks": [{"topic": topic}]}, headers=headers)
    assert first.status_code == 201
    other = {"tasks": [{"topic": topic}, {"topic": topic}]}
    assert_problem(client.post(BATCH, json=other, headers=headers), 422)
    assert len(tasks_of(client, topic)) == 1


def test_the_route_is_in_the_openapi_document(client: httpx.Client) -> None:
    operation = client.get("/openapi.json").json()["paths"][BATCH]["post"]
    assert {"201", "413", "422"} <= operation["responses"].keys()


class SmallBroker(MemoryBroker):
    max_message_bytes = 2048


@pytest.fixture
async def small() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(store_url="memory://", broker_url="memory://")
    service = Service(MemoryStore(), SmallBroker(), settings)
    async with service, in_process_http(service) as http:
        yield http


async def test_an_execution_too_large_for_the_broker_is_a_413_naming_its_index(
    small: httpx.AsyncClient,
) -> None:
    tasks = [
        {"topic": "Thing", "execute": True},
        {"topic": "Thing", "payload": {"blob": "x" * 4096}, "execute": True},
    ]
    problem = assert_problem(await small.post(BATCH, json={"tasks": tasks}), 413)
    assert problem["detail"].startswith("tasks[1]: ")
    assert problem["limit_bytes"] == SmallBroker.max_message_bytes
    assert (await small.get("/v1/tasks")).json()["items"] == []
