"""`sublim api --help` and `sublim up` serving the API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import ROOT, start_api


def _help(command: str) -> str:
    env = os.environ | {"COLUMNS": "200", "NO_COLOR": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "sublim.cli", command, "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


@pytest.mark.parametrize("command", ["api", "up"])
def test_help_shows_each_option_with_its_env_var_and_default(command: str) -> None:
    text = _help(command)
    for option, env, default in [
        ("--host", "SUBLIM_HOST", "127.0.0.1"),
        ("--port", "SUBLIM_PORT", "8080"),
        ("--store", "SUBLIM_STORE_URL", "sqlite:///./sublim.db"),
        ("--broker", "SUBLIM_BROKER_URL", "sqlite:///./sublim.db"),
    ]:
        line = next(line for line in text.splitlines() if option in line)
        assert env in line, line
        assert default in line, line
    assert "SUBLIM_CONFIG" in text


def test_sublim_up_serves_the_api_and_prints_its_urls(tmp_path: Path) -> None:
    up = start_api(tmp_path, {}, command="up")
    try:
        with httpx.Client(base_url=up.url) as http:
            created = http.post("/v1/tasks", json={"topic": "Up", "execute": True})
            assert created.status_code == 201
            assert http.get("/readyz").status_code == 200
    finally:
        up.stop()
    output = up.log.read_text()
    assert f"{up.url}/docs" in output
    assert up.proc.returncode == 0


def test_an_api_that_requires_tokens_without_any_refuses_to_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUBLIM_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sublim.cli",
            "api",
            "--host",
            "0.0.0.0",
            "--port",
            "1",
            "--store",
            "memory://",
            "--broker",
            "memory://",
        ],
        cwd=tmp_path,
        env=env | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "no api_tokens" in result.stderr
