"""AsyncClient: the same methods, awaited, with the same answers and errors as Client."""

from __future__ import annotations

import asyncio

import pytest

import sublim
from sublim.core.model import Event, TaskStatus
from sublim.errors import AuthError, Conflict, ExecutionNotFound, TaskNotFound, Unreachable
from tests.api.conftest import READER, ApiProcess, free_port, push, update_of


async def test_tasks_are_created_read_updated_listed_and_deleted(
    async_client: sublim.AsyncClient, topic: str
) -> None:
    created = await async_client.create_task(topic, {"n": 1}, name="n", labels={"k": "v"})
    updated = await async_client.update_task(created.id, name="m")
    listed = await async_client.list_tasks(topic, labels={"k": "v"})
    assert (await async_client.get_task(created.id)).name == updated.name == "m"
    assert [task.id for task in listed.items] == [created.id]
    await async_client.delete_task(created.id)
    with pytest.raises(TaskNotFound):
        await async_client.get_task(created.id)


async def test_iter_tasks_and_iter_executions_follow_the_cursors(
    async_client: sublim.AsyncClient, topic: str
) -> None:
    tasks = [await async_client.create_task(topic) for _ in range(5)]
    executions = [await async_client.enqueue(tasks[0].id) for _ in range(3)]
    assert [t.id async for t in async_client.iter_tasks(topic, page_size=2)] == [
        task.id for task in reversed(tasks)
    ]
    assert [e.id async for e in async_client.iter_executions(tasks[0].id, page_size=2)] == [
        execution.id for execution in reversed(executions)
    ]


async def test_executions_are_enqueued_listed_cancelled_and_retried(
    async_client: sublim.AsyncClient, topic: str
) -> None:
    task = await async_client.create_task(topic)
    execution = await async_client.enqueue(task.id, idempotency_key="a")
    cancelled = await async_client.cancel(execution.id)
    retried = await async_client.retry(execution.id)
    listed = await async_client.list_executions(status=TaskStatus.CANCELLED, topic=topic)
    assert cancelled.status == TaskStatus.CANCELLED
    assert retried.task_id == task.id
    assert [item.id for item in listed.items] == [execution.id]
    assert (await async_client.events(execution.id))[-1].status == TaskStatus.CANCELLED
    assert (await async_client.get_execution(retried.id)).events[0].reason == (
        f"retry of {execution.id}"
    )


async def test_errors_are_the_same_as_the_sync_clients(
    async_client: sublim.AsyncClient, secured_api: ApiProcess, topic: str
) -> None:
    execution = await async_client.enqueue((await async_client.create_task(topic)).id)
    with pytest.raises(Conflict):
        await async_client.retry(execution.id)
    with pytest.raises(ExecutionNotFound):
        await async_client.get_execution("01HZZZZZZZZZZZZZZZZZZZZZZZ")
    async with sublim.AsyncClient(secured_api.url, READER) as reader:
        with pytest.raises(AuthError):
            await reader.delete_task("01HZZZZZZZZZZZZZZZZZZZZZZZ")
    async with sublim.AsyncClient(f"http://127.0.0.1:{free_port()}") as nobody:
        with pytest.raises(Unreachable):
            await nobody.readyz()


async def test_stream_events_yields_events_live_until_the_execution_finishes(
    api: ApiProcess, async_client: sublim.AsyncClient, topic: str
) -> None:
    execution = await async_client.enqueue((await async_client.create_task(topic)).id)
    received: list[Event] = []
    first = asyncio.Event()

    async def read() -> None:
        async for event in async_client.stream_events(execution.id):
            received.append(event)
            first.set()

    reader = asyncio.create_task(read())
    await asyncio.wait_for(first.wait(), timeout=10)
    fields = execution.model_dump(mode="json")
    with api.client() as http:
        push(http, update_of(fields, 1, "Running"))
        push(http, update_of(fields, 2, "Failed", error={"type": "E", "message": "m"}))
    await asyncio.wait_for(reader, timeout=20)
    assert [event.status for event in received][-2:] == [TaskStatus.RUNNING, TaskStatus.FAILED]


async def test_wait_returns_the_execution_a_real_executor_finished(
    worked_api: ApiProcess,
) -> None:
    async with sublim.AsyncClient(worked_api.url) as worked:
        task = await worked.create_task("Hello", {"name": "Bo"}, execute=True)
        assert task.execution is not None
        finished = await worked.wait(task.execution.id)
    assert finished.status == TaskStatus.PASSED
    assert finished.result == {"greeting": "Hello, Bo!"}


async def test_healthz_and_readyz(async_client: sublim.AsyncClient) -> None:
    assert (await async_client.healthz(), await async_client.readyz()) == ("ok", "ready")
