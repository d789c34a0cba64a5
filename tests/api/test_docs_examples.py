"""The curl examples of docs/api.md run as they are against a real `sublim api`."""

from __future__ import annotations

import os
import re
import subprocess

from tests.api.conftest import PUSH_TOKEN, ROOT, ApiProcess

DOC = ROOT / "docs" / "api.md"


def runnable_examples() -> str:
    """The doc's bash blocks, in order, leaving out those that start a server."""
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    return "\n".join(block for block in blocks if "sublim api" not in block)


def test_the_curl_examples_of_the_api_guide_work(api: ApiProcess) -> None:
    env = os.environ | {"API": api.url, "SUBLIM_PUSH_TOKEN": PUSH_TOKEN}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", runnable_examples()],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout
    assert '"topic":"Thumbnail"' in output
    assert "idempotent-replayed: true" in output.lower()
    assert '"status":"Cancelled"' in output
    assert "retry of" in output
    assert "event: end" in output
    assert '"outcome":"' in output
    for problem in ("bad-request", "unprocessable-entity", "not-found"):
        assert f"urn:sublim:problem:{problem}" in output
    assert "sublim_http_requests_total" in output
