"""deploy/compose.yaml: its structure, and each sublim service's command (and healthcheck)
run here on the shared PostgreSQL and Redis, with their hosts mapped to 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.commands import (
    BIN,
    DEPLOY,
    clean_env,
    free_port,
    running,
    wait_http_ok,
    wait_port,
)
from tests.engine_brokers import fresh_redis_url
from tests.pg_databases import fresh_schema, require_postgres

COMPOSE = DEPLOY / "compose.yaml"
SUBLIM_SERVICES = ("api", "datastore", "executor")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def service(name: str) -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"][name]
    return found


def resolved(value: str, given: Mapping[str, str]) -> str:
    """`${NAME:-default}` and `${NAME:?message}` as compose resolves them with `given`."""

    def one(match: re.Match[str]) -> str:
        name, mode, fallback = match.groups()
        if name in given:
            return given[name]
        assert mode == "-", f"compose would refuse to start without {name}: {fallback}"
        return fallback

    return re.sub(r"\$\{(\w+):([-?])([^}]*)\}", one, value)


# Structure


def test_the_stack_has_its_services_on_pinned_images() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "redis", *SUBLIM_SERVICES}
    for name, spec in services.items():
        tag = spec["image"].rpartition(":")[2]
        assert re.search(r"\d", tag), f"{name}: pin the image ({spec['image']})"


def test_every_sublim_service_runs_the_image_that_deploy_dockerfile_builds() -> None:
    tag = re.search(r"-t (\S+) \.", (DEPLOY / "Dockerfile").read_text())
    assert tag is not None
    assert {service(name)["image"] for name in SUBLIM_SERVICES} == {tag.group(1)}


def test_every_serving_service_has_a_healthcheck_and_the_api_probes_both_routes() -> None:
    for name in ("postgres", "redis", "api", "datastore"):
        assert service(name)["healthcheck"]["test"][0] == "CMD", name
    api_probe = " ".join(service("api")["healthcheck"]["test"])
    assert "/{p}" in api_probe
    assert "'healthz', 'readyz'" in api_probe


def test_dependencies_wait_for_healthy_services() -> None:
    services = compose()["services"]
    for name, spec in services.items():
        for needed, condition in spec.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, (name, needed)
            assert "healthcheck" in services[needed], f"{name} waits on {needed}: no check"


def test_the_store_and_broker_point_at_the_stacks_engines() -> None:
    env = service("api")["environment"]
    assert resolved(env["SUBLIM_STORE_URL"], {}).startswith("postgresql://sublim:sublim@postgres:")
    assert env["SUBLIM_BROKER_URL"] == "redis://redis:6379/0"
    assert service("executor")["command"] == ["executor", "sublim.examples.hello:node"]


def test_the_api_refuses_to_start_without_tokens() -> None:
    with pytest.raises(AssertionError, match="SUBLIM_API_TOKENS"):
        resolved(service("api")["environment"]["SUBLIM_API_TOKENS"], {})


def test_the_api_and_the_datastore_take_the_datastore_token_from_the_shell() -> None:
    for name in ("api", "datastore"):
        assert service(name)["environment"]["SUBLIM_DATASTORE_TOKEN"] is None, name
    assert "SUBLIM_DATASTORE_TOKEN" not in service("executor")["environment"]


def test_the_datastore_and_postgres_are_on_an_internal_network_the_executor_is_not_on() -> None:
    assert compose()["networks"]["backend"] == {"internal": True}
    assert service("datastore")["networks"] == service("postgres")["networks"] == ["backend"]
    assert "backend" in service("api")["networks"]
    assert "backend" not in service("executor")["networks"]
    assert "ports" not in service("datastore")


# The commands, run here


def local_command(command: list[str], ports: Mapping[str, int], store_url: str) -> list[str]:
    """The service's command with the stack's addresses replaced by the test's."""
    local = [str(BIN / "sublim")]
    for word in command:
        if word.startswith("postgresql://"):
            word = store_url
        local.append(str(ports.get(word, word)))
    return local


def run_probe(test: list[str], ports: Mapping[str, int], env: Mapping[str, str]) -> None:
    """A healthcheck's command (after "CMD"), on the test's ports, with this Python."""
    probe = test[1:]
    for original, port in ports.items():
        probe = [word.replace(original, str(port)) for word in probe]
    if probe[0] == "python":
        probe[0] = str(BIN / "python")
    subprocess.run(probe, check=True, env=dict(env), timeout=30)


@pytest.fixture
async def engines() -> AsyncIterator[tuple[str, str]]:
    require_postgres()
    async with fresh_schema() as store_url, fresh_redis_url() as broker_url:
        yield store_url, broker_url


DATASTORE_TOKEN = "compose-datastore-token-0123"
SHELL = {
    "SUBLIM_API_TOKENS": json.dumps({"compose-test-token-0123": ["read"]}),
    "SUBLIM_DATASTORE_TOKEN": DATASTORE_TOKEN,
}


def stack_env(
    spec: dict[str, Any], store_url: str, broker_url: str, shell: Mapping[str, str] = SHELL
) -> dict[str, str]:
    """The service's environment as compose makes it from `shell`: a key without a value
    takes the shell's, or is left out."""
    env = {
        key: shell[key] if value is None else resolved(str(value), shell)
        for key, value in spec["environment"].items()
        if value is not None or key in shell
    }
    return env | {"SUBLIM_STORE_URL": store_url, "SUBLIM_BROKER_URL": broker_url}


async def test_the_api_service_serves_and_passes_its_healthcheck(
    engines: tuple[str, str], tmp_path: Path
) -> None:
    store_url, broker_url = engines
    spec, ports = service("api"), {"8080": free_port()}
    env = clean_env(**stack_env(spec, store_url, broker_url))
    with running(local_command(spec["command"], ports, store_url), env, tmp_path) as process:
        assert wait_http_ok(f"http://127.0.0.1:{ports['8080']}/readyz", process) == 200
        run_probe(spec["healthcheck"]["test"], ports, env)


async def test_the_datastore_service_serves_and_passes_its_healthcheck(
    engines: tuple[str, str], tmp_path: Path
) -> None:
    store_url, broker_url = engines
    spec, ports = service("datastore"), {"50051": free_port()}
    env = clean_env(**stack_env(spec, store_url, broker_url))
    with running(local_command(spec["command"], ports, store_url), env, tmp_path) as process:
        wait_port(ports["50051"], process)
        run_probe(spec["healthcheck"]["test"], ports, env)


def test_the_datastore_service_refuses_to_start_without_its_token() -> None:
    store_url, broker_url = "postgresql://sublim@127.0.0.1:1/unused", "memory://"
    spec, ports = service("datastore"), {"50051": free_port()}
    shell = {k: v for k, v in SHELL.items() if k != "SUBLIM_DATASTORE_TOKEN"}
    env = clean_env(**stack_env(spec, store_url, broker_url, shell))
    command = local_command(spec["command"], ports, store_url)
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "SUBLIM_DATASTORE_TOKEN" in result.stderr


async def test_the_executor_service_runs_the_bundled_node(
    engines: tuple[str, str], tmp_path: Path
) -> None:
    store_url, broker_url = engines
    spec = service("executor")
    env = clean_env(**stack_env(spec, store_url, broker_url))
    with running(local_command(spec["command"], {}, store_url), env, tmp_path) as process:
        await asyncio.sleep(3)
        assert process.poll() is None, (tmp_path / "process.log").read_text()
