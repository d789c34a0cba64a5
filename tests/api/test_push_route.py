"""POST /task_execution_update: Pub/Sub push envelopes of execution updates."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.api.conftest import (
    PUSH_TOKEN,
    assert_problem,
    create_task,
    push,
    push_envelope,
    update_of,
)


def _statuses(client: httpx.Client, execution_id: str) -> list[str]:
    return [e["status"] for e in client.get(f"/v1/executions/{execution_id}").json()["events"]]


def test_a_pushed_update_is_recorded(client: httpx.Client, topic: str) -> None:
    execution = create_task(client, topic, execute=True)["execution"]
    response = push(client, update_of(execution, 1, "Passed", result={"bytes": 3}, complete=True))
    assert response.status_code == 200
    assert response.json() == {"execution_id": execution["id"], "outcome": "applied"}
    read = client.get(f"/v1/executions/{execution['id']}").json()
    assert (read["status"], read["result"]) == ("Passed", {"bytes": 3})


def test_a_duplicated_push_is_recorded_once(client: httpx.Client, topic: str) -> None:
    execution = create_task(client, topic, execute=True)["execution"]
    running = update_of(execution, 1, "Running")
    assert push(client, running).json()["outcome"] == "applied"
    recorded = _statuses(client, execution["id"])
    duplicate = push(client, running)
    assert duplicate.status_code == 200
    assert duplicate.json()["outcome"] == "ignored"
    assert _statuses(client, execution["id"]) == recorded
    assert recorded.count("Running") == 1


def test_a_forged_or_missing_token_is_a_403_and_records_nothing(
    client: httpx.Client, topic: str
) -> None:
    execution = create_task(client, topic, execute=True)["execution"]
    assert_problem(push(client, update_of(execution, 1, "Running"), token="forged"), 403)
    envelope = push_envelope(update_of(execution, 1, "Running"))
    assert_problem(client.post("/task_execution_update", json=envelope), 403)
    assert "Running" not in _statuses(client, execution["id"])


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"subscription": "s"}',
        b'{"message": {"data": 3}}',
        b'{"message": {"data": "%%%not base64"}}',
        b'{"message": {"data": "' + base64.b64encode(b"not json") + b'"}}',
        b'{"message": {"data": "' + base64.b64encode(b'{"execution_id": "x"}') + b'"}}',
    ],
    ids=[
        "not-json",
        "no-message",
        "data-not-a-string",
        "not-base64",
        "data-not-json",
        "not-an-update",
    ],
)
def test_a_malformed_envelope_or_update_is_a_400(client: httpx.Client, body: bytes) -> None:
    response = client.post(
        f"/task_execution_update?token={PUSH_TOKEN}",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert_problem(response, 400)


def test_an_update_of_an_unknown_execution_is_acknowledged(client: httpx.Client) -> None:
    update = {
        "execution_id": "01HZZZZZZZZZZZZZZZZZZZZZZZ",
        "task_id": "01HZZZZZZZZZZZZZZZZZZZZZZY",
        "attempt": 1,
        "seq": 1,
        "status": "Running",
    }
    response = push(client, update)
    assert response.status_code == 200
    assert response.json()["outcome"] == "unknown"


def test_an_illegal_update_is_acknowledged_as_refused(client: httpx.Client, topic: str) -> None:
    execution = create_task(client, topic, execute=True)["execution"]
    push(client, update_of(execution, 1, "Passed", complete=True))
    late = push(client, update_of(execution, 1, "Running"))  # seq 1 again after finishing
    assert late.status_code == 200
    assert late.json()["outcome"] == "ignored"
    assert client.get(f"/v1/executions/{execution['id']}").json()["status"] == "Passed"
