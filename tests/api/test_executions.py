"""/v1/executions against a real `sublim api` process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tests.api.conftest import assert_problem, create_task, enqueue, push, update_of


def test_an_execution_reads_back_with_its_event_log(client: httpx.Client, topic: str) -> None:
    execution = create_task(client, topic, execute=True)["execution"]
    response = client.get(f"/v1/executions/{execution['id']}")
    assert response.status_code == 200
    read = response.json()
    assert read["status"] == "Dispatched"
    assert [e["status"] for e in read["events"]] == [
        "Initialized",
        "ReadyForDispatch",
        "Dispatched",
    ]
    assert set(read["events"][0]) == {"status", "at", "attempt", "reason"}


def test_listing_filters_by_status_and_topic(client: httpx.Client, topic: str) -> None:
    task = create_task(client, topic)
    running, queued = enqueue(client, task["id"]), enqueue(client, task["id"])
    assert push(client, update_of(running, 1, "Running")).status_code == 200

    def ids(**params: object) -> list[str]:
        response = client.get("/v1/executions", params={"topic": topic, **params})
        assert response.status_code == 200
        return [item["id"] for item in response.json()["items"]]

    assert ids() == [queued["id"], running["id"]]
    assert ids(status="Running") == [running["id"]]
    assert ids(status=["Running", "Dispatched"]) == [queued["id"], running["id"]]
    assert ids(status="Passed") == []


def test_listing_filters_by_a_time_range(client: httpx.Client, topic: str) -> None:
    execution = create_task(client, topic, execute=True)["execution"]
    created = datetime.fromisoformat(execution["created_at"])
    later = (created + timedelta(seconds=1)).isoformat()
    assert [
        e["id"]
        for e in client.get(
            "/v1/executions", params={"topic": topic, "created_before": later}
        ).json()["items"]
    ] == [execution["id"]]
    assert (
        client.get("/v1/executions", params={"topic": topic, "created_after": later}).json()[
            "items"
        ]
        == []
    )


def test_a_time_without_a_zone_is_taken_as_utc(client: httpx.Client, topic: str) -> None:
    create_task(client, topic, execute=True)
    naive_future = (datetime.now(UTC) + timedelta(hours=1)).replace(tzinfo=None).isoformat()
    response = client.get("/v1/executions", params={"topic": topic, "created_before": naive_future})
    assert response.status_code == 200
    assert len(response.json()["items"]) == 1


def test_cancel_records_cancelled_and_a_second_cancel_is_a_409(
    client: httpx.Client, topic: str
) -> None:
    execution = create_task(client, topic, execute=True)["execution"]
    response = client.post(f"/v1/executions/{execution['id']}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "Cancelled"
    assert response.json()["finished_at"] is not None
    problem = assert_problem(client.post(f"/v1/executions/{execution['id']}/cancel"), 409)
    assert "Cancelled" in problem["detail"]


def test_cancelling_a_passed_execution_is_a_409(client: httpx.Client, topic: str) -> None:
    execution = create_task(client, topic, execute=True)["execution"]
    push(client, update_of(execution, 1, "Passed", result=1, complete=True))
    assert_problem(client.post(f"/v1/executions/{execution['id']}/cancel"), 409)
    assert client.get(f"/v1/executions/{execution['id']}").json()["status"] == "Passed"


def test_retry_of_a_finished_execution_enqueues_a_linked_new_one(
    client: httpx.Client, topic: str
) -> None:
    execution = create_task(client, topic, execute=True)["execution"]
    client.post(f"/v1/executions/{execution['id']}/cancel")
    response = client.post(f"/v1/executions/{execution['id']}/retry")
    assert response.status_code == 202
    retried = response.json()
    assert retried["id"] != execution["id"]
    assert retried["task_id"] == execution["task_id"]
    assert retried["status"] == "Dispatched"
    assert retried["events"][0]["reason"] == f"retry of {execution['id']}"


def test_retry_of_an_unfinished_execution_is_a_409(client: httpx.Client, topic: str) -> None:
    execution = create_task(client, topic, execute=True)["execution"]
    assert_problem(client.post(f"/v1/executions/{execution['id']}/retry"), 409)


def test_unknown_execution_ids_are_404_on_every_execution_route(client: httpx.Client) -> None:
    missing = "/v1/executions/01HZZZZZZZZZZZZZZZZZZZZZZZ"
    assert_problem(client.get(missing), 404)
    assert_problem(client.post(f"{missing}/cancel"), 404)
    assert_problem(client.post(f"{missing}/retry"), 404)
    assert_problem(client.get(f"{missing}/events"), 404)
    stream = client.get(f"{missing}/events", headers={"Accept": "text/event-stream"})
    assert_problem(stream, 404)


def test_the_events_route_lists_the_event_log(client: httpx.Client, topic: str) -> None:
    execution = create_task(client, topic, execute=True)["execution"]
    response = client.get(f"/v1/executions/{execution['id']}/events")
    assert response.status_code == 200
    assert [e["status"] for e in response.json()] == [
        "Initialized",
        "ReadyForDispatch",
        "Dispatched",
    ]
