"""`Client.create_tasks` and `AsyncClient.create_tasks` against a real `sublim api`."""

from __future__ import annotations

import pytest

import sublim
from sublim.core.model import TaskStatus
from sublim.errors import ApiInvalidInput


def test_create_tasks_returns_the_tasks_in_the_order_given(
    client: sublim.Client, topic: str
) -> None:
    tasks = client.create_tasks(
        [
            {"topic": topic, "payload": {"i": 0}, "name": "first", "labels": {"n": "0"}},
            {"topic": topic, "payload": {"i": 1}, "execute": True, "max_attempts": 4},
            {"topic": topic},
        ]
    )
    assert [task.payload for task in tasks] == [{"i": 0}, {"i": 1}, {}]
    assert (tasks[0].name, tasks[0].labels, tasks[0].execution) == ("first", {"n": "0"}, None)
    execution = tasks[1].execution
    assert execution is not None
    assert (execution.task_id, execution.max_attempts) == (tasks[1].id, 4)
    assert execution.status == TaskStatus.DISPATCHED
    assert {task.id for task in client.list_tasks(topic).items} == {task.id for task in tasks}


def test_create_tasks_with_an_invalid_task_names_its_index_and_creates_none(
    client: sublim.Client, topic: str
) -> None:
    too_many = {f"k{i}": "v" for i in range(100)}
    with pytest.raises(ApiInvalidInput, match=r"tasks\[1\]"):
        client.create_tasks([{"topic": topic}, {"topic": topic, "labels": too_many}])
    assert client.list_tasks(topic).items == []


def test_create_tasks_refuses_a_field_create_task_does_not_take_before_sending(
    client: sublim.Client, topic: str
) -> None:
    with pytest.raises(TypeError):
        client.create_tasks([{"topic": topic, "colour": "red"}])


def test_an_idempotency_key_makes_a_retried_batch_return_the_first_tasks(
    client: sublim.Client, topic: str
) -> None:
    key = f"batch-{topic}"
    first = client.create_tasks([{"topic": topic}, {"topic": topic}], idempotency_key=key)
    again = client.create_tasks([{"topic": topic}, {"topic": topic}], idempotency_key=key)
    assert [task.id for task in again] == [task.id for task in first]
    assert len(client.list_tasks(topic).items) == 2


async def test_the_async_client_creates_tasks_as_the_sync_one_does(
    async_client: sublim.AsyncClient, topic: str
) -> None:
    tasks = await async_client.create_tasks([{"topic": topic, "execute": True}, {"topic": topic}])
    assert [task.execution is not None for task in tasks] == [True, False]
    assert [task.topic for task in tasks] == [topic, topic]
