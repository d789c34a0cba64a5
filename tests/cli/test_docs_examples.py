"""The examples of docs/cli.md (bash) and docs/client.md (Python) run as they are against a
real `sublim up` with the example executor."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.conftest import ROOT, ApiProcess

DOCS = ROOT / "docs"


def blocks(doc: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", doc.read_text(), flags=re.DOTALL)


def _env(api: ApiProcess) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SUBLIM_")}
    path = f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}"
    return base | {
        "SUBLIM_API_URL": api.url,
        "PATH": path,
        "NO_COLOR": "1",
        "COLUMNS": "200",
        "PYTHONPATH": str(ROOT),
    }


def _run(args: list[str], api: ApiProcess) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, env=_env(api), cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )


def test_the_cli_guides_examples_work(worked_api: ApiProcess) -> None:
    script = "\n".join(blocks(DOCS / "cli.md", "bash"))
    result = _run(["bash", "-euo", "pipefail", "-c", script], worked_api)
    assert result.returncode == 0, result.stderr
    assert "Hello, Ada!" in result.stdout
    assert "it failed, as designed: exit 1" in result.stdout
    assert "failing by design" in result.stdout
    assert "Cancelled" in result.stdout
    assert "exit 2" in result.stdout
    assert "error: no task with id '01J9ZQ8M4T4B0F7W3X2Y1V6N5K' (404 Not Found)" in result.stderr
    assert "body.topic: String should match pattern" in result.stderr


#: What each Python block of docs/client.md prints (among other lines), in order.
CLIENT_OUTPUTS = [
    "Passed {'greeting': 'Hello, Ada!'}",
    "['n2', 'n1', 'n0']",
    "01J9ZQ8M4T4B0F7W3X2Y1V6N5K no task with id '01J9ZQ8M4T4B0F7W3X2Y1V6N5K'",
    "['Hello, a!', 'Hello, b!', 'Hello, c!']",
]


def test_every_python_block_of_the_client_guide_is_checked() -> None:
    assert len(blocks(DOCS / "client.md", "python")) == len(CLIENT_OUTPUTS)


@pytest.mark.parametrize("index", range(len(CLIENT_OUTPUTS)))
def test_the_client_guides_examples_work(worked_api: ApiProcess, index: int) -> None:
    code = blocks(DOCS / "client.md", "python")[index]
    result = _run([sys.executable, "-c", code], worked_api)
    assert result.returncode == 0, result.stderr
    assert CLIENT_OUTPUTS[index] in result.stdout
