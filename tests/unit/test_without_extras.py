"""The core runs without optional extras: the API imports with google-auth absent, a push-token
check then names the extra to install, and so does every command configured with a backend or
feature whose extra is missing, in one line, without a traceback.

Each test runs a fresh interpreter in which the extra's modules cannot be imported (this
process's test environment has every extra installed); tests/install/ proves the same on a
real install without extras."""

from __future__ import annotations

import os
import subprocess
import sys

GOOGLE = ("google",)


def run_without(
    modules: tuple[str, ...], code: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`code` in a fresh interpreter where importing any of `modules` fails."""
    block = "".join(f"sys.modules[{name!r}] = None; " for name in modules)
    base = {k: v for k, v in os.environ.items() if not k.startswith("SUBLIM_")}
    return subprocess.run(
        [sys.executable, "-c", f"import sys; {block}{code}"],
        capture_output=True,
        text=True,
        timeout=60,
        env=base | {"COLUMNS": "200", "NO_COLOR": "1"} | (env or {}),
    )


def sublim_without(
    modules: tuple[str, ...], *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The `sublim` command with `args`, where importing any of `modules` fails."""
    code = f"sys.argv = ['sublim', *{list(args)!r}]; import sublim.cli; sublim.cli.main()"
    return run_without(modules, code, env)


def test_the_api_app_imports_without_the_gcp_extra() -> None:
    done = run_without(GOOGLE, "import sublim.api.app, sublim.cli.app; print('ok')")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_verifying_a_push_token_without_the_gcp_extra_names_the_extra() -> None:
    code = (
        "from starlette.exceptions import HTTPException\n"
        "from sublim.api.push_oidc import PushTokenVerifier\n"
        "try:\n"
        "    PushTokenVerifier('aud', 'push@p.iam.example', None)._decode('x.y.z', {})\n"
        "except HTTPException as exc:\n"
        "    print(exc.status_code, exc.detail)\n"
    )
    done = run_without(GOOGLE, code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("503 ")
    assert "pip install 'sublim[gcp]'" in done.stdout


def test_the_api_refuses_to_start_with_a_push_audience_without_the_gcp_extra() -> None:
    code = (
        "from sublim.api.app import create_app\n"
        "from sublim.config import Settings\n"
        "from sublim.errors import ConfigError\n"
        "from sublim.core.service import Service\n"
        "settings = Settings(store_url='memory://', broker_url='memory://',\n"
        "    push_audience='https://api.example', push_service_account='push@p.iam.example')\n"
        "try:\n"
        "    create_app(Service.from_settings(settings), settings)\n"
        "except ConfigError as exc:\n"
        "    print('refused:', exc)\n"
    )
    done = run_without(GOOGLE, code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("refused: push_audience is set")
    assert "pip install 'sublim[gcp]'" in done.stdout


def test_a_broker_whose_extra_is_missing_is_one_line_naming_the_extra() -> None:
    done = sublim_without(("redis",), "up", "--broker", "redis://127.0.0.1:1/0")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "pip install 'sublim[redis]'" in done.stderr


def test_provisioning_pubsub_without_the_gcp_extra_names_the_extra() -> None:
    done = sublim_without(GOOGLE, "gcp", "provision", "--project", "p", "--topic", "Hello")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "pip install 'sublim[gcp]'" in done.stderr


def test_invalid_settings_at_start_are_one_line_without_a_traceback() -> None:
    done = sublim_without((), "up", env={"SUBLIM_LEASE_SECONDS": "soon"})
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "SUBLIM_LEASE_SECONDS" in done.stderr
