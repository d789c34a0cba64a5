"""`Service.create_tasks`: a batch of tasks, checked first, stored in one call, enqueued
together on the path of every enqueue."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from sublim.broker.memory import MemoryBroker
from sublim.config import Settings
from sublim.core.caps import MAX_LABELS_PER_TASK
from sublim.core.messages import decode_request
from sublim.core.model import TaskRecord, TaskStatus
from sublim.core.service import MAX_TASKS_PER_CALL, Service, TaskSpec
from sublim.errors import InvalidInput, MessageTooLarge
from sublim.store.base import ExecutionQuery, TaskQuery
from sublim.store.memory import MemoryStore

S = TaskStatus


class CountingStore(MemoryStore):
    """A memory store that counts its task writes."""

    def __init__(self) -> None:
        super().__init__()
        self.batch_writes = 0
        self.single_writes = 0

    async def create_tasks(self, tasks: Sequence[TaskRecord]) -> list[TaskRecord]:
        self.batch_writes += 1
        return await super().create_tasks(tasks)

    async def create_task(self, task: TaskRecord) -> TaskRecord:
        self.single_writes += 1
        return await super().create_task(task)


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    settings = Settings(store_url="memory://", broker_url="memory://")
    async with Service(CountingStore(), MemoryBroker(), settings) as svc:
        yield svc


async def stored_tasks(service: Service) -> list[TaskRecord]:
    return (await service.list_tasks(TaskQuery(limit=1000))).items


async def test_tasks_come_back_in_the_order_given_with_their_fields(service: Service) -> None:
    specs = [
        TaskSpec("Thumbnail", {"i": i}, name=f"thumb {i}", labels={"i": str(i)}) for i in range(10)
    ]
    created = await service.create_tasks(specs)
    assert [task.name for task, _ in created] == [f"thumb {i}" for i in range(10)]
    assert [task.payload for task, _ in created] == [{"i": i} for i in range(10)]
    assert [task.labels for task, _ in created] == [{"i": str(i)} for i in range(10)]
    assert all(execution is None for _, execution in created)


async def test_the_tasks_are_written_in_one_store_call(service: Service) -> None:
    store = service.store
    assert isinstance(store, CountingStore)
    await service.create_tasks([TaskSpec("Thumbnail") for _ in range(50)])
    assert store.batch_writes == 1
    assert len(await stored_tasks(service)) == 50


async def test_executed_tasks_are_dispatched_and_their_requests_published_in_order(
    service: Service,
) -> None:
    specs = [TaskSpec("Thumbnail", {"i": i}, execute=i % 2 == 0) for i in range(6)]
    created = await service.create_tasks(specs)
    executions = [execution for _, execution in created]
    assert [execution is not None for execution in executions] == [True, False] * 3
    for task, execution in created:
        if execution is None:
            assert task.latest_execution is None
            continue
        assert execution.task_id == task.id
        assert execution.payload == task.payload
        assert task.latest_execution == execution.summary()
        stored = await service.get_execution(execution.id)
        assert [e.status for e in stored.events] == [
            S.INITIALIZED,
            S.READY_FOR_DISPATCH,
            S.DISPATCHED,
        ]
    deliveries = await service.broker.pull("Thumbnail-sub", 100, lease=5, wait=0)
    published = {decode_request(d.data).execution_id for d in deliveries}
    assert published == {e.id for e in executions if e is not None}


async def test_a_thousand_tasks_are_taken_in_one_call(service: Service) -> None:
    created = await service.create_tasks(
        [TaskSpec("Thumbnail", execute=True) for _ in range(MAX_TASKS_PER_CALL)]
    )
    assert len(created) == MAX_TASKS_PER_CALL
    page = await service.list_executions(
        ExecutionQuery(statuses=frozenset({S.DISPATCHED}), limit=1000)
    )
    assert len(page.items) == MAX_TASKS_PER_CALL


async def test_more_than_a_thousand_tasks_are_refused_and_nothing_is_stored(
    service: Service,
) -> None:
    with pytest.raises(InvalidInput, match="at most 1000"):
        await service.create_tasks([TaskSpec("Thumbnail")] * (MAX_TASKS_PER_CALL + 1))
    assert await stored_tasks(service) == []


async def test_an_invalid_topic_refuses_the_whole_batch_naming_its_index(
    service: Service,
) -> None:
    specs = [TaskSpec("Thumbnail", execute=True), TaskSpec("Thumbnail"), TaskSpec("no spaces")]
    with pytest.raises(InvalidInput, match=r"^tasks\[2\]: "):
        await service.create_tasks(specs)
    assert await stored_tasks(service) == []
    assert (await service.list_executions(ExecutionQuery())).items == []


async def test_too_many_labels_refuse_the_whole_batch_naming_the_index(
    service: Service,
) -> None:
    labels = {f"k{i}": "v" for i in range(MAX_LABELS_PER_TASK + 1)}
    with pytest.raises(InvalidInput, match=r"^tasks\[1\]: "):
        await service.create_tasks([TaskSpec("Thumbnail"), TaskSpec("Thumbnail", labels=labels)])
    assert await stored_tasks(service) == []


async def test_an_execution_too_large_to_publish_refuses_the_batch_naming_the_index(
    service: Service,
) -> None:
    huge = {"blob": "x" * (service.broker.max_message_bytes + 1)}
    specs = [TaskSpec("Thumbnail", execute=True), TaskSpec("Thumbnail", huge, execute=True)]
    with pytest.raises(MessageTooLarge, match=r"^tasks\[1\]: ") as raised:
        await service.create_tasks(specs)
    assert raised.value.limit == service.broker.max_message_bytes
    assert await stored_tasks(service) == []


async def test_a_large_payload_without_execute_is_stored_as_create_task_would(
    service: Service,
) -> None:
    huge = {"blob": "x" * (service.broker.max_message_bytes + 1)}
    [(task, execution)] = await service.create_tasks([TaskSpec("Thumbnail", huge)])
    assert execution is None
    assert (await service.get_task(task.id)).payload == huge


async def test_an_empty_batch_creates_nothing(service: Service) -> None:
    assert await service.create_tasks([]) == []
