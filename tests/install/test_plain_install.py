"""`pip install sublim` alone runs: the wheel in a fresh venv without extras runs `sublim up`
with the bundled example executor, and the core commands as processes of their own, on the
embedded default; a backend whose extra is missing is one line naming the extra. Then each
extra alone, in a venv of its own, runs the same smoke on its engine."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.engine_brokers import engine_url
from tests.gcp_emulators import require_pubsub_emulator, unique_project
from tests.install.conftest import (
    DRIVERS,
    Venv,
    free_port,
    install,
    run,
    run_hello,
    serving,
    wait_healthy,
    wait_listening,
)
from tests.pg_databases import fresh_database_sync
from tests.rabbitmq import shared_vhost

EXAMPLE = "sublim.examples.hello:node"
ALL_DRIVERS = tuple(module for modules in DRIVERS.values() for module in modules)


def smoke(venv: Venv, cwd: Path, *options: str, env: dict[str, str] | None = None) -> None:
    """`sublim up --executor EXAMPLE OPTIONS`: a Hello execution over HTTP ends Passed, and
    Ctrl-C stops it cleanly."""
    port = free_port()
    args = ["up", "--executor", EXAMPLE, "--port", str(port), *options]
    with serving(venv, cwd, "up", args, env) as up:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(up, url)
        execution = run_hello(url, "plain")
        assert execution["status"] == "Passed", (execution, up.output())
        assert execution["result"] == {"greeting": "Hello, plain!"}
        assert up.stop() == 0, up.output()
        assert "Traceback" not in up.output()


def test_the_plain_install_runs_sublim_from_the_wheel_without_any_optional_driver(
    plain_venv: Venv,
) -> None:
    importable = plain_venv.importable(["sublim", *ALL_DRIVERS])
    assert importable.pop("sublim")
    assert not any(importable.values()), importable
    installed = plain_venv.path.glob("lib/python3*/site-packages/sublim/__init__.py")
    assert len(list(installed)) == 1  # the wheel's sublim, not this checkout's


def test_sublim_up_on_a_plain_install_runs_an_execution_to_passed(
    plain_venv: Venv, tmp_path: Path
) -> None:
    smoke(plain_venv, tmp_path)
    assert (tmp_path / "sublim.db").exists()  # the embedded default, in the current directory


def test_a_broker_whose_extra_is_missing_stops_sublim_up_with_the_pip_install_to_run(
    plain_venv: Venv, tmp_path: Path
) -> None:
    done = plain_venv.sublim(tmp_path, "up", "--broker", "redis://127.0.0.1:1/0")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "pip install 'sublim[redis]'" in " ".join(done.stderr.split())


#: A URL per extra; each names its extra when loaded without it.
NEEDS_EXTRA = {
    "postgresql://postgres@127.0.0.1:1/sublim": "postgres",
    "redis://127.0.0.1:1/0": "redis",
    "amqp://guest:guest@127.0.0.1:1/": "amqp",
    "nats://127.0.0.1:1": "nats",
    "pubsub://no-such-project": "gcp",
    "firestore://no-such-project": "gcp",
}
LOAD_EACH = """
import json, sys
from sublim.core.backends import broker_from_url, store_from_url
from sublim.errors import ConfigError
said = {}
for url in sys.argv[1:]:
    load = store_from_url if url.split(":")[0] in {"postgresql", "firestore"} else broker_from_url
    try:
        load(url)
    except ConfigError as exc:
        said[url] = str(exc)
print(json.dumps(said))
"""


def test_every_backend_whose_extra_is_missing_names_its_extra(plain_venv: Venv) -> None:
    done = run([plain_venv.bin("python"), "-c", LOAD_EACH, *NEEDS_EXTRA], env=plain_venv.env())
    said: dict[str, str] = json.loads(done.stdout)
    assert set(said) == set(NEEDS_EXTRA)
    for url, extra in NEEDS_EXTRA.items():
        assert f"pip install 'sublim[{extra}]'" in said[url]


def test_the_core_commands_run_as_processes_of_their_own_on_a_plain_install(
    plain_venv: Venv, tmp_path: Path
) -> None:
    """`sublim datastore` serves the SQLite store; `sublim api` uses it over gRPC; `sublim
    executor` runs the example; `sublim tasks` and `sublim executions` drive them."""
    store_port, api_port = free_port(), free_port()
    broker = f"sqlite:///{tmp_path / 'broker.db'}"
    store = f"sqlite:///{tmp_path / 'store.db'}"
    datastore_args = ["datastore", "--store", store, "--port", str(store_port)]
    api_args = ["api", "--port", str(api_port), "--broker", broker]
    url = f"http://127.0.0.1:{api_port}"
    with (
        serving(plain_venv, tmp_path, "datastore", datastore_args) as datastore,
        serving(plain_venv, tmp_path, "executor", ["executor", EXAMPLE, "--broker", broker]),
    ):
        wait_listening(datastore, store_port)
        api_store = ["--store", f"grpc://127.0.0.1:{store_port}"]
        with serving(plain_venv, tmp_path, "api", [*api_args, *api_store]) as api:
            wait_healthy(api, url)
            execution = _run_with_the_cli(plain_venv, tmp_path, url)
    assert execution["status"] == "Passed"
    assert execution["result"] == {"greeting": "Hello, cli!"}


def _run_with_the_cli(venv: Venv, cwd: Path, url: str) -> dict[str, Any]:
    """`sublim tasks create --run`, then `sublim executions watch` until it finishes; the
    execution, read over HTTP."""
    env = {"SUBLIM_API_URL": url}
    payload = ["--payload", '{"name": "cli"}']
    created = venv.sublim(cwd, "tasks", "create", "Hello", *payload, "--run", "--json", env=env)
    assert created.returncode == 0, created.stderr
    task = json.loads(created.stdout)
    watched = venv.sublim(cwd, "executions", "watch", "--task", task["id"], env=env)
    assert watched.returncode == 0, watched.stdout + watched.stderr  # 0: it Passed
    listed: dict[str, Any] = httpx.get(f"{url}/v1/tasks/{task['id']}/executions").json()
    execution: dict[str, Any] = listed["items"][0]
    return execution


@dataclass(frozen=True)
class Engine:
    """The `sublim up` options (and environment) of one extra, on fresh engine state."""

    options: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)


@contextmanager
def postgres_engine(tmp_path: Path) -> Iterator[Engine]:
    with fresh_database_sync() as url:
        yield Engine(("--store", url, "--broker", url))


@contextmanager
def redis_engine(tmp_path: Path) -> Iterator[Engine]:
    with engine_url("redis") as url:
        yield Engine(("--broker", url))


@contextmanager
def amqp_engine(tmp_path: Path) -> Iterator[Engine]:
    with shared_vhost() as url:
        yield Engine(("--broker", url))


@contextmanager
def nats_engine(tmp_path: Path) -> Iterator[Engine]:
    with engine_url("nats") as url:
        yield Engine(("--broker", url))


@contextmanager
def gcp_engine(tmp_path: Path) -> Iterator[Engine]:
    address = require_pubsub_emulator()
    project = unique_project("plain")
    yield Engine(("--broker", f"pubsub://{project}"), {"PUBSUB_EMULATOR_HOST": address})


ENGINES: dict[str, Callable[[Path], AbstractContextManager[Engine]]] = {
    "postgres": postgres_engine,
    "redis": redis_engine,
    "amqp": amqp_engine,
    "nats": nats_engine,
    "gcp": gcp_engine,
}


@pytest.mark.parametrize("extra", sorted(ENGINES))
def test_sublim_with_one_extra_runs_an_execution_to_passed_on_its_engine(
    wheel: Path, tmp_path: Path, extra: str
) -> None:
    with ENGINES[extra](tmp_path) as engine:
        venv = install(wheel, tmp_path / "venv", extra)
        importable = venv.importable(ALL_DRIVERS)
        assert {name for name, ok in importable.items() if ok} == set(DRIVERS[extra])
        cwd = tmp_path / "cwd"
        cwd.mkdir()
        smoke(venv, cwd, *engine.options, env=engine.env)
