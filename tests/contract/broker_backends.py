"""Fixtures that run the broker contract suite against every broker backend.

A backend joins the suite as one more `BrokerBackend` entry: a factory (an async context
manager that yields an opened broker with fresh state and closes it afterwards), the
shortest lease the engine honours, and for a broker that `dedupes_publish`, a factory of one
whose URL sets `dedupe_window`. A factory that needs a real engine calls
`tests.engines.require_engine(...)` first, so that its tests skip (or fail under CI).
Test modules load these fixtures with `pytest_plugins = ["tests.contract.broker_backends"]`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from sublim.broker.base import Broker
from sublim.broker.memory import MemoryBroker
from sublim.broker.sqlite import SqliteBroker
from tests.contract.postgres_backends import postgres_broker, postgres_broker_with_window
from tests.engine_brokers import fresh_nats_url, fresh_redis_url
from tests.engines import require_engine
from tests.gcp_emulators import require_pubsub_emulator

BrokerFactory = Callable[[Path], AbstractAsyncContextManager[Broker]]
#: A fresh, opened broker whose URL sets `dedupe_window` to the given seconds.
WindowedBrokerFactory = Callable[[Path, float], AbstractAsyncContextManager[Broker]]


@dataclass(frozen=True)
class BrokerBackend:
    open: BrokerFactory
    #: A lease short enough to wait out in a test (engines such as Pub/Sub need 10 s).
    short_lease: float = 0.3
    #: For a broker that `dedupes_publish`.
    open_with_dedupe_window: WindowedBrokerFactory | None = None


@asynccontextmanager
async def opened_broker(broker: Broker) -> AsyncIterator[Broker]:
    await broker.open()
    try:
        yield broker
    finally:
        await broker.close()


def memory_broker(tmp_path: Path) -> AbstractAsyncContextManager[Broker]:
    return opened_broker(MemoryBroker.from_url("memory://"))


def memory_broker_with_window(tmp_path: Path, window: float) -> AbstractAsyncContextManager[Broker]:
    return opened_broker(MemoryBroker.from_url(f"memory://?dedupe_window={window}"))


def sqlite_broker(tmp_path: Path) -> AbstractAsyncContextManager[Broker]:
    # A safety-net poll this long cannot pass a timing test: only notifications can.
    return opened_broker(SqliteBroker(str(tmp_path / "broker.db"), poll_interval=60.0))


def sqlite_broker_with_window(tmp_path: Path, window: float) -> AbstractAsyncContextManager[Broker]:
    url = f"sqlite:///{tmp_path / 'broker.db'}?dedupe_window={window}"
    return opened_broker(SqliteBroker.from_url(url))


@asynccontextmanager
async def redis_broker(tmp_path: Path) -> AsyncIterator[Broker]:
    from sublim.broker.redis import RedisBroker

    async with fresh_redis_url() as url, opened_broker(RedisBroker.from_url(url)) as broker:
        yield broker


@asynccontextmanager
async def redis_broker_with_window(tmp_path: Path, window: float) -> AsyncIterator[Broker]:
    from sublim.broker.redis import RedisBroker

    async with fresh_redis_url() as url:
        broker = RedisBroker.from_url(f"{url}&dedupe_window={window}")
        async with opened_broker(broker):
            yield broker


RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"


@asynccontextmanager
async def amqp_broker(tmp_path: Path) -> AsyncIterator[Broker]:
    """RabbitMQ; every exchange and queue the test declared is deleted afterwards."""
    require_engine("RabbitMQ", "127.0.0.1", 5672)
    from tests.contract.amqp_cleanup import CleaningAmqpBroker

    broker = CleaningAmqpBroker.from_url(RABBITMQ_URL)
    async with opened_broker(broker):
        try:
            yield broker
        finally:
            await broker.delete_everything_declared()


@asynccontextmanager
async def nats_broker(tmp_path: Path) -> AsyncIterator[Broker]:
    from sublim.broker.nats import NatsBroker

    async with fresh_nats_url() as url, opened_broker(NatsBroker.from_url(url)) as broker:
        yield broker


@asynccontextmanager
async def nats_broker_with_window(tmp_path: Path, window: float) -> AsyncIterator[Broker]:
    from sublim.broker.nats import NatsBroker

    async with fresh_nats_url() as url:
        broker = NatsBroker.from_url(f"{url}&dedupe_window={window}")
        async with opened_broker(broker):
            yield broker


@asynccontextmanager
async def pubsub_broker(tmp_path: Path) -> AsyncIterator[Broker]:
    """The Pub/Sub emulator (started if need be), in a project of the test's own."""
    require_pubsub_emulator()
    from sublim.broker.pubsub import PubSubBroker

    project = f"contract-{uuid.uuid4().hex[:12]}"
    async with opened_broker(PubSubBroker.from_url(f"pubsub://{project}")) as broker:
        yield broker


BROKER_BACKENDS: dict[str, BrokerBackend] = {
    "memory": BrokerBackend(memory_broker, open_with_dedupe_window=memory_broker_with_window),
    "sqlite": BrokerBackend(sqlite_broker, open_with_dedupe_window=sqlite_broker_with_window),
    "postgresql": BrokerBackend(
        postgres_broker, open_with_dedupe_window=postgres_broker_with_window
    ),
    "redis": BrokerBackend(redis_broker, open_with_dedupe_window=redis_broker_with_window),
    "nats": BrokerBackend(nats_broker, open_with_dedupe_window=nats_broker_with_window),
    "amqp": BrokerBackend(amqp_broker),
    "pubsub": BrokerBackend(pubsub_broker),
}


@pytest.fixture(params=list(BROKER_BACKENDS))
def broker_backend(request: pytest.FixtureRequest) -> BrokerBackend:
    backend: BrokerBackend = BROKER_BACKENDS[request.param]
    return backend


@pytest.fixture
async def broker(broker_backend: BrokerBackend, tmp_path: Path) -> AsyncIterator[Broker]:
    """A fresh, opened broker of each backend in turn."""
    async with broker_backend.open(tmp_path) as opened:
        yield opened


@pytest.fixture
def short_lease(broker_backend: BrokerBackend) -> float:
    return broker_backend.short_lease
