"""/v1/tasks against a real `sublim api` process."""

from __future__ import annotations

import httpx

from tests.api.conftest import assert_problem, create_task, enqueue


def test_creating_a_task_answers_201_with_the_task_and_no_execution(
    client: httpx.Client, topic: str
) -> None:
    task = create_task(client, topic, payload={"url": "x"}, labels={"team": "a"})
    assert task["topic"] == topic
    assert task["name"] == topic
    assert task["payload"] == {"url": "x"}
    assert task["labels"] == {"team": "a"}
    assert task["latest_execution"] is None
    assert task["execution"] is None


def test_creating_with_execute_enqueues_and_returns_the_execution(
    client: httpx.Client, topic: str
) -> None:
    task = create_task(client, topic, name="thumb", execute=True, max_attempts=5)
    execution = task["execution"]
    assert task["latest_execution"]["id"] == execution["id"]
    assert execution["status"] == "Dispatched"
    assert execution["max_attempts"] == 5
    statuses = [event["status"] for event in execution["events"]]
    assert statuses == ["Initialized", "ReadyForDispatch", "Dispatched"]


def test_a_task_reads_back_as_created(client: httpx.Client, topic: str) -> None:
    task = create_task(client, topic, payload={"n": 1})
    response = client.get(f"/v1/tasks/{task['id']}")
    assert response.status_code == 200
    assert response.json() == {k: v for k, v in task.items() if k != "execution"}


def test_patch_changes_only_the_fields_given(client: httpx.Client, topic: str) -> None:
    task = create_task(client, topic, name="old", payload={"n": 1}, labels={"a": "1"})
    response = client.patch(f"/v1/tasks/{task['id']}", json={"name": "new"})
    assert response.status_code == 200
    patched = response.json()
    assert (patched["name"], patched["payload"], patched["labels"]) == ("new", {"n": 1}, {"a": "1"})
    assert patched["updated_at"] > task["updated_at"]


def test_delete_answers_204_and_the_task_is_gone(client: httpx.Client, topic: str) -> None:
    task = create_task(client, topic)
    assert client.delete(f"/v1/tasks/{task['id']}").status_code == 204
    assert_problem(client.get(f"/v1/tasks/{task['id']}"), 404)


def test_listing_filters_by_topic_label_and_latest_status(client: httpx.Client, topic: str) -> None:
    plain = create_task(client, topic, labels={"team": "a"})
    executed = create_task(client, topic, labels={"team": "b"}, execute=True)
    create_task(client, f"{topic}Other", labels={"team": "a"})

    def ids(**params: object) -> list[str]:
        response = client.get("/v1/tasks", params={"topic": topic, **params})
        assert response.status_code == 200
        return [item["id"] for item in response.json()["items"]]

    assert ids() == [executed["id"], plain["id"]]
    assert ids(label="team:a") == [plain["id"]]
    assert ids(status="Dispatched") == [executed["id"]]
    assert ids(label=["team:a", "team:b"]) == [executed["id"]]  # the last value of a key wins


def test_a_label_filter_without_a_colon_is_a_422(client: httpx.Client) -> None:
    assert_problem(client.get("/v1/tasks", params={"label": "nocolon"}), 422)


def test_enqueue_answers_202_with_a_dispatched_execution(client: httpx.Client, topic: str) -> None:
    task = create_task(client, topic, payload={"n": 2})
    execution = enqueue(client, task["id"])
    assert execution["task_id"] == task["id"]
    assert execution["topic"] == topic
    assert execution["status"] == "Dispatched"
    assert execution["attempt"] == 1
    latest = client.get(f"/v1/tasks/{task['id']}").json()["latest_execution"]
    assert latest["id"] == execution["id"]


def test_enqueue_takes_max_attempts(client: httpx.Client, topic: str) -> None:
    task = create_task(client, topic)
    response = client.post(f"/v1/tasks/{task['id']}/executions", json={"max_attempts": 7})
    assert response.status_code == 202
    assert response.json()["max_attempts"] == 7


def test_enqueue_with_depends_on_waits_blocked_on_an_unfinished_execution(
    client: httpx.Client, topic: str
) -> None:
    task = create_task(client, topic)
    first = enqueue(client, task["id"])
    response = client.post(f"/v1/tasks/{task['id']}/executions", json={"depends_on": [first["id"]]})
    assert response.status_code == 202
    assert response.json()["status"] == "Blocked"
    assert response.json()["depends_on"] == [first["id"]]


def test_enqueue_depending_on_an_unknown_execution_is_a_422(
    client: httpx.Client, topic: str
) -> None:
    task = create_task(client, topic)
    unknown = {"depends_on": ["01HZZZZZZZZZZZZZZZZZZZZZZZ"]}
    response = client.post(f"/v1/tasks/{task['id']}/executions", json=unknown)
    assert_problem(response, 422)


def test_a_tasks_executions_list_newest_first(client: httpx.Client, topic: str) -> None:
    task = create_task(client, topic)
    first, second = enqueue(client, task["id"]), enqueue(client, task["id"])
    response = client.get(f"/v1/tasks/{task['id']}/executions")
    assert response.status_code == 200
    assert [e["id"] for e in response.json()["items"]] == [second["id"], first["id"]]


def test_unknown_task_ids_are_404_on_every_task_route(client: httpx.Client) -> None:
    missing = "/v1/tasks/01HZZZZZZZZZZZZZZZZZZZZZZZ"
    assert_problem(client.get(missing), 404)
    assert_problem(client.patch(missing, json={"name": "x"}), 404)
    assert_problem(client.delete(missing), 404)
    assert_problem(client.post(f"{missing}/executions"), 404)
    assert_problem(client.get(f"{missing}/executions"), 404)
