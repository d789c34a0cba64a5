"""Liveness, readiness, metrics and the OpenAPI document of a real `sublim api`."""

from __future__ import annotations

import httpx

from tests.api.conftest import create_task, push, update_of


def test_healthz_and_readyz_answer_when_the_store_and_broker_are_up(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_metrics_count_requests_by_route_template_and_recorded_transitions(
    client: httpx.Client, topic: str
) -> None:
    execution = create_task(client, topic, execute=True)["execution"]
    client.get(f"/v1/executions/{execution['id']}")
    push(client, update_of(execution, 1, "Running"))
    text = client.get("/metrics").text
    assert 'route="/v1/executions/{execution_id}",status="200"' in text
    assert execution["id"] not in text
    assert 'sublim_execution_events_total{status="Running"}' in text
    assert 'sublim_updates_received_total{outcome="applied",route="push"}' in text
    assert "sublim_http_request_duration_seconds_bucket" in text


def test_the_openapi_document_lists_every_route_of_the_design(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    expected = {
        "/v1/tasks": {"get", "post"},
        "/v1/tasks/{task_id}": {"get", "patch", "delete"},
        "/v1/tasks/{task_id}/executions": {"get", "post"},
        "/v1/executions": {"get"},
        "/v1/executions/{execution_id}": {"get"},
        "/v1/executions/{execution_id}/cancel": {"post"},
        "/v1/executions/{execution_id}/retry": {"post"},
        "/v1/executions/{execution_id}/events": {"get"},
        "/task_execution_update": {"post"},
        "/healthz": {"get"},
        "/readyz": {"get"},
        "/metrics": {"get"},
    }
    assert {path: set(paths[path]) for path in expected} == expected


def test_errors_are_documented_as_problem_json(client: httpx.Client) -> None:
    responses = client.get("/openapi.json").json()["paths"]["/v1/tasks/{task_id}"]["get"][
        "responses"
    ]
    assert set(responses["404"]["content"]) == {"application/problem+json"}


def test_the_docs_page_is_served(client: httpx.Client) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()
