"""RabbitMQ for tests: a fresh virtual host on the shared engine, or a node of a test's own.

The shared engine (127.0.0.1:5672) is never restarted by a test. A test that restarts its
engine starts its own node with its own name, ports, data and log directories, an empty plugin
list (no management plugin) and its own Erlang cookie (in its own HOME); the node registers
with the machine's epmd under its own name.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.engines import IN_CI, port_open, require_engine

SHARED_HOST, SHARED_PORT = "127.0.0.1", 5672
SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
BOOT_TIMEOUT = 90.0


def _rabbitmqctl(*arguments: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *arguments], check=True, capture_output=True, timeout=60)


@contextmanager
def shared_vhost() -> Iterator[str]:
    """A URL of a new virtual host on the shared engine, deleted afterwards."""
    require_engine("RabbitMQ", SHARED_HOST, SHARED_PORT)
    if shutil.which("rabbitmqctl") is None:
        _absent("rabbitmqctl is not installed: cannot make a virtual host per test")
    vhost = f"sublim-test-{secrets.token_hex(4)}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@{SHARED_HOST}:{SHARED_PORT}/{vhost}"
    finally:
        _rabbitmqctl("delete_vhost", vhost)


def _absent(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class OwnRabbitNode:
    """A rabbitmq-server process of one test; `stop` and `start` again keep its data."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.name = f"sublim_test_{secrets.token_hex(4)}@localhost"
        self.port, self.dist_port = free_port(), free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._prepare()

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _prepare(self) -> None:
        for folder in ("home", "mnesia", "log"):
            (self.directory / folder).mkdir(parents=True, exist_ok=True)
        (self.directory / "enabled_plugins").write_text("[].\n")
        (self.directory / "rabbitmq-env.conf").write_text("")
        (self.directory / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
        )

    def _environment(self) -> dict[str, str]:
        folder = self.directory
        return {
            **os.environ,
            "HOME": str(folder / "home"),  # its own Erlang cookie
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(folder / "log"),
            "RABBITMQ_PID_FILE": str(folder / "rabbitmq.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(folder / "rabbitmq-env.conf"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def start(self) -> None:
        log = open(self.directory / "server.out", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [SERVER],
            env=self._environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + BOOT_TIMEOUT
        while not port_open("127.0.0.1", self.port):
            assert self.process is not None
            if self.process.poll() is not None or time.monotonic() > deadline:
                output = (self.directory / "server.out").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"rabbitmq-server {self.name} did not start:\n{output}")
            time.sleep(0.2)

    def stop(self) -> None:
        """A graceful stop (SIGTERM), which RabbitMQ handles like `rabbitmqctl stop`."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@contextmanager
def own_rabbit_node(directory: Path) -> Iterator[OwnRabbitNode]:
    if not Path(SERVER).exists():
        _absent(f"{SERVER} is not installed: cannot start a RabbitMQ node of the test's own")
    node = OwnRabbitNode(directory)
    node.start()
    try:
        yield node
    finally:
        node.stop()
