"""Issue 10, item 4: event streams are capped per token and per process, live for a bounded
time (the client resumes with Last-Event-ID), and a bad Last-Event-ID is a 422.

Before: no cap, streams lived until their execution finished, and a Last-Event-ID of
5,000 digits was a 500 with a traceback in the log."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

import sublim
from tests.api.conftest import ApiProcess, assert_problem, create_task, push_envelope, start_api
from tests.api.conftest import update_of as update

PUSH_TOKEN = "push-token-of-the-stream-tests"
ALICE, BOB = "alice-token-0123456789", "bob-token-0123456789ab"
TOKENS = {ALICE: ["admin"], BOB: ["admin"]}
STREAM = {"Accept": "text/event-stream"}


@pytest.fixture(scope="module")
def capped_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    env = {
        "SUBLIM_AUTH": "required",
        "SUBLIM_API_TOKENS": json.dumps(TOKENS),
        "SUBLIM_MAX_EVENT_STREAMS_PER_TOKEN": "2",
        "SUBLIM_MAX_EVENT_STREAMS": "3",
    }
    process = start_api(tmp_path_factory.mktemp("capped"), env)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def short_lived_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    env = {"SUBLIM_EVENT_STREAM_SECONDS": "0.5", "SUBLIM_PUSH_TOKEN": PUSH_TOKEN}
    process = start_api(tmp_path_factory.mktemp("short-lived"), env)
    yield process
    process.stop()


def _events_path(api: ApiProcess, token: str) -> tuple[httpx.Client, str]:
    http = api.client(token)
    execution = create_task(http, "Capped", execute=True)["execution"]
    return http, f"/v1/executions/{execution['id']}/events"


def _open(stack: ExitStack, http: httpx.Client, path: str) -> httpx.Response:
    return stack.enter_context(http.stream("GET", path, headers=STREAM))


def test_a_token_past_its_stream_cap_gets_a_429_with_retry_after(capped_api: ApiProcess) -> None:
    alice, path = _events_path(capped_api, ALICE)
    with ExitStack() as stack:
        assert [_open(stack, alice, path).status_code for _ in range(2)] == [200, 200]
        refused = alice.get(path, headers=STREAM)
        assert_problem(refused, 429)
        assert refused.headers["retry-after"].isdigit()
        bob, _ = _events_path(capped_api, BOB)
        assert _open(stack, bob, path).status_code == 200  # another token has room
        assert_problem(bob.get(path, headers=STREAM), 429)  # but the process is full (3)
    assert _status_once_slots_return(alice, path) == 200


def _status_once_slots_return(http: httpx.Client, path: str, wait: float = 5.0) -> int:
    """A stream's slot comes back when the server sees its connection close, a moment after
    the client closed it: the status of a new stream once it is not refused (or at `wait`)."""
    deadline = time.monotonic() + wait
    while True:
        with http.stream("GET", path, headers=STREAM | {"Last-Event-ID": "999"}) as response:
            if response.status_code != 429 or time.monotonic() > deadline:
                return response.status_code
        time.sleep(0.05)


def _push(http: httpx.Client, execution: dict[str, Any], seq: int, status: str) -> None:
    fields = {"result": 1, "complete": True} if status == "Passed" else {}
    envelope = push_envelope(update(execution, seq, status, **fields), message_id=str(seq))
    response = http.post(f"/task_execution_update?token={PUSH_TOKEN}", json=envelope)
    assert response.status_code == 200, response.text


def test_a_stream_ends_at_its_lifetime_with_a_reconnect_message(
    short_lived_api: ApiProcess,
) -> None:
    with short_lived_api.client() as http:
        execution = create_task(http, "Short", execute=True)["execution"]
        started = time.monotonic()
        path = f"/v1/executions/{execution['id']}/events"
        with http.stream("GET", path, headers=STREAM) as response:
            lines = list(response.iter_lines())
    assert time.monotonic() - started < 5
    assert "event: reconnect" in lines
    assert "event: end" not in lines


def test_the_client_resumes_after_each_lifetime_without_losing_an_event(
    short_lived_api: ApiProcess,
) -> None:
    """Updates come over 4 s, past eight 0.5 s lifetimes (more than the client's five
    unasked-for reconnections): every event arrives once, in order."""
    with short_lived_api.client() as http:
        execution = create_task(http, "Resumed", execute=True)["execution"]
        seen: list[str] = []
        client = sublim.Client(short_lived_api.url)
        reader = threading.Thread(
            target=lambda: seen.extend(e.status for e in client.stream_events(execution["id"]))
        )
        reader.start()
        time.sleep(2.0)
        _push(http, execution, 1, "Running")
        time.sleep(2.0)
        _push(http, execution, 2, "Passed")
        reader.join(timeout=20)
    assert not reader.is_alive()
    assert seen == ["Initialized", "ReadyForDispatch", "Dispatched", "Running", "Passed"]


@pytest.mark.parametrize("bad", [b"9" * 5000, b"-1", b"abc", b"1.5", "²".encode("latin-1")])
def test_a_last_event_id_that_is_not_a_small_integer_is_a_422(
    short_lived_api: ApiProcess, bad: bytes
) -> None:
    with short_lived_api.client() as http:
        execution = create_task(http, "BadId", execute=True)["execution"]
        headers = {b"Accept": b"text/event-stream", b"Last-Event-ID": bad}
        response = http.get(f"/v1/executions/{execution['id']}/events", headers=headers)
    assert_problem(response, 422)
    assert ["header", "last-event-id"] in [error["loc"] for error in response.json()["errors"]]


def test_a_valid_last_event_id_resumes_after_that_event(short_lived_api: ApiProcess) -> None:
    with short_lived_api.client() as http:
        execution = create_task(http, "GoodId", execute=True)["execution"]
        headers = STREAM | {"Last-Event-ID": "2"}
        path = f"/v1/executions/{execution['id']}/events"
        with http.stream("GET", path, headers=headers) as response:
            ids = [line for line in response.iter_lines() if line.startswith("id: ")]
    assert ids == ["id: 3"]
