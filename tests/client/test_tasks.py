"""The client's task methods against a real `sublim api`."""

from __future__ import annotations

import pytest

import sublim
from sublim.core.model import TaskRecord, TaskStatus
from sublim.errors import TaskNotFound


def test_create_task_returns_the_stored_task_with_its_fields(
    client: sublim.Client, topic: str
) -> None:
    task = client.create_task(topic, {"url": "a.png"}, name="thumb", labels={"team": "web"})
    assert isinstance(task, TaskRecord)
    assert (task.topic, task.name, task.payload, task.labels) == (
        topic,
        "thumb",
        {"url": "a.png"},
        {"team": "web"},
    )
    assert task.execution is None
    assert task.latest_execution is None


def test_create_task_with_execute_also_returns_the_enqueued_execution(
    client: sublim.Client, topic: str
) -> None:
    task = client.create_task(topic, execute=True, max_attempts=3)
    assert task.execution is not None
    assert task.execution.task_id == task.id
    assert task.execution.max_attempts == 3
    assert task.execution.status == TaskStatus.DISPATCHED


def test_an_idempotency_key_makes_a_retried_create_return_the_first_task(
    client: sublim.Client, topic: str
) -> None:
    first = client.create_task(topic, idempotency_key=f"key-{topic}")
    again = client.create_task(topic, idempotency_key=f"key-{topic}")
    assert again.id == first.id
    assert len(client.list_tasks(topic).items) == 1


def test_get_task_reads_what_was_created(client: sublim.Client, topic: str) -> None:
    created = client.create_task(topic, {"n": 1})
    assert client.get_task(created.id) == TaskRecord.model_validate(
        created.model_dump(exclude={"execution"})
    )


def test_update_task_changes_only_the_fields_given(client: sublim.Client, topic: str) -> None:
    created = client.create_task(topic, {"n": 1}, name="before", labels={"a": "1"})
    updated = client.update_task(created.id, labels={"b": "2"})
    assert (updated.name, updated.payload, updated.labels) == ("before", {"n": 1}, {"b": "2"})
    assert client.get_task(created.id).labels == {"b": "2"}


def test_delete_task_removes_it(client: sublim.Client, topic: str) -> None:
    created = client.create_task(topic)
    client.delete_task(created.id)
    with pytest.raises(TaskNotFound):
        client.get_task(created.id)


def test_list_tasks_filters_by_topic_labels_and_status(client: sublim.Client, topic: str) -> None:
    web = client.create_task(topic, labels={"team": "web"}, execute=True)
    client.create_task(topic, labels={"team": "ops"})
    client.create_task(f"{topic}Other", labels={"team": "web"})
    by_label = client.list_tasks(topic, labels={"team": "web"})
    by_status = client.list_tasks(topic, status=TaskStatus.DISPATCHED)
    assert [task.id for task in by_label.items] == [web.id]
    assert [task.id for task in by_status.items] == [web.id]
    assert len(client.list_tasks(topic).items) == 2


def test_list_tasks_pages_with_limit_and_cursor(client: sublim.Client, topic: str) -> None:
    ids = [client.create_task(topic).id for _ in range(3)]
    first = client.list_tasks(topic, limit=2)
    second = client.list_tasks(topic, limit=2, cursor=first.next_cursor)
    assert first.next_cursor is not None
    assert second.next_cursor is None
    assert [task.id for task in first.items + second.items] == ids[::-1]


def test_iter_tasks_follows_the_cursors_over_several_pages(
    client: sublim.Client, topic: str
) -> None:
    ids = [client.create_task(topic, {"i": index}).id for index in range(7)]
    assert [task.id for task in client.iter_tasks(topic, page_size=2)] == ids[::-1]
