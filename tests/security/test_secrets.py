"""Secrets and identities: short secrets and half-configured identities refuse to start, and
no secret reaches a log line, a command's output or a response."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from sublim.api.auth import Authenticator, auth_required
from sublim.broker.memory import MemoryBroker
from sublim.config import Settings, load_settings
from sublim.core.service import Service
from sublim.errors import ConfigError, StoreError
from sublim.store.memory import MemoryStore
from tests.api.conftest import PUSH_TOKEN, ROOT, free_port, in_process_http, start_api
from tests.pg_databases import fresh_schema

PASSWORD = "hunter2-very-secret"
SECRET = "SECRET-not-the-push-token"


def unwrapped(text: str) -> str:
    """`text` without any whitespace: Rich folds long lines, a secret may span two."""
    return "".join(text.split())


def test_an_empty_push_token_is_refused_at_start() -> None:
    with pytest.raises(ConfigError, match="at least 16 characters"):
        load_settings(push_token="")
    with pytest.raises(ValidationError, match="push_token"):
        Settings(push_token="")


def test_an_api_with_an_empty_push_token_does_not_start_so_no_forged_push_is_recorded() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUBLIM_")}
    command = [sys.executable, "-m", "sublim.cli", "api", "--port", str(free_port())]
    env |= {"SUBLIM_PUSH_TOKEN": "", "PYTHONPATH": str(ROOT)}
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("sublim api served with an empty push token")
    assert result.returncode == 2
    said = " ".join(result.stderr.split())
    assert "push_token (SUBLIM_PUSH_TOKEN) must be at least 16 characters" in said


def test_a_short_api_token_is_refused_without_showing_it() -> None:
    with pytest.raises(ConfigError, match="at least 16 characters") as refused:
        load_settings(api_tokens={"long-enough-token-1": ["read"], "s3cret": ["admin"]})
    assert "s3cret" not in str(refused.value)
    with pytest.raises(ValidationError):
        Settings(api_tokens={"               ": ["read"]})


def test_an_audience_without_a_service_account_is_refused() -> None:
    with pytest.raises(ConfigError, match="SUBLIM_PUSH_SERVICE_ACCOUNT"):
        load_settings(push_audience="https://api.example/task_execution_update")
    with pytest.raises(ValidationError, match="push_service_account"):
        Settings(push_audience="https://api.example/task_execution_update")


def test_a_name_that_starts_with_127_is_not_loopback_so_tokens_are_required() -> None:
    settings = Settings(host="127.attacker.example")
    assert auth_required(settings) is True
    with pytest.raises(ConfigError, match="no api_tokens"):
        Authenticator.from_settings(settings)


def _wait_for(path: Path, text: str, seconds: float = 10.0) -> str:
    deadline = time.monotonic() + seconds
    while text not in (content := path.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return content


def test_the_access_log_does_not_show_the_push_token(tmp_path: Path) -> None:
    env = {"SUBLIM_LOG_LEVEL": "DEBUG", "SUBLIM_PUSH_TOKEN": PUSH_TOKEN}
    api = start_api(tmp_path, env)
    try:
        with api.client() as http:
            http.post(f"/task_execution_update?token={SECRET}", json={})
            http.post(f"/task_execution_update?token={PUSH_TOKEN}", json={})
        log = _wait_for(api.log, "token=***", 10.0)
    finally:
        api.stop()
    assert unwrapped(log).count("/task_execution_update?token=***") == 2, log[-3000:]
    assert SECRET not in unwrapped(log)
    assert PUSH_TOKEN not in unwrapped(log)


@pytest.fixture
async def pg_url_with_password() -> AsyncIterator[str]:
    """A fresh PostgreSQL schema's URL with a password (trust auth ignores it)."""
    async with fresh_schema() as url:
        assert "postgres@" in url
        yield url.replace("postgres@", f"postgres:{PASSWORD}@", 1)


def test_sublim_up_prints_no_url_password(pg_url_with_password: str, tmp_path: Path) -> None:
    env = {"SUBLIM_LOG_LEVEL": "DEBUG"}
    up = start_api(tmp_path, env, command="up", store_url=pg_url_with_password)
    try:
        with up.client() as http:
            assert http.get("/readyz").status_code == 200
    finally:
        up.stop()
    output = unwrapped(up.log.read_text())
    assert "store=postgresql://postgres:***@127.0.0.1" in output
    assert PASSWORD not in output


def datastore_output(store_url: str, log: Path) -> str:
    """The stderr of a `sublim datastore` serving `store_url`, once it started and stopped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUBLIM_")}
    command = [sys.executable, "-m", "sublim.cli", "datastore", "--port", "0"]
    process = subprocess.Popen(
        [*command, "--store", store_url],
        env=env | {"SUBLIM_LOG_LEVEL": "INFO", "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = process.stdout.readline()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)
    assert ready.startswith("sublim datastore listening on"), log.read_text()
    return log.read_text()


def test_sublim_datastore_logs_no_url_password(pg_url_with_password: str, tmp_path: Path) -> None:
    output = unwrapped(datastore_output(pg_url_with_password, tmp_path / "datastore.log"))
    assert "servingstorepostgresql://postgres:***@127.0.0.1" in output
    assert PASSWORD not in output


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    settings = Settings(store_url="memory://", broker_url="memory://")
    async with Service(MemoryStore(), MemoryBroker(), settings) as svc:
        yield svc


async def test_readyz_does_not_return_a_url_password(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down() -> None:
        raise StoreError(f"cannot connect to postgresql://sublim:{PASSWORD}@db:5432/sublim")

    monkeypatch.setattr(service, "ping", down)
    async with in_process_http(service) as http:
        response = await http.get("/readyz")
    assert response.status_code == 503
    assert "postgresql://sublim:***@db:5432/sublim" in response.json()["detail"]
    assert PASSWORD not in response.text
