"""Cursor pagination over a few thousand tasks created concurrently."""

from __future__ import annotations

import asyncio

import httpx

from tests.api.conftest import ApiProcess

TASKS = 3000
CONCURRENCY = 32


async def _create_many(api: ApiProcess, topic: str, count: int) -> list[str]:
    limit = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(
        base_url=api.url, timeout=60.0, limits=httpx.Limits(max_connections=CONCURRENCY)
    ) as http:

        async def create(index: int) -> str:
            async with limit:
                response = await http.post(
                    "/v1/tasks",
                    json={
                        "topic": topic,
                        "payload": {"i": index},
                        "labels": {"half": str(index % 2)},
                    },
                )
            assert response.status_code == 201, response.text
            task_id: str = response.json()["id"]
            return task_id

        return await asyncio.gather(*(create(i) for i in range(count)))


def _all_pages(client: httpx.Client, params: dict[str, str | int]) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        query = params | ({"cursor": cursor} if cursor else {})
        body = client.get("/v1/tasks", params=query).json()
        pages.append([item["id"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


def test_paging_through_thousands_of_tasks_has_no_repeats_and_no_gaps(
    api: ApiProcess, client: httpx.Client, topic: str
) -> None:
    created = asyncio.run(_create_many(api, topic, TASKS))
    pages = _all_pages(client, {"topic": topic, "limit": 250})
    seen = [task_id for page in pages for task_id in page]
    assert len(pages) == TASKS // 250  # no empty last page: the store looks one item ahead
    assert len(seen) == len(set(seen)) == TASKS
    assert set(seen) == set(created)
    assert seen == sorted(seen, reverse=True)  # newest first

    halves = [
        task_id
        for page in _all_pages(client, {"topic": topic, "label": "half:1", "limit": 333})
        for task_id in page
    ]
    assert len(halves) == len(set(halves)) == TASKS // 2
