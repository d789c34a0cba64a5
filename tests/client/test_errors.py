"""The API's problem+json answers raised as the `sublim.errors` tree, with the server's
detail; no answer at all raised as `Unreachable`."""

from __future__ import annotations

import httpx
import pytest

import sublim
from sublim.client._wire import error_from
from sublim.errors import (
    ApiError,
    ApiUnavailable,
    AuthError,
    BackendError,
    Conflict,
    ExecutionNotFound,
    InvalidInput,
    NotFound,
    TaskNotFound,
    Unreachable,
)
from tests.api.conftest import BOSS, READER, ApiProcess, free_port

#: A well-formed id that names nothing (a malformed one is a 422, not a 404).
MISSING = "01HZZZZZZZZZZZZZZZZZZZZZZZ"


def test_an_unknown_task_raises_task_not_found_with_the_servers_detail(
    client: sublim.Client,
) -> None:
    with pytest.raises(TaskNotFound) as raised:
        client.get_task(MISSING)
    assert isinstance(raised.value, ApiError)
    assert raised.value.status_code == 404
    assert raised.value.detail == f"no task with id {MISSING!r}"
    assert raised.value.task_id == MISSING


@pytest.mark.parametrize("action", ["get_execution", "cancel", "retry", "events"])
def test_an_unknown_execution_raises_execution_not_found(
    client: sublim.Client, action: str
) -> None:
    with pytest.raises(ExecutionNotFound) as raised:
        getattr(client, action)(MISSING)
    assert raised.value.execution_id == MISSING
    assert MISSING in str(raised.value)


def test_enqueueing_for_an_unknown_task_raises_task_not_found(client: sublim.Client) -> None:
    with pytest.raises(TaskNotFound):
        client.enqueue(MISSING)


def test_streaming_an_unknown_execution_raises_execution_not_found(
    client: sublim.Client,
) -> None:
    with pytest.raises(ExecutionNotFound):
        list(client.stream_events(MISSING))


def test_cancelling_a_finished_execution_raises_conflict(client: sublim.Client, topic: str) -> None:
    execution = client.enqueue(client.create_task(topic).id)
    client.cancel(execution.id)
    with pytest.raises(Conflict) as raised:
        client.cancel(execution.id)
    assert isinstance(raised.value, ApiError)
    assert raised.value.status_code == 409


def test_retrying_an_unfinished_execution_raises_conflict(
    client: sublim.Client, topic: str
) -> None:
    execution = client.enqueue(client.create_task(topic).id)
    with pytest.raises(Conflict, match="has not finished"):
        client.retry(execution.id)


def test_an_invalid_topic_raises_invalid_input_with_the_field_errors(
    client: sublim.Client,
) -> None:
    with pytest.raises(InvalidInput) as raised:
        client.create_task("no spaces")
    assert isinstance(raised.value, ApiError)
    assert raised.value.status_code == 422
    assert raised.value.errors[0]["loc"] == ["body", "topic"]


def test_an_idempotency_key_reused_with_another_body_raises_invalid_input(
    client: sublim.Client, topic: str
) -> None:
    client.create_task(topic, idempotency_key=f"k-{topic}")
    with pytest.raises(InvalidInput):
        client.create_task(topic, {"other": True}, idempotency_key=f"k-{topic}")


def test_no_token_raises_auth_error_401(secured_api: ApiProcess) -> None:
    with sublim.Client(secured_api.url) as anonymous, pytest.raises(AuthError) as raised:
        anonymous.list_tasks()
    assert raised.value.status_code == 401
    assert "bearer token is required" in raised.value.detail


def test_an_unknown_token_raises_auth_error_401(secured_api: ApiProcess) -> None:
    with sublim.Client(secured_api.url, "wrong") as stranger, pytest.raises(AuthError) as raised:
        stranger.list_tasks()
    assert raised.value.status_code == 401


def test_a_token_without_the_scope_raises_auth_error_403(secured_api: ApiProcess) -> None:
    with sublim.Client(secured_api.url, READER) as reader:
        assert reader.list_tasks().items is not None
        with pytest.raises(AuthError) as raised:
            reader.create_task("Thumbnail")
    assert raised.value.status_code == 403
    assert "'write'" in raised.value.detail


def test_the_token_is_read_from_the_environment(
    secured_api: ApiProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUBLIM_API_URL", secured_api.url)
    monkeypatch.setenv("SUBLIM_API_TOKEN", BOSS)
    with sublim.Client() as from_env:
        assert from_env.create_task("FromEnv").topic == "FromEnv"


def test_an_api_that_does_not_listen_raises_unreachable() -> None:
    nobody = sublim.Client(f"http://127.0.0.1:{free_port()}")
    with nobody, pytest.raises(Unreachable, match="cannot reach the API"):
        nobody.healthz()


def test_a_503_answer_is_api_unavailable_with_retry_after() -> None:
    response = httpx.Response(
        503,
        headers={"Retry-After": "2", "Content-Type": "application/problem+json"},
        json={"title": "Service Unavailable", "status": 503, "detail": "StoreError: down"},
    )
    error = error_from(response)
    assert isinstance(error, ApiUnavailable)
    assert isinstance(error, BackendError)
    assert (error.retry_after, error.detail) == (2.0, "StoreError: down")


def test_an_answer_that_is_not_problem_json_keeps_its_text_as_detail() -> None:
    error = error_from(httpx.Response(404, text="nothing here"))
    assert isinstance(error, NotFound)
    assert error.detail == "nothing here"
