"""The core hooks the HTTP API relies on: sweeper claims, the change feed, retry, ping."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from sublim.broker.memory import MemoryBroker
from sublim.config import Settings
from sublim.core.model import Change, Execution, TaskStatus, utcnow
from sublim.core.modifiers import ClaimUnpublished
from sublim.core.service import Service, default_subscription
from sublim.errors import IllegalTransition
from sublim.store.memory import MemoryStore

SETTINGS = Settings(store_url="memory://", broker_url="memory://", outbox_grace_seconds=0.05)


@pytest.fixture
async def shared() -> AsyncIterator[tuple[Service, Service]]:
    """Two services (two API replicas) sharing one store and one broker."""
    store, broker = MemoryStore(), MemoryBroker()
    async with Service(store, broker, SETTINGS) as one, Service(store, broker, SETTINGS) as two:
        yield one, two


async def _record_unpublished(service: Service) -> str:
    task, _ = await service.create_task("Stuck")
    execution = service._new_execution(task, None)  # recorded, then the process "died"
    await service.store.create_executions([execution])
    return execution.id


async def test_two_sweepers_sharing_a_store_publish_an_unpublished_execution_once(
    shared: tuple[Service, Service],
) -> None:
    one, two = shared
    execution_id = await _record_unpublished(one)
    await one.broker.ensure_subscription("Stuck", default_subscription("Stuck"))
    await asyncio.sleep(0.1)  # past the outbox grace
    reports = await asyncio.gather(one.sweep(), two.sweep())
    assert sorted(report.republished for report in reports) == [0, 1]
    deliveries = await one.broker.pull("Stuck-sub", 10, lease=5, wait=0.1)
    assert [d.data.count(execution_id.encode()) for d in deliveries] == [1]
    assert (await one.get_execution(execution_id)).status == TaskStatus.DISPATCHED


def test_a_claim_passes_once_it_expired() -> None:
    now = utcnow()
    claim = ClaimUnpublished(now, now - timedelta(seconds=10))

    fresh = Execution(
        task_id="t",
        topic="T",
        status=TaskStatus.READY_FOR_DISPATCH,
        heartbeat_at=now - timedelta(seconds=1),
    )
    stale = fresh.model_copy(update={"heartbeat_at": now - timedelta(seconds=11)})
    assert claim(fresh).outcome == "ignored"
    assert claim(stale).changed
    assert claim(stale).execution.heartbeat_at == now


async def test_the_feed_tells_listeners_and_wakes_watchers_of_an_execution(
    shared: tuple[Service, Service],
) -> None:
    service, _ = shared
    seen: list[Change] = []
    service.feed.listen(seen.append)
    _, execution = await service.create_task("Fed", execute=True)
    assert execution is not None
    with service.feed.watch(execution.id) as changed:
        await service.cancel(execution.id)
        assert changed.is_set()
    statuses = [event.status for change in seen for event in change.new_events]
    assert statuses == ["Initialized", "ReadyForDispatch", "Dispatched", "Cancelled"]


async def test_enqueue_returns_the_whole_event_log(shared: tuple[Service, Service]) -> None:
    service, _ = shared
    task, _ = await service.create_task("Logged")
    execution = await service.enqueue(task.id)
    assert [e.status for e in execution.events] == ["Initialized", "ReadyForDispatch", "Dispatched"]


async def test_retry_needs_a_finished_execution_and_names_it(
    shared: tuple[Service, Service],
) -> None:
    service, _ = shared
    _, execution = await service.create_task("Again", execute=True)
    assert execution is not None
    with pytest.raises(IllegalTransition):
        await service.retry(execution.id)
    await service.cancel(execution.id)
    retried = await service.retry(execution.id)
    assert retried.task_id == execution.task_id
    assert retried.events[0].reason == f"retry of {execution.id}"


async def test_ping_reaches_the_store_and_the_broker(shared: tuple[Service, Service]) -> None:
    service, _ = shared
    await service.ping()
