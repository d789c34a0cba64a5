"""The core runs without optional extras: the API imports with google-auth absent, and a
push-token check then names the extra to install."""

from __future__ import annotations

import subprocess
import sys

BLOCK_GOOGLE = "import sys; sys.modules['google'] = None; "


def run_without_google(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCK_GOOGLE + code], capture_output=True, text=True, timeout=60
    )


def test_the_api_app_imports_without_the_gcp_extra() -> None:
    done = run_without_google("import sublim.api.app, sublim.cli.app; print('ok')")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_verifying_a_push_token_without_the_gcp_extra_names_the_extra() -> None:
    code = (
        "from starlette.exceptions import HTTPException\n"
        "from sublim.api.push_oidc import PushTokenVerifier\n"
        "try:\n"
        "    PushTokenVerifier('aud', None, None)._decode('x.y.z', {})\n"
        "except HTTPException as exc:\n"
        "    print(exc.status_code, exc.detail)\n"
    )
    done = run_without_google(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("503 ")
    assert "pip install 'sublim[gcp]'" in done.stdout
