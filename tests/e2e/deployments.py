"""The deployments end-to-end tests run on: a store URL and a broker URL per name.

Each entry makes fresh, empty backends for one test and skips (or fails under CI=true) when
its engine is absent. A new engine is one more entry in `DEPLOYMENTS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.engine_brokers import engine_url
from tests.pg_databases import fresh_database_sync
from tests.rabbitmq import shared_vhost


@dataclass(frozen=True)
class Deployment:
    store_url: str
    broker_url: str


@contextmanager
def sqlite(tmp_path: Path) -> Iterator[Deployment]:
    url = f"sqlite:///{tmp_path / 'sublim.db'}"
    yield Deployment(url, url)


@contextmanager
def redis(tmp_path: Path) -> Iterator[Deployment]:
    """The store stays SQLite; the broker is Redis under a fresh key prefix."""
    with engine_url("redis") as broker_url:
        yield Deployment(f"sqlite:///{tmp_path / 'store.db'}", broker_url)


@contextmanager
def nats(tmp_path: Path) -> Iterator[Deployment]:
    """The store stays SQLite; the broker is NATS JetStream under a fresh stream prefix."""
    with engine_url("nats") as broker_url:
        yield Deployment(f"sqlite:///{tmp_path / 'store.db'}", broker_url)


@contextmanager
def amqp(tmp_path: Path) -> Iterator[Deployment]:
    """A SQLite store; RabbitMQ, in a virtual host of the test's own, as the broker."""
    with shared_vhost() as broker_url:
        yield Deployment(f"sqlite:///{tmp_path / 'sublim.db'}", broker_url)


@contextmanager
def postgresql(tmp_path: Path) -> Iterator[Deployment]:
    """Store and broker in one fresh database on the shared engine (the same-database outbox)."""
    with fresh_database_sync() as url:
        yield Deployment(url, url)


#: name -> a context manager factory taking the test's tmp_path and yielding a Deployment.
DEPLOYMENTS: dict[str, Callable[[Path], AbstractContextManager[Deployment]]] = {
    "sqlite": sqlite,
    "redis": redis,
    "nats": nats,
    "amqp": amqp,
    "postgresql": postgresql,
}
