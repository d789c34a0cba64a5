"""Idempotency-Key on POST /v1/tasks and POST /v1/tasks/{id}/executions."""

from __future__ import annotations

import asyncio

import httpx

from tests.api.conftest import ApiProcess, assert_problem, create_task


def _count_tasks(client: httpx.Client, topic: str) -> int:
    return len(client.get("/v1/tasks", params={"topic": topic}).json()["items"])


def test_a_retried_create_with_the_same_key_returns_the_first_response(
    client: httpx.Client, topic: str
) -> None:
    headers = {"Idempotency-Key": f"create-{topic}"}
    first = client.post("/v1/tasks", json={"topic": topic, "execute": True}, headers=headers)
    again = client.post("/v1/tasks", json={"topic": topic, "execute": True}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert _count_tasks(client, topic) == 1


def test_the_same_key_with_a_different_body_is_a_422(client: httpx.Client, topic: str) -> None:
    headers = {"Idempotency-Key": f"reuse-{topic}"}
    assert client.post("/v1/tasks", json={"topic": topic}, headers=headers).status_code == 201
    reused = client.post("/v1/tasks", json={"topic": topic, "name": "other"}, headers=headers)
    assert_problem(reused, 422)
    assert _count_tasks(client, topic) == 1


def test_requests_without_a_key_are_never_deduplicated(client: httpx.Client, topic: str) -> None:
    client.post("/v1/tasks", json={"topic": topic})
    client.post("/v1/tasks", json={"topic": topic})
    assert _count_tasks(client, topic) == 2


def test_concurrent_requests_with_one_key_create_one_task(api: ApiProcess, topic: str) -> None:
    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=api.url) as http:
            headers = {"Idempotency-Key": f"race-{topic}"}
            sends = [
                http.post("/v1/tasks", json={"topic": topic}, headers=headers) for _ in range(20)
            ]
            return await asyncio.gather(*sends)

    responses = asyncio.run(send_all())
    assert {r.json()["id"] for r in responses} == {responses[0].json()["id"]}
    with api.client() as http:
        assert _count_tasks(http, topic) == 1


def test_a_retried_enqueue_with_the_same_key_enqueues_once(
    client: httpx.Client, topic: str
) -> None:
    task = create_task(client, topic)
    url, headers = f"/v1/tasks/{task['id']}/executions", {"Idempotency-Key": "enqueue-1"}
    first, again = client.post(url, headers=headers), client.post(url, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert len(client.get(url).json()["items"]) == 1


def test_a_key_is_scoped_to_its_route(client: httpx.Client, topic: str) -> None:
    first, second = create_task(client, topic), create_task(client, topic)
    headers = {"Idempotency-Key": f"shared-{topic}"}
    one = client.post(f"/v1/tasks/{first['id']}/executions", headers=headers).json()
    two = client.post(f"/v1/tasks/{second['id']}/executions", headers=headers).json()
    assert one["id"] != two["id"]
