"""stream_events and wait: live events while an execution is moved along, by updates pushed
through the API or by a real executor."""

from __future__ import annotations

import threading
import time

import sublim
from sublim.core.model import Event, Execution, TaskStatus
from tests.api.conftest import ApiProcess, push, update_of

STARTED_SECONDS = 10.0


def _collect_in_background(
    client: sublim.Client, execution_id: str, into: list[Event]
) -> threading.Thread:
    """Stream into `into` from a thread; the event is set once the first event arrived."""
    started = threading.Event()

    def read() -> None:
        for event in client.stream_events(execution_id):
            into.append(event)
            started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert started.wait(STARTED_SECONDS), "the stream sent nothing"
    return reader


def _push_run(api: ApiProcess, execution: Execution) -> None:
    fields = execution.model_dump(mode="json")
    with api.client() as http:
        push(http, update_of(fields, 1, "Running"))
        push(http, update_of(fields, 2, "Passed", result={"ok": True}, complete=True))


def test_stream_events_yields_events_live_and_ends_when_the_execution_finishes(
    api: ApiProcess, client: sublim.Client, topic: str
) -> None:
    execution = client.enqueue(client.create_task(topic).id)
    received: list[Event] = []
    reader = _collect_in_background(client, execution.id, received)
    assert TaskStatus.RUNNING not in [event.status for event in received]
    _push_run(api, execution)
    reader.join(timeout=20)
    assert not reader.is_alive(), "the stream did not end when the execution finished"
    assert [event.status for event in received] == [
        TaskStatus.INITIALIZED,
        TaskStatus.READY_FOR_DISPATCH,
        TaskStatus.DISPATCHED,
        TaskStatus.RUNNING,
        TaskStatus.PASSED,
    ]


def test_stream_events_after_a_position_skips_the_events_before_it(
    client: sublim.Client, topic: str
) -> None:
    execution = client.enqueue(client.create_task(topic).id)
    client.cancel(execution.id)
    statuses = [event.status for event in client.stream_events(execution.id, after=3)]
    assert statuses == [TaskStatus.CANCELLED]


def test_stream_events_of_a_task_deleted_meanwhile_ends(client: sublim.Client, topic: str) -> None:
    task = client.create_task(topic, execute=True)
    assert task.execution is not None
    received: list[Event] = []
    reader = _collect_in_background(client, task.execution.id, received)
    client.delete_task(task.id)
    reader.join(timeout=20)
    assert not reader.is_alive()
    assert received[-1].status == TaskStatus.DISPATCHED


def test_wait_returns_the_execution_a_real_executor_finished(
    worked_client: sublim.Client,
) -> None:
    task = worked_client.create_task("Hello", {"name": "Ada"}, execute=True)
    assert task.execution is not None
    finished = worked_client.wait(task.execution.id)
    assert finished.status == TaskStatus.PASSED
    assert finished.result == {"greeting": "Hello, Ada!"}
    assert finished.worker is not None


def test_stream_events_shows_a_real_executors_retries_then_failed(
    worked_client: sublim.Client,
) -> None:
    task = worked_client.create_task("Fail", {"message": "no"}, execute=True)
    assert task.execution is not None
    events = list(worked_client.stream_events(task.execution.id))
    statuses = [event.status for event in events]
    assert statuses.count(TaskStatus.RUNNING) == 2
    assert statuses[-1] == TaskStatus.FAILED
    assert max(event.attempt for event in events) == 2
    assert worked_client.get_execution(task.execution.id).error is not None


def test_a_stream_lasts_through_a_quiet_run_until_its_end(worked_client: sublim.Client) -> None:
    task = worked_client.create_task("Sleep", {"seconds": 2.5}, execute=True)
    assert task.execution is not None
    began = time.monotonic()
    statuses = [event.status for event in worked_client.stream_events(task.execution.id)]
    assert statuses[-2:] == [TaskStatus.RUNNING, TaskStatus.PASSED]
    assert time.monotonic() - began >= 2.0
