"""`sublim tasks create|list|show|run|delete`."""

from __future__ import annotations

from tests.cli.conftest import Sublim


def _created(sublim: Sublim, *args: str) -> dict[str, object]:
    ran = sublim("tasks", "create", *args, "--json")
    assert ran.code == 0, ran.err
    created: dict[str, object] = ran.json()
    return created


def test_create_prints_the_new_task_as_json(sublim: Sublim, topic: str) -> None:
    task = _created(
        sublim,
        topic,
        "--payload",
        '{"url": "a.png"}',
        "--label",
        "team=web",
        "--label",
        "tier=1",
        "--name",
        "thumb",
    )
    assert (task["topic"], task["name"]) == (topic, "thumb")
    assert task["payload"] == {"url": "a.png"}
    assert task["labels"] == {"team": "web", "tier": "1"}
    assert "execution" not in task


def test_create_with_run_also_enqueues_an_execution(sublim: Sublim, topic: str) -> None:
    task = _created(sublim, topic, "--run", "--max-attempts", "2")
    execution = task["execution"]
    assert isinstance(execution, dict)
    assert (execution["task_id"], execution["max_attempts"]) == (task["id"], 2)
    assert "payload" not in execution  # the API's shape, not the store's


def test_create_says_what_it_created_to_people(sublim: Sublim, topic: str) -> None:
    ran = sublim("tasks", "create", topic, "--run")
    assert ran.code == 0
    assert "created task " in ran.out
    assert "enqueued execution " in ran.out


def test_list_shows_a_table_filtered_by_label(sublim: Sublim, topic: str) -> None:
    web = _created(sublim, topic, "--label", "team=web", "--name", "web-task")
    _created(sublim, topic, "--label", "team=ops", "--name", "ops-task")
    ran = sublim("tasks", "list", "--topic", topic, "--label", "team=web")
    assert ran.code == 0
    assert str(web["id"]) in ran.out
    assert "web-task" in ran.out
    assert "ops-task" not in ran.out


def test_list_json_pages_with_limit_and_all_follows_the_cursors(sublim: Sublim, topic: str) -> None:
    ids = [_created(sublim, topic)["id"] for _ in range(3)]
    page = sublim("tasks", "list", "--topic", topic, "--limit", "2", "--json").json()
    everything = sublim("tasks", "list", "--topic", topic, "--limit", "2", "--all", "--json")
    assert [task["id"] for task in page["items"]] == ids[:0:-1]
    assert page["next_cursor"]
    assert [task["id"] for task in everything.json()["items"]] == ids[::-1]
    assert everything.json()["next_cursor"] is None


def test_list_without_all_hints_at_the_next_page(sublim: Sublim, topic: str) -> None:
    for _ in range(2):
        _created(sublim, topic)
    ran = sublim("tasks", "list", "--topic", topic, "--limit", "1")
    assert "more: --cursor " in ran.err


def test_show_prints_the_task_its_executions_and_the_latest_event_log(
    sublim: Sublim, topic: str
) -> None:
    task = _created(sublim, topic, "--run", "--payload", '{"n": 7}')
    ran = sublim("tasks", "show", str(task["id"]))
    assert ran.code == 0
    assert '{"n": 7}' in ran.out
    assert "Executions" in ran.out
    assert "execution requested" in ran.out
    assert "Dispatched" in ran.out


def test_show_json_is_the_task(sublim: Sublim, topic: str) -> None:
    task = _created(sublim, topic)
    shown = sublim("tasks", "show", str(task["id"]), "--json").json()
    assert shown["id"] == task["id"]
    assert shown["latest_execution"] is None


def test_run_wait_follows_a_real_execution_to_passed_and_exits_0(sublim: Sublim) -> None:
    task = _created(sublim, "Hello", "--payload", '{"name": "Cli"}')
    ran = sublim("tasks", "run", str(task["id"]), "--wait")
    assert ran.code == 0, ran.err
    assert "Passed" in ran.out
    assert "Hello, Cli!" in ran.out


def test_run_wait_exits_1_when_the_execution_fails(sublim: Sublim) -> None:
    task = _created(sublim, "Fail")
    ran = sublim("tasks", "run", str(task["id"]), "--wait", "--json")
    assert ran.code == 1
    assert ran.json()["status"] == "Failed"
    assert ran.json()["error"]["message"] == "failing by design"


def test_run_without_wait_enqueues_and_returns_at_once(sublim: Sublim, topic: str) -> None:
    task = _created(sublim, topic)
    ran = sublim("tasks", "run", str(task["id"]), "--json")
    assert ran.code == 0
    assert ran.json()["status"] == "Dispatched"


def test_delete_removes_the_task(sublim: Sublim, topic: str) -> None:
    task = _created(sublim, topic)
    deleted = sublim("tasks", "delete", str(task["id"]))
    assert deleted.code == 0
    assert f"deleted task {task['id']}" in deleted.out
    assert sublim("tasks", "show", str(task["id"])).code == 2
