"""GET /v1/executions/{id}/events with Accept: text/event-stream: a live stream."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx

from tests.api.conftest import ApiProcess, create_task, push, update_of

Received = list[tuple[str, dict[str, Any]]]


def _read_stream(
    api: ApiProcess,
    execution_id: str,
    into: Received,
    headers: dict[str, str] | None = None,
    started: threading.Event | None = None,
) -> None:
    """Collect (event type, data) of each SSE message until the stream ends; set `started`
    once the first message arrived."""
    event_type = "message"
    with (
        api.client() as http,
        http.stream(
            "GET",
            f"/v1/executions/{execution_id}/events",
            headers={"Accept": "text/event-stream", **(headers or {})},
        ) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                event_type = line.removeprefix("event: ")
            elif line.startswith("data: "):
                into.append((event_type, json.loads(line.removeprefix("data: "))))
                event_type = "message"
                if started is not None:
                    started.set()


def _start_reader(api: ApiProcess, execution_id: str, into: Received) -> threading.Thread:
    started = threading.Event()
    reader = threading.Thread(
        target=_read_stream, args=(api, execution_id, into), kwargs={"started": started}
    )
    reader.start()
    assert started.wait(timeout=10), "the stream sent nothing"
    return reader


def test_the_stream_sends_events_as_they_are_recorded_and_ends_when_finished(
    api: ApiProcess, client: httpx.Client, topic: str
) -> None:
    execution = create_task(client, topic, execute=True)["execution"]
    received: Received = []
    reader = _start_reader(api, execution["id"], received)
    assert "Running" not in [data["status"] for _, data in received]  # it comes live
    push(client, update_of(execution, 1, "Running"))
    push(client, update_of(execution, 2, "Passed", result=42, complete=True))
    reader.join(timeout=20)
    assert not reader.is_alive(), "the stream did not end after the execution finished"
    statuses = [data["status"] for kind, data in received if kind == "message"]
    assert statuses == ["Initialized", "ReadyForDispatch", "Dispatched", "Running", "Passed"]
    assert received[-1] == ("end", {"status": "Passed", "reason": "finished"})


def test_a_stream_resumes_after_last_event_id(
    api: ApiProcess, client: httpx.Client, topic: str
) -> None:
    execution = create_task(client, topic, execute=True)["execution"]
    client.post(f"/v1/executions/{execution['id']}/cancel")
    received: Received = []
    _read_stream(api, execution["id"], received, headers={"Last-Event-ID": "3"})
    assert [data["status"] for _, data in received] == ["Cancelled", "Cancelled"]
    assert received[-1][0] == "end"


def test_a_stream_of_a_deleted_task_ends(api: ApiProcess, client: httpx.Client, topic: str) -> None:
    task = create_task(client, topic, execute=True)
    received: Received = []
    reader = _start_reader(api, task["execution"]["id"], received)
    client.delete(f"/v1/tasks/{task['id']}")
    reader.join(timeout=20)
    assert not reader.is_alive()
    assert received[-1] == ("end", {"status": None, "reason": "deleted"})
