"""The client's execution methods against a real `sublim api` (no executor: executions stay
queued unless the test moves them along)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sublim
from sublim.core.model import Event, Execution, TaskStatus


def test_enqueue_returns_a_dispatched_execution_of_the_task(
    client: sublim.Client, topic: str
) -> None:
    task = client.create_task(topic)
    execution = client.enqueue(task.id, max_attempts=2)
    assert isinstance(execution, Execution)
    assert (execution.task_id, execution.topic, execution.max_attempts) == (task.id, topic, 2)
    assert execution.status == TaskStatus.DISPATCHED


def test_an_idempotency_key_makes_a_retried_enqueue_return_the_first_execution(
    client: sublim.Client, topic: str
) -> None:
    task = client.create_task(topic)
    first = client.enqueue(task.id, idempotency_key="once")
    again = client.enqueue(task.id, idempotency_key="once")
    assert again.id == first.id
    assert len(client.list_executions(task.id).items) == 1


def test_get_execution_has_the_event_log(client: sublim.Client, topic: str) -> None:
    execution = client.enqueue(client.create_task(topic).id)
    read = client.get_execution(execution.id)
    assert read.id == execution.id
    assert [event.status for event in read.events] == [
        TaskStatus.INITIALIZED,
        TaskStatus.READY_FOR_DISPATCH,
        TaskStatus.DISPATCHED,
    ]


def test_events_returns_the_event_log(client: sublim.Client, topic: str) -> None:
    execution = client.enqueue(client.create_task(topic).id)
    events = client.events(execution.id)
    assert all(isinstance(event, Event) for event in events)
    assert events[0].reason == "execution requested"
    assert events[-1].status == TaskStatus.DISPATCHED


def test_cancel_finishes_a_queued_execution_as_cancelled(client: sublim.Client, topic: str) -> None:
    execution = client.enqueue(client.create_task(topic).id)
    cancelled = client.cancel(execution.id)
    assert cancelled.status == TaskStatus.CANCELLED
    assert cancelled.finished


def test_retry_starts_a_new_execution_linked_to_the_finished_one(
    client: sublim.Client, topic: str
) -> None:
    task = client.create_task(topic, execute=True)
    assert task.execution is not None
    client.cancel(task.execution.id)
    retried = client.retry(task.execution.id)
    assert retried.id != task.execution.id
    assert retried.task_id == task.id
    assert client.get_execution(retried.id).events[0].reason == f"retry of {task.execution.id}"


def test_list_executions_of_a_task_filters_by_status(client: sublim.Client, topic: str) -> None:
    task = client.create_task(topic)
    queued, cancelled = client.enqueue(task.id), client.enqueue(task.id)
    client.cancel(cancelled.id)
    listed = client.list_executions(task.id, status=TaskStatus.CANCELLED)
    both = client.list_executions(task.id, status=[TaskStatus.CANCELLED, "Dispatched"])
    assert [execution.id for execution in listed.items] == [cancelled.id]
    assert {execution.id for execution in both.items} == {queued.id, cancelled.id}


def test_list_executions_filters_by_topic_and_creation_time(
    client: sublim.Client, topic: str
) -> None:
    execution = client.enqueue(client.create_task(topic).id)
    later = datetime.now(UTC) + timedelta(minutes=1)
    created = client.list_executions(topic=topic, created_before=later)
    none_yet = client.list_executions(topic=topic, created_after=later)
    assert [item.id for item in created.items] == [execution.id]
    assert none_yet.items == []


def test_iter_executions_follows_the_cursors_over_several_pages(
    client: sublim.Client, topic: str
) -> None:
    task = client.create_task(topic)
    ids = [client.enqueue(task.id).id for _ in range(5)]
    assert [e.id for e in client.iter_executions(task.id, page_size=2)] == ids[::-1]
    assert [e.id for e in client.iter_executions(topic=topic, page_size=3)] == ids[::-1]


def test_healthz_and_readyz_report_a_healthy_api(client: sublim.Client) -> None:
    assert client.healthz() == "ok"
    assert client.readyz() == "ready"
