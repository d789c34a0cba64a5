"""`sublim tasks …` and `sublim executions …` run as subprocesses against a real API that
runs the bundled example executor (topics Hello, Sleep, Fibonacci and Fail)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.api.conftest import ROOT, ApiProcess, secured_api, topic
from tests.client.conftest import worked_api

__all__ = ["secured_api", "topic", "worked_api"]


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Sublim = Callable[..., Ran]


def run_sublim(url: str, *args: str, env: dict[str, str] | None = None) -> Ran:
    """`python -m sublim.cli ARGS` with SUBLIM_API_URL=url, no colour, a wide terminal."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SUBLIM_")}
    full_env = (
        base
        | {"SUBLIM_API_URL": url, "COLUMNS": "200", "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
        | (env or {})
    )
    result = subprocess.run(
        [sys.executable, "-m", "sublim.cli", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Ran(result.returncode, result.stdout, result.stderr)


@pytest.fixture
def sublim(worked_api: ApiProcess) -> Sublim:
    """Run `sublim ARGS` against the worked API; the keyword `env` adds variables."""

    def run(*args: str, env: dict[str, str] | None = None) -> Ran:
        return run_sublim(worked_api.url, *args, env=env)

    return run
