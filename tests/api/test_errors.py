"""Errors as application/problem+json, against a real `sublim api` process."""

from __future__ import annotations

from collections.abc import Iterator

import httpx

from tests.api.conftest import assert_problem

ONE_MEBIBYTE = 1_048_576  # the default max_body_bytes


def test_malformed_json_is_a_400(client: httpx.Client) -> None:
    response = client.post(
        "/v1/tasks", content=b'{"topic": ', headers={"Content-Type": "application/json"}
    )
    body = assert_problem(response, 400)
    assert "JSON" in body["detail"]


def test_a_body_declared_larger_than_the_limit_is_a_413(client: httpx.Client) -> None:
    big = b'{"topic": "Big", "payload": {"x": "' + b"a" * ONE_MEBIBYTE + b'"}}'
    response = client.post("/v1/tasks", content=big, headers={"Content-Type": "application/json"})
    assert_problem(response, 413)


def test_a_streamed_body_larger_than_the_limit_is_a_413(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"topic": "Big", "payload": {"x": "'
        for _ in range(20):
            yield b"a" * 65536
        yield b'"}}'

    response = client.post(
        "/v1/tasks", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers  # sent chunked
    assert_problem(response, 413)


def test_a_body_that_does_not_validate_is_a_422_naming_the_fields(client: httpx.Client) -> None:
    response = client.post("/v1/tasks", json={"topic": "9 bad", "max_attempts": 0, "extra": 1})
    body = assert_problem(response, 422)
    locations = {tuple(error["loc"]) for error in body["errors"]}
    assert {("body", "topic"), ("body", "max_attempts"), ("body", "extra")} <= locations


def test_a_missing_required_field_is_a_422(client: httpx.Client) -> None:
    body = assert_problem(client.post("/v1/tasks", json={"payload": {}}), 422)
    assert ["body", "topic"] in [error["loc"] for error in body["errors"]]


def test_an_invalid_query_parameter_is_a_422(client: httpx.Client) -> None:
    assert_problem(client.get("/v1/executions", params={"status": "Nope"}), 422)
    assert_problem(client.get("/v1/tasks", params={"limit": 0}), 422)
    assert_problem(client.get("/v1/tasks", params={"limit": 1001}), 422)


def test_an_unknown_route_is_a_404_problem(client: httpx.Client) -> None:
    assert_problem(client.get("/v1/nothing-here"), 404)


def test_a_method_not_allowed_is_a_405_problem(client: httpx.Client) -> None:
    assert_problem(client.put("/v1/tasks"), 405)
