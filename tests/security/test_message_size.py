"""Messages larger than the broker takes (NATS: 1 MiB by default), on the real engine.

A request over the limit is refused at enqueue with a 413 naming the limit, before anything is
stored; one the sweeper finds (recorded before the limit applied) ends Error instead of failing
every sweep; a result over the limit ends its execution Error. None of them fails the other
messages of its batch. The blow-up to watch: a JSON body re-encodes larger than it came, since
a number such as `1e15` (4 bytes) is written back as `1000000000000000.0` (18 bytes), so a
1 MB body under `max_body_bytes` becomes a 3.8 MB request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import timedelta
from typing import Any

import httpx
import pytest

from sublim import ExecutionNodeBuilder, Task, TaskStatus
from sublim.broker.nats import NatsBroker
from sublim.config import Settings
from sublim.core.model import Event, Execution, TaskRecord, utcnow
from sublim.core.service import Service
from sublim.errors import MessageTooLarge
from sublim.store.base import TaskQuery
from sublim.store.memory import MemoryStore
from tests.api.conftest import assert_problem, in_process_http
from tests.engine_brokers import fresh_nats_url

S = TaskStatus
Loop = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
#: 200,000 numbers written `1e15`: a body of about 1 MB that re-encodes to 3.8 MB.
EXPONENTS = 200_000


class Echo(Task):
    numbers: list[float] = []

    def execute(self) -> int:
        return len(self.numbers)


class Huge(Task):
    def execute(self) -> str:
        return "x" * 2_000_000


def settings() -> Settings:
    return Settings(
        store_url="memory://", broker_url="memory://", lease_seconds=5, heartbeat_seconds=0.5
    )


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    async with fresh_nats_url() as url, Service(MemoryStore(), NatsBroker.from_url(url)) as svc:
        svc.settings = settings()
        yield svc


@pytest.fixture
async def http(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process_http(service) as client:
        yield client


@contextlib.asynccontextmanager
async def running(*loops: Loop) -> AsyncIterator[None]:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(loop(stop)) for loop in loops]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


def a_node_and_recorder(service: Service) -> list[Loop]:
    builder = ExecutionNodeBuilder(2, service.broker, settings=service.settings, name="size")
    node = builder.with_consumer(Echo).with_consumer(Huge).build()
    return [node.serve, service.consume_updates]


async def finished(service: Service, execution_id: str, polls: int = 400) -> Execution:
    for _ in range(polls):
        execution = await service.get_execution(execution_id)
        if execution.finished:
            return execution
        await asyncio.sleep(0.05)
    raise AssertionError(f"{execution_id} did not finish: {execution.status}")


def exponent_body(count: int = EXPONENTS) -> bytes:
    numbers = ",".join(["1e15"] * count)
    return f'{{"topic":"Echo","execute":true,"payload":{{"numbers":[{numbers}]}}}}'.encode()


async def post_json(http: httpx.AsyncClient, body: bytes) -> httpx.Response:
    return await http.post("/v1/tasks", content=body, headers={"content-type": "application/json"})


def a_recorded_unpublished(task: TaskRecord) -> Execution:
    """An execution recorded ReadyForDispatch long ago and never published."""
    long_ago = utcnow() - timedelta(hours=1)
    events = (Event(status=S.READY_FOR_DISPATCH, at=long_ago, attempt=1, reason="recorded"),)
    return Execution(
        task_id=task.id,
        topic=task.topic,
        status=S.READY_FOR_DISPATCH,
        payload=task.payload,
        created_at=long_ago,
        events=events,
    )


async def test_an_oversized_request_next_to_a_normal_one_gets_413_and_the_normal_one_passes(
    service: Service, http: httpx.AsyncClient
) -> None:
    limit = service.broker.max_message_bytes
    normal, oversized = await asyncio.gather(  # enqueued together: one batch, as it was
        http.post("/v1/tasks", json={"topic": "Echo", "execute": True}),
        post_json(http, exponent_body(EXPONENTS // 3)),
    )
    problem = assert_problem(oversized, 413)
    assert f"limit of {limit} bytes" in problem["detail"]
    assert problem["limit_bytes"] == limit
    assert normal.status_code == 201, normal.text
    async with running(*a_node_and_recorder(service)):
        passed = await finished(service, normal.json()["execution"]["id"])
    assert passed.status == S.PASSED
    assert passed.result == 0
    stored = (await service.list_tasks(TaskQuery())).items
    assert [task.id for task in stored] == [normal.json()["id"]], "the refused task was stored"
    assert (await service.sweep()).republished == 0


async def test_a_one_megabyte_body_that_re_encodes_to_3_8_megabytes_gets_413_naming_the_limit(
    service: Service, http: httpx.AsyncClient
) -> None:
    body = exponent_body()
    assert len(body) < service.settings.max_body_bytes, "the HTTP body limit would refuse it"
    response = await post_json(http, body)
    problem = assert_problem(response, 413)
    request_bytes = int(problem["detail"].split(" is ")[1].split(" bytes")[0])
    assert request_bytes > 3.7 * len(body)
    assert f"limit of {service.broker.max_message_bytes} bytes" in problem["detail"]
    assert (await service.list_tasks(TaskQuery())).items == []


async def test_the_library_refuses_the_same_request_with_message_too_large(
    service: Service,
) -> None:
    numbers = [1e15] * EXPONENTS
    with pytest.raises(MessageTooLarge, match="limit of"):
        await service.create_task("Echo", {"numbers": numbers}, execute=True)
    assert (await service.list_tasks(TaskQuery())).items == []


async def test_the_sweeper_ends_error_a_request_it_cannot_publish_and_publishes_the_rest(
    service: Service,
) -> None:
    big = await service.store.create_task(
        TaskRecord(name="big", topic="Echo", payload={"numbers": [1e15] * EXPONENTS})
    )
    small = await service.store.create_task(TaskRecord(name="small", topic="Echo"))
    stuck = [a_recorded_unpublished(big), a_recorded_unpublished(small)]
    await service.store.create_executions(stuck)
    first = await service.sweep()
    second = await service.sweep()
    refused = await service.get_execution(stuck[0].id)
    published = await service.get_execution(stuck[1].id)
    assert first.republished == 2
    assert second.republished == 0, "the sweeper tried the unpublishable execution again"
    assert refused.status == S.ERROR
    assert refused.error is not None
    assert refused.error.type == "MessageTooLarge"
    assert f"limit of {service.broker.max_message_bytes} bytes" in refused.error.message
    assert published.status == S.DISPATCHED


async def test_a_result_over_the_broker_limit_ends_the_execution_error_saying_why(
    service: Service,
) -> None:
    _, execution = await service.create_task("Huge", execute=True)
    assert execution is not None
    async with running(*a_node_and_recorder(service)):
        ended = await finished(service, execution.id)
    assert ended.status == S.ERROR
    assert ended.error is not None
    assert ended.error.type == "MessageTooLarge"
    assert f"limit of {service.broker.max_message_bytes} bytes" in ended.error.message
    assert ended.result is None
