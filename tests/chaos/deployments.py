"""The deployments the chaos suite runs on: the embedded default (SQLite store and broker),
and Redis as the broker, on a server of the run's own that the driver may kill (append-only
file fsynced on every write), with a SQLite store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from tests.chaos.scenario import Deployment
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


DEPLOYMENTS: dict[str, Callable[[Path], AbstractContextManager[Deployment]]] = {
    "sqlite": sqlite,
    "redis": redis,
}
