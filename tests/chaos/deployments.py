"""The deployments the chaos suite runs on: the embedded default (SQLite store and broker);
Redis as the broker, on a server of the run's own that the driver may kill (append-only file
fsynced on every write), with a SQLite store; and, on the shared engines (which the driver does
not restart: each engine's restart has its own test in tests/e2e), PostgreSQL as store and
broker, NATS JetStream and RabbitMQ as brokers; and Pub/Sub on Google's emulator (a project of
the run's own), with a SQLite store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from tests.chaos.scenario import Deployment
from tests.e2e.deployments import DEPLOYMENTS as E2E_DEPLOYMENTS
from tests.gcp_emulators import require_pubsub_emulator, unique_project
from tests.own_engines import own_engine, redis_command


@contextmanager
def sqlite(folder: Path) -> Iterator[Deployment]:
    url = f"sqlite:///{folder / 'sublim.db'}"
    yield Deployment("sqlite", url, url)


@contextmanager
def redis(folder: Path) -> Iterator[Deployment]:
    with own_engine("redis", redis_command(folder / "redis-data"), folder) as engine:
        broker_url = f"redis://127.0.0.1:{engine.port}/0"
        yield Deployment("redis", f"sqlite:///{folder / 'store.db'}", broker_url, engine)


@contextmanager
def pubsub(folder: Path) -> Iterator[Deployment]:
    require_pubsub_emulator()  # and PUBSUB_EMULATOR_HOST for the processes of the run
    project = unique_project("chaos")
    yield Deployment("pubsub", f"sqlite:///{folder / 'store.db'}", f"pubsub://{project}")


def on_shared_engine(name: str) -> Callable[[Path], AbstractContextManager[Deployment]]:
    """The end-to-end tests' deployment of that name (fresh state on the shared engine)."""

    @contextmanager
    def deployment(folder: Path) -> Iterator[Deployment]:
        with E2E_DEPLOYMENTS[name](folder) as made:
            yield Deployment(name, made.store_url, made.broker_url)

    return deployment


DEPLOYMENTS: dict[str, Callable[[Path], AbstractContextManager[Deployment]]] = {
    "sqlite": sqlite,
    "redis": redis,
    "postgresql": on_shared_engine("postgresql"),
    "nats": on_shared_engine("nats"),
    "amqp": on_shared_engine("amqp"),
    "pubsub": pubsub,
}
