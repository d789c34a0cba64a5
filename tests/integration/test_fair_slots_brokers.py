"""On every broker, a node with fewer worker slots than task types runs every type's
executions (docs/decisions/020-fair-slots.md): an in-process service and node per broker."""

from __future__ import annotations

from sublim.broker.base import Broker
from sublim.core.model import TaskStatus
from tests.e2e.flow import enqueue, wait_until_finished
from tests.fair_slots import kinds, memory_service, node_for, serving, subscribe

pytest_plugins = ["tests.contract.broker_backends"]


async def run_every_type(broker: Broker, *, workers: int, types: int, per_type: int) -> None:
    task_types = kinds(f"Fair{workers}x", types)
    service = memory_service(broker)
    async with service:
        await subscribe(broker, task_types)
        payloads: list[dict[str, object]] = [{"n": n} for n in range(per_type)]
        ids = [i for t in task_types for i in await enqueue(service, t.topic, payloads)]
        async with serving(node_for(broker, task_types, workers=workers)):
            executions = await wait_until_finished(service, ids, timeout=120)
    assert [e.status for e in executions] == [TaskStatus.PASSED] * (types * per_type)
    assert {e.topic for e in executions} == {t.topic for t in task_types}


async def test_one_slot_and_five_task_types_pass_every_execution(broker: Broker) -> None:
    await run_every_type(broker, workers=1, types=5, per_type=3)


async def test_four_slots_and_fifty_task_types_pass_every_execution(broker: Broker) -> None:
    await run_every_type(broker, workers=4, types=50, per_type=2)
