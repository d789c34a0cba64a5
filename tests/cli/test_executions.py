"""`sublim executions list|show|watch|cancel|retry`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from tests.api.conftest import ROOT, ApiProcess
from tests.cli.conftest import Sublim


def _enqueued(sublim: Sublim, topic: str) -> dict[str, Any]:
    """An execution of a topic no executor consumes: it stays Dispatched."""
    ran = sublim("tasks", "create", topic, "--run", "--json")
    assert ran.code == 0, ran.err
    execution: dict[str, Any] = ran.json()["execution"]
    return execution


def test_list_filters_by_task_and_status(sublim: Sublim, topic: str) -> None:
    kept, cancelled = _enqueued(sublim, topic), _enqueued(sublim, topic)
    sublim("executions", "cancel", cancelled["id"])
    listed = sublim("executions", "list", "--topic", topic, "--status", "cancelled", "--json")
    of_task = sublim("executions", "list", "--task", kept["task_id"], "--json")
    assert [item["id"] for item in listed.json()["items"]] == [cancelled["id"]]
    assert [item["id"] for item in of_task.json()["items"]] == [kept["id"]]


def test_list_shows_a_table_with_statuses(sublim: Sublim, topic: str) -> None:
    execution = _enqueued(sublim, topic)
    ran = sublim("executions", "list", "--topic", topic, "--created-after", "2020-01-01")
    assert ran.code == 0
    assert execution["id"] in ran.out
    assert "Dispatched" in ran.out


def test_list_all_follows_the_cursors(sublim: Sublim, topic: str) -> None:
    ids = [_enqueued(sublim, topic)["id"] for _ in range(3)]
    ran = sublim("executions", "list", "--topic", topic, "--limit", "1", "--all", "--json")
    assert [item["id"] for item in ran.json()["items"]] == ids[::-1]


def test_show_prints_the_event_log(sublim: Sublim, topic: str) -> None:
    execution = _enqueued(sublim, topic)
    ran = sublim("executions", "show", execution["id"])
    assert ran.code == 0
    assert "execution requested" in ran.out
    assert "published" in ran.out


def test_show_json_has_the_events(sublim: Sublim, topic: str) -> None:
    execution = _enqueued(sublim, topic)
    shown = sublim("executions", "show", execution["id"], "--json").json()
    assert [event["status"] for event in shown["events"]] == [
        "Initialized",
        "ReadyForDispatch",
        "Dispatched",
    ]


def test_cancel_then_retry(sublim: Sublim, topic: str) -> None:
    execution = _enqueued(sublim, topic)
    cancelled = sublim("executions", "cancel", execution["id"], "--json")
    retried = sublim("executions", "retry", execution["id"], "--json")
    assert cancelled.json()["status"] == "Cancelled"
    assert retried.json()["task_id"] == execution["task_id"]
    assert retried.json()["id"] != execution["id"]


def test_cancelling_twice_is_one_red_line_and_exit_2(sublim: Sublim, topic: str) -> None:
    execution = _enqueued(sublim, topic)
    sublim("executions", "cancel", execution["id"])
    again = sublim("executions", "cancel", execution["id"])
    assert again.code == 2
    assert again.err.startswith("error: ")
    assert "409 Conflict" in again.err
    assert len(again.err.strip().splitlines()) == 1


def test_watch_prints_a_real_executions_events_until_it_finishes(sublim: Sublim) -> None:
    ran_task = sublim("tasks", "create", "Sleep", "--payload", '{"seconds": 1}', "--run", "--json")
    execution_id = ran_task.json()["execution"]["id"]
    ran = sublim("executions", "watch", execution_id)
    assert ran.code == 0, ran.err
    lines = ran.out.splitlines()
    assert "Running" in lines[-3]
    assert "Passed" in lines[-2]
    assert lines[-1].startswith(f"{execution_id} Passed")


def test_watch_json_prints_one_event_per_line_and_exits_1_when_failed(sublim: Sublim) -> None:
    task = sublim("tasks", "create", "Fail", "--run", "--json").json()
    ran = sublim("executions", "watch", "--task", task["id"], "--json")
    events = [json.loads(line) for line in ran.out.splitlines()]
    assert ran.code == 1
    assert {event["execution_id"] for event in events} == {task["execution"]["id"]}
    assert events[-1]["status"] == "Failed"


def test_watch_task_follows_its_unfinished_executions_live_each_line_with_its_id(
    sublim: Sublim, worked_api: ApiProcess, topic: str
) -> None:
    first = _enqueued(sublim, topic)
    second = sublim("tasks", "run", first["task_id"], "--json").json()
    watch = watch_process(worked_api.url, "--task", first["task_id"])
    assert watch.stdout is not None
    shown = [watch.stdout.readline() for _ in range(6)]  # the two logs so far, 3 events each
    for execution in (first, second):
        sublim("executions", "cancel", execution["id"])
    rest = watch.communicate(timeout=60)[0]
    cancelled = [line for line in shown + rest.splitlines() if "Cancelled  attempt" in line]
    assert watch.returncode == 1
    assert sorted(line.split()[2] for line in cancelled) == sorted([first["id"], second["id"]])


def watch_process(url: str, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUBLIM_")}
    env |= {"SUBLIM_API_URL": url, "COLUMNS": "200", "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "sublim.cli", "executions", "watch", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
