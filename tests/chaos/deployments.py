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

from tests.chaos.driver import Plan
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


#: Pub/Sub's shortest ack deadline is 10 s, so the 2 s lease of the other runs is 10 s there:
#: what a killed executor held comes back only then. Kills as often as elsewhere would leave
#: hardly an executor running anything; this plan spaces them over a longer run.
PUBSUB_PLAN = Plan(seconds=40.0, kill_every=(5.0, 8.0), api_restarts_at=(9.0, 27.0))


@contextmanager
def pubsub(folder: Path) -> Iterator[Deployment]:
    require_pubsub_emulator()  # and PUBSUB_EMULATOR_HOST for the processes of the run
    project = unique_project("chaos")
    store = f"sqlite:///{folder / 'store.db'}"
    yield Deployment("pubsub", store, f"pubsub://{project}", plan=PUBSUB_PLAN)


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
