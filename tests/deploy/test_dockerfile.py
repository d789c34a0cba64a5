"""The Dockerfiles: hadolint, our own rules, and every command they run, run here (Docker does
not run on our machines): the wheel build, the pinned install, the ENTRYPOINT + CMD, and the
executor pattern."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.commands import (
    BIN,
    DEPLOY,
    ROOT,
    clean_env,
    free_port,
    running,
    tool,
    wait_http_ok,
)

DOCKERFILES = [DEPLOY / "Dockerfile", DEPLOY / "Dockerfile.executor"]


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def instructions(dockerfile: Path) -> list[Instruction]:
    """The instructions, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines()]
    parsed = [line.split(maxsplit=1) for line in lines if line and not line.startswith("#")]
    return [Instruction(words[0].upper(), words[1] if len(words) > 1 else "") for words in parsed]


def of_kind(dockerfile: Path, keyword: str) -> list[str]:
    return [i.arguments for i in instructions(dockerfile) if i.keyword == keyword]


def arg_defaults(dockerfile: Path) -> dict[str, str]:
    pairs = [a.split("=", 1) for a in of_kind(dockerfile, "ARG") if "=" in a]
    return {name: value for name, value in pairs}


# Lint


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_finds_nothing(dockerfile: Path) -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", dockerfile], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_base_image_is_pinned_to_a_version(dockerfile: Path) -> None:
    defaults = arg_defaults(dockerfile)
    for base in of_kind(dockerfile, "FROM"):
        image = re.sub(r"\$\{(\w+)\}", lambda m: defaults.get(m.group(1), ""), base.split()[0])
        tag = image.rpartition(":")[2]
        assert ":" in image, base
        assert re.search(r"\d", tag), base
        assert tag != "latest", base


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_the_image_runs_as_a_user_other_than_root(dockerfile: Path) -> None:
    kinds = [i.keyword for i in instructions(dockerfile)]
    users = of_kind(dockerfile, "USER")
    assert users, "no USER: the image would run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert kinds.index("USER") < kinds.index("CMD")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_entrypoint_and_cmd_are_in_exec_form(dockerfile: Path) -> None:
    for keyword in ("ENTRYPOINT", "CMD"):
        for arguments in of_kind(dockerfile, keyword):
            assert isinstance(json.loads(arguments), list), f"{keyword} {arguments}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_no_url_is_added_and_pip_keeps_no_cache(dockerfile: Path) -> None:
    assert not any("://" in a for a in of_kind(dockerfile, "ADD"))
    for run in of_kind(dockerfile, "RUN"):
        for pip in re.findall(r"pip (?:install|wheel)[^&]*", run):
            assert "--no-cache-dir" in pip, pip


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_a_healthcheck_or_the_reason_for_none(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    assert "HEALTHCHECK" in of_kind(dockerfile, "HEALTHCHECK") or "# No HEALTHCHECK" in text


def test_the_image_starts_sublim() -> None:
    dockerfile = DEPLOY / "Dockerfile"
    assert of_kind(dockerfile, "ENTRYPOINT") == ['["sublim"]']
    assert json.loads(of_kind(dockerfile, "CMD")[0]) == ["api"]


# The commands they run


def build_context_copy(destination: Path) -> Path:
    """What the build stage COPYs, and nothing else: the wheel must build from that."""
    destination.mkdir()
    for source in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / source, destination / source)
    shutil.copytree(ROOT / "src", destination / "src")
    return destination


def test_the_build_stage_makes_a_wheel_with_the_sublim_command(tmp_path: Path) -> None:
    context = build_context_copy(tmp_path / "context")
    [run] = [r for r in of_kind(DEPLOY / "Dockerfile", "RUN") if "pip wheel" in r]
    wheels = tmp_path / "wheels"
    argv = [str(wheels) if word == "/wheels" else word for word in run.split()]
    subprocess.run([sys.executable, "-m", *argv], check=True, capture_output=True, cwd=context)
    [wheel] = (tmp_path / "wheels").glob("sublim-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "sublim = sublim.cli:main" in archive.read(entry_points).decode()
    assert "sublim/examples/hello.py" in names


def locked_versions(lock: Path) -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", lock.read_text(), re.MULTILINE)
    return {name.lower(): version for name, version in pins}


def test_the_runtime_lock_pins_what_the_main_lock_pins() -> None:
    runtime = locked_versions(DEPLOY / "requirements.runtime.lock")
    main = locked_versions(ROOT / "requirements.lock")
    assert {"asyncpg", "redis", "google-cloud-firestore", "fastapi"} <= runtime.keys()
    assert {name: main.get(name) for name in runtime} == runtime


@pytest.mark.slow
def test_the_runtime_install_resolves_with_hashes(tmp_path: Path) -> None:
    """The image's `pip install --require-hashes` (a dry run: it downloads, installs nothing)."""
    subprocess.run([sys.executable, "-m", "venv", tmp_path / "venv"], check=True)
    pip = [tmp_path / "venv" / "bin" / "pip", "install", "--dry-run", "--quiet"]
    lock = DEPLOY / "requirements.runtime.lock"
    argv = [*pip, "--no-cache-dir", "--require-hashes", "--requirement", lock]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]


def image_env() -> dict[str, str]:
    """The ENV the runtime image sets."""
    [env] = of_kind(DEPLOY / "Dockerfile", "ENV")
    return dict(pair.split("=", 1) for pair in env.split())


def test_entrypoint_and_cmd_serve_the_api_with_the_images_environment(tmp_path: Path) -> None:
    """`sublim api` as the container runs it: on 0.0.0.0 (so tokens are required), $PORT."""
    port, token = free_port(), "deploy-test-token"
    env = clean_env(**image_env()) | {
        "PORT": str(port),
        "SUBLIM_API_TOKENS": json.dumps({token: ["read"]}),
    }
    argv = [str(BIN / "sublim"), *json.loads(of_kind(DEPLOY / "Dockerfile", "CMD")[0])]
    with running(argv, env, tmp_path) as process:
        assert wait_http_ok(f"http://127.0.0.1:{port}/healthz", process) == 200
        assert wait_http_ok(f"http://127.0.0.1:{port}/readyz", process) == 200


def test_the_executor_pattern_runs_the_users_module_from_the_working_directory(
    tmp_path: Path,
) -> None:
    """Dockerfile.executor copies `myapp/` into the working directory and runs its node."""
    package = tmp_path / "myapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tasks.py").write_text("from sublim.examples.hello import node\n")
    command = json.loads(of_kind(DEPLOY / "Dockerfile.executor", "CMD")[0])
    env = clean_env(SUBLIM_BROKER_URL=f"sqlite:///{tmp_path / 'broker.db'}")
    with running([str(BIN / "sublim"), *command], env, tmp_path) as process:
        time.sleep(3)
        assert process.poll() is None, (tmp_path / "process.log").read_text()


def test_the_executors_application_code_is_owned_by_root_not_the_runtime_user() -> None:
    """The code and /app belong to root (COPY without --chown; /app chowned while root):
    the runtime user can import them, not rewrite them or drop a module beside them."""
    runtime_user = of_kind(DEPLOY / "Dockerfile", "USER")[-1].split(":")[0]
    user, app_chowned = runtime_user, False
    for instruction in instructions(DEPLOY / "Dockerfile.executor"):
        if instruction.keyword == "USER":
            user = instruction.arguments.split(":")[0]
        chown = re.search(r"--chown=([^:\s]+)", instruction.arguments)
        if instruction.keyword in {"COPY", "ADD"}:
            assert chown is None or chown.group(1) in {"0", "root"}, instruction.arguments
        if instruction.keyword == "RUN" and re.search(
            r"chown (root|0):(root|0) /app\b", instruction.arguments
        ):
            assert user in {"0", "root"}, "chown /app needs root"
            app_chowned = True
    assert app_chowned, "/app is the runtime user's home: make it root's"
    assert user == runtime_user
