"""The core service on the in-memory backends: enqueue, record, cancel, sweep."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import pytest

from sublim.broker.base import Message
from sublim.broker.memory import MemoryBroker
from sublim.config import Settings
from sublim.core.messages import decode_request
from sublim.core.model import Execution, TaskStatus, Update, utcnow
from sublim.core.service import Service, fold_updates
from sublim.errors import BrokerError, ExecutionNotFound, IllegalTransition
from sublim.store.base import ExecutionQuery
from sublim.store.memory import MemoryStore

S = TaskStatus


class FlakyBroker(MemoryBroker):
    """A memory broker whose next publishes fail, as a crash between write and publish would."""

    failures = 0

    async def publish(self, topic: str, messages: Sequence[Message]) -> set[str]:
        if self.failures:
            self.failures -= 1
            raise BrokerError("broker unreachable")
        return await super().publish(topic, messages)


@pytest.fixture
def settings() -> Settings:
    return Settings(
        store_url="memory://",
        broker_url="memory://",
        outbox_grace_seconds=0.01,
        heartbeat_timeout_seconds=0.05,
    )


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[Service]:
    async with Service(MemoryStore(), FlakyBroker(), settings) as svc:
        yield svc


async def enqueue(service: Service, topic: str = "Thing") -> str:
    _, execution = await service.create_task(topic, {"x": 1}, execute=True)
    assert execution is not None
    return execution.id


def running(execution_id: str, seq: int = 1, attempt: int = 1) -> Update:
    return Update(
        execution_id=execution_id, task_id="T", attempt=attempt, seq=seq, status=S.RUNNING
    )


async def test_an_enqueued_execution_is_recorded_then_published_and_dispatched(
    service: Service,
) -> None:
    execution_id = await enqueue(service)
    execution = await service.get_execution(execution_id)
    assert execution.status == S.DISPATCHED
    assert [e.status for e in execution.events] == [
        S.INITIALIZED,
        S.READY_FOR_DISPATCH,
        S.DISPATCHED,
    ]
    [delivery] = await service.broker.pull("Thing-sub", 10, lease=5, wait=0)
    assert decode_request(delivery.data).execution_id == execution_id


async def test_a_failed_publish_leaves_the_execution_ready_and_the_sweeper_publishes_it(
    service: Service,
) -> None:
    broker = service.broker
    assert isinstance(broker, FlakyBroker)
    task, _ = await service.create_task("Thing", {})
    broker.failures = 1
    with pytest.raises(BrokerError):
        await service.enqueue(task.id)
    [execution] = (await service.store.list_executions(ExecutionQuery())).items
    assert execution.status == S.READY_FOR_DISPATCH
    await asyncio.sleep(0.02)
    report = await service.sweep()
    assert report.republished == 1
    assert (await service.get_execution(execution.id)).status == S.DISPATCHED
    assert len(await broker.pull("Thing-sub", 10, lease=5, wait=0)) == 1


async def test_recorded_updates_move_the_execution_and_duplicates_change_nothing(
    service: Service,
) -> None:
    execution_id = await enqueue(service)
    passed = Update(
        execution_id=execution_id,
        task_id="T",
        attempt=1,
        seq=2,
        status=S.PASSED,
        result={"ok": True},
        complete=True,
    )
    await service.record_updates([running(execution_id), passed, passed])
    await service.record_updates([running(execution_id)])
    execution = await service.get_execution(execution_id)
    assert execution.status == S.PASSED
    assert execution.result == {"ok": True}
    assert [e.status for e in execution.events].count(S.PASSED) == 1


async def test_an_update_for_an_unknown_execution_is_logged_and_ignored(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    assert await service.record_updates([running("NOPE")]) == []
    assert "unknown execution NOPE" in caplog.text


async def test_a_running_attempt_that_stops_heartbeating_is_swept_incomplete(
    service: Service,
) -> None:
    execution_id = await enqueue(service)
    await service.record_updates([running(execution_id)])
    await asyncio.sleep(0.06)
    report = await service.sweep()
    execution = await service.get_execution(execution_id)
    assert report.lost == 1
    assert execution.status == S.INCOMPLETE
    assert not execution.finished  # attempts remain: the broker redelivers it
    await service.record_updates([running(execution_id, attempt=2)])
    assert (await service.get_execution(execution_id)).status == S.RUNNING


async def test_a_lost_last_attempt_ends_the_execution_incomplete(service: Service) -> None:
    task, _ = await service.create_task("Thing", {})
    execution = await service.enqueue(task.id, max_attempts=1)
    await service.record_updates([running(execution.id)])
    await asyncio.sleep(0.06)
    await service.sweep()
    assert (await service.get_execution(execution.id)).finished


async def test_a_heartbeating_attempt_is_not_swept(service: Service) -> None:
    execution_id = await enqueue(service)
    await service.record_updates([running(execution_id)])
    assert (await service.sweep()).lost == 0


async def test_cancelling_a_queued_execution_ends_it_cancelled_with_who_cancelled(
    service: Service,
) -> None:
    execution_id = await enqueue(service)
    cancelled = await service.cancel(execution_id, by="alice")
    assert cancelled.status == S.CANCELLED
    assert cancelled.events[-1].reason == "cancelled by alice"


async def test_cancelling_a_finished_execution_is_refused(service: Service) -> None:
    execution_id = await enqueue(service)
    await service.cancel(execution_id)
    with pytest.raises(IllegalTransition):
        await service.cancel(execution_id)


async def test_cancelling_an_unknown_execution_raises_not_found(service: Service) -> None:
    with pytest.raises(ExecutionNotFound):
        await service.cancel("NOPE")


async def test_concurrent_enqueues_are_batched_and_all_dispatched(service: Service) -> None:
    ids = await asyncio.gather(*(enqueue(service) for _ in range(300)))
    executions = [await service.get_execution(i) for i in ids]
    assert {e.status for e in executions} == {S.DISPATCHED}
    assert len(await service.broker.pull("Thing-sub", 1000, lease=5, wait=0)) == 300


def test_folding_updates_applies_them_oldest_first_whatever_their_order() -> None:
    execution = Execution(task_id="T", topic="t", status=S.DISPATCHED)
    updates = [
        Update(
            execution_id=execution.id, task_id="T", attempt=1, seq=2, status=S.PASSED, at=utcnow()
        ),
        Update(
            execution_id=execution.id,
            task_id="T",
            attempt=1,
            seq=1,
            status=S.RUNNING,
            at=utcnow() - timedelta(seconds=1),
        ),
    ]
    change = fold_updates(execution, updates)
    assert [e.status for e in change.new_events] == [S.RUNNING, S.PASSED]
