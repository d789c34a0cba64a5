"""Bearer tokens and scopes, against a real `sublim api` that requires them."""

from __future__ import annotations

import httpx
import pytest

from sublim.api.auth import Authenticator, auth_required
from sublim.config import Settings
from sublim.errors import ConfigError
from tests.api.conftest import BOSS, READER, WRITER, ApiProcess, assert_problem


def test_a_request_without_a_token_is_a_401_with_a_bearer_challenge(
    secured_api: ApiProcess,
) -> None:
    with secured_api.client() as http:
        response = http.get("/v1/tasks")
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_an_unknown_token_is_a_401_invalid_token(secured_api: ApiProcess) -> None:
    with secured_api.client("forged") as http:
        response = http.get("/v1/tasks")
    assert_problem(response, 401)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_a_read_token_reads_but_cannot_write(secured_api: ApiProcess) -> None:
    with secured_api.client(READER) as http:
        assert http.get("/v1/tasks").status_code == 200
        response = http.post("/v1/tasks", json={"topic": "Denied"})
    assert_problem(response, 403)
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


def test_a_write_token_writes_but_cannot_read(secured_api: ApiProcess) -> None:
    with secured_api.client(WRITER) as http:
        created = http.post("/v1/tasks", json={"topic": "Written"})
        assert created.status_code == 201
        assert_problem(http.get(f"/v1/tasks/{created.json()['id']}"), 403)
        assert http.delete(f"/v1/tasks/{created.json()['id']}").status_code == 204


def test_an_admin_token_reads_and_writes(secured_api: ApiProcess) -> None:
    with secured_api.client(BOSS) as http:
        created = http.post("/v1/tasks", json={"topic": "Admin", "execute": True})
        assert created.status_code == 201
        execution_id = created.json()["execution"]["id"]
        assert http.get(f"/v1/executions/{execution_id}").status_code == 200
        assert http.post(f"/v1/executions/{execution_id}/cancel").status_code == 200


def test_health_metrics_and_docs_stay_open(secured_api: ApiProcess) -> None:
    with secured_api.client() as http:
        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"):
            assert http.get(path).status_code == 200, path


def test_the_push_route_without_a_push_token_wants_a_write_token(secured_api: ApiProcess) -> None:
    with secured_api.client() as http:
        assert_problem(http.post("/task_execution_update", json={}), 401)
    with secured_api.client(READER) as http:
        assert_problem(http.post("/task_execution_update", json={}), 403)
    with secured_api.client(WRITER) as http:
        assert_problem(http.post("/task_execution_update", json={}), 400)


def test_the_openapi_document_declares_the_bearer_scheme_when_enforced(
    secured_api: ApiProcess, client: httpx.Client
) -> None:
    with secured_api.client() as http:
        assert "HTTPBearer" in http.get("/openapi.json").json()["components"]["securitySchemes"]
    assert "securitySchemes" not in client.get("/openapi.json").json().get("components", {})


@pytest.mark.parametrize(
    ("host", "auth", "required"),
    [
        ("127.0.0.1", "auto", False),
        ("::1", "auto", False),
        ("localhost", "auto", False),
        ("127.5.6.7", "auto", False),
        ("0.0.0.0", "auto", True),
        ("::", "auto", True),
        ("127.0.0.1.nip.io", "auto", True),
        ("127.1", "auto", True),
        ("10.1.2.3", "auto", True),
        ("0.0.0.0", "off", False),
        ("127.0.0.1", "required", True),
    ],
)
def test_auto_requires_tokens_unless_listening_on_loopback(
    host: str, auth: str, required: bool
) -> None:
    assert auth_required(Settings(host=host, auth=auth)) is required


def test_requiring_auth_without_any_token_refuses_to_start() -> None:
    with pytest.raises(ConfigError, match="no api_tokens"):
        Authenticator.from_settings(Settings(host="0.0.0.0"))
