"""The same-database outbox: a store and a broker on one database (PostgreSQL, or one SQLite
file) record an execution and publish its request message in one transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest

from sublim.broker.base import Message
from sublim.config import Settings
from sublim.core.messages import decode_request, request_key
from sublim.core.model import Execution, TaskStatus
from sublim.core.service import Service, default_subscription
from sublim.errors import ExecutionNotFound, TaskNotFound
from sublim.store.base import TransactionalOutbox
from tests.pg_databases import fresh_schema

S = TaskStatus


@pytest.fixture(params=["postgres", "sqlite"])
async def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sublim.db'}"
        return
    async with fresh_schema() as url:
        yield url


@pytest.fixture
async def service(shared_url: str) -> AsyncIterator[Service]:
    settings = Settings(store_url=shared_url, broker_url=shared_url)
    async with Service.from_settings(settings) as opened:
        yield opened


async def test_the_postgres_store_shares_transactions_only_with_a_broker_on_its_database() -> None:
    from sublim.broker.postgres import PostgresBroker
    from sublim.broker.sqlite import SqliteBroker
    from sublim.store.postgres import PostgresStore

    async with fresh_schema() as url:
        store = PostgresStore.from_url(url)
        assert store.shares_transactions_with(PostgresBroker.from_url(url))
        other_schema = url.replace("search_path=", "search_path=x")
        assert not store.shares_transactions_with(PostgresBroker.from_url(other_schema))
        assert not store.shares_transactions_with(SqliteBroker(":memory:"))


async def test_the_sqlite_store_shares_transactions_only_with_a_broker_on_its_file(
    tmp_path: Path,
) -> None:
    from sublim.broker.memory import MemoryBroker
    from sublim.broker.sqlite import SqliteBroker
    from sublim.store.sqlite import SqliteStore

    store = SqliteStore(str(tmp_path / "sublim.db"))
    assert store.shares_transactions_with(SqliteBroker(str(tmp_path / "sublim.db")))
    assert store.shares_transactions_with(SqliteBroker(str(tmp_path / "." / "sublim.db")))
    assert not store.shares_transactions_with(SqliteBroker(str(tmp_path / "other.db")))
    assert not store.shares_transactions_with(MemoryBroker())
    in_memory = SqliteStore(":memory:")
    assert not in_memory.shares_transactions_with(SqliteBroker(":memory:"))


async def test_an_enqueued_execution_is_recorded_dispatched_with_its_message_at_once(
    service: Service,
) -> None:
    _, execution = await service.create_task("Thumbnail", {"width": 64}, execute=True)
    assert execution is not None

    stored = await service.get_execution(execution.id)
    assert [event.status for event in stored.events] == [
        S.INITIALIZED,
        S.READY_FOR_DISPATCH,
        S.DISPATCHED,
    ]
    subscription = default_subscription("Thumbnail")
    [delivery] = await service.broker.pull(subscription, 10, lease=30, wait=0)
    request = decode_request(delivery.data)
    assert (request.execution_id, request.payload) == (execution.id, {"width": 64})


async def test_a_later_publish_of_a_request_the_outbox_published_is_dropped(
    service: Service,
) -> None:
    _, execution = await service.create_task("Thumbnail", {"width": 64}, execute=True)
    assert execution is not None
    key = request_key(execution.id, execution.attempt)

    dropped = await service.broker.publish("Thumbnail", [Message(b"copy", key=key)])

    assert dropped == {key}
    subscription = default_subscription("Thumbnail")
    [delivery] = await service.broker.pull(subscription, 10, lease=30, wait=0)
    assert decode_request(delivery.data).execution_id == execution.id


async def test_an_execution_whose_message_fails_to_publish_is_not_recorded(
    service: Service,
) -> None:
    task, _ = await service.create_task("Thumbnail", {"width": 64})
    execution = Execution(task_id=task.id, topic=task.topic, status=S.DISPATCHED)
    outbox = service.store
    assert isinstance(outbox, TransactionalOutbox)
    unpublishable = Message(data=cast(bytes, object()))

    with pytest.raises(TypeError):
        await outbox.create_and_publish([execution], {task.topic: [unpublishable]})

    with pytest.raises(ExecutionNotFound):
        await service.get_execution(execution.id)


async def test_a_message_is_not_published_when_its_execution_cannot_be_recorded(
    service: Service,
) -> None:
    subscription = default_subscription("Thumbnail")
    await service.broker.ensure_subscription("Thumbnail", subscription)
    orphan = Execution(task_id="01HZZZZZZZZZZZZZZZZZZZZZZZ", topic="Thumbnail")
    outbox = service.store
    assert isinstance(outbox, TransactionalOutbox)

    with pytest.raises(TaskNotFound):
        await outbox.create_and_publish([orphan], {"Thumbnail": [Message(b"request")]})

    assert await service.broker.pull(subscription, 10, lease=30, wait=0) == []


async def test_an_outbox_publish_wakes_a_pull_waiting_on_another_broker_of_the_file(
    tmp_path: Path,
) -> None:
    import asyncio

    from sublim.broker.sqlite import SqliteBroker

    url = f"sqlite:///{tmp_path / 'sublim.db'}"
    subscription = default_subscription("Thumbnail")
    elsewhere = SqliteBroker(str(tmp_path / "sublim.db"), poll_interval=60.0)
    await elsewhere.open()
    async with Service.from_settings(Settings(store_url=url, broker_url=url)) as service:
        await elsewhere.ensure_subscription("Thumbnail", subscription)
        waiting = asyncio.create_task(elsewhere.pull(subscription, 10, lease=30, wait=20))
        await asyncio.sleep(0.2)  # the pull is waiting, and polls only every 60 s

        _, execution = await service.create_task("Thumbnail", {"width": 64}, execute=True)

        [delivery] = await asyncio.wait_for(waiting, timeout=10)
    await elsewhere.close()
    assert execution is not None
    assert decode_request(delivery.data).execution_id == execution.id


async def test_a_new_task_is_stored_with_its_execution_or_not_at_all(service: Service) -> None:
    from sublim.core.model import TaskRecord

    outbox = service.store
    assert isinstance(outbox, TransactionalOutbox)
    task = TaskRecord(name="Thumbnail", topic="Thumbnail")
    orphan = Execution(task_id="01HZZZZZZZZZZZZZZZZZZZZZZZ", topic="Thumbnail")

    with pytest.raises(TaskNotFound):
        await outbox.create_and_publish([orphan], {"Thumbnail": [Message(b"r")]}, [task])
    with pytest.raises(TaskNotFound):
        await service.get_task(task.id)

    created, execution = await service.create_task("Thumbnail", {"width": 64}, execute=True)
    assert execution is not None
    stored = await service.get_task(created.id)
    assert stored.latest_execution is not None
    assert stored.latest_execution.id == execution.id
