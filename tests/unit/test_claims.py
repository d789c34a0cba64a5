"""On a broker that cannot dedupe a request published twice (RabbitMQ, Pub/Sub), a node claims
each attempt through the updates path and runs it only once the recorder grants the claim:
of two copies on two nodes, one runs and the other is dropped unrun."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta

from sublim import ExecutionNodeBuilder, Task, TaskStatus
from sublim.broker.base import Message
from sublim.broker.memory import MemoryBroker
from sublim.config import Settings
from sublim.core.messages import decode_update, request_message
from sublim.core.model import Execution, Update, WorkerInfo, utcnow
from sublim.core.service import Service, _request_of, answer_claims, default_subscription
from sublim.executor.node import ExecutionNode
from sublim.store.memory import MemoryStore

S = TaskStatus
RUNS: list[tuple[int, float, float]] = []


class NoDedupeBroker(MemoryBroker):
    """A memory broker that publishes every copy of a keyed message, as RabbitMQ does."""

    dedupes_publish = False


class Sleeps(Task):
    n: int

    async def execute(self) -> None:
        start = time.monotonic()
        await asyncio.sleep(0.3)
        RUNS.append((self.n, start, time.monotonic()))


def settings() -> Settings:
    return Settings(
        store_url="memory://",
        broker_url="memory://",
        lease_seconds=0.4,
        heartbeat_seconds=0.1,
        max_attempts=3,
    )


def a_node(broker: MemoryBroker, name: str) -> ExecutionNode:
    builder = ExecutionNodeBuilder(2, broker, settings=settings(), name=name)
    return builder.with_consumer(Sleeps).build()


@contextlib.asynccontextmanager
async def running(*loops: Callable[[asyncio.Event], Awaitable[None]]) -> AsyncIterator[None]:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(loop(stop)) for loop in loops]  # type: ignore[arg-type]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def wait_until_finished(service: Service, execution_id: str) -> Execution:
    for _ in range(500):
        execution = await service.get_execution(execution_id)
        if execution.finished:
            return execution
        await asyncio.sleep(0.01)
    raise AssertionError(f"{execution_id} did not finish: {execution.status}")


async def test_of_two_copies_on_two_nodes_one_runs_and_the_other_is_dropped_unrun() -> None:
    broker = NoDedupeBroker()
    async with Service(MemoryStore(), broker, settings()) as service:
        await broker.ensure_subscription("Sleeps", default_subscription("Sleeps"))
        _, execution = await service.create_task("Sleeps", {"n": 1}, execute=True)
        assert execution is not None
        await broker.publish("Sleeps", [request_message(_request_of(execution))])
        nodes = (a_node(broker, "first"), a_node(broker, "second"))
        async with running(service.consume_updates, nodes[0].serve, nodes[1].serve):
            final = await wait_until_finished(service, execution.id)
            await asyncio.sleep(0.5)  # room for a second run, were it to happen
    assert final.status == S.PASSED
    assert [run[0] for run in RUNS if run[0] == 1] == [1]
    assert [e.status for e in final.events].count(S.RUNNING) == 1


async def test_a_claim_waits_for_the_recorder_keeping_its_lease_and_then_runs_once() -> None:
    broker = NoDedupeBroker()
    async with Service(MemoryStore(), broker, settings()) as service:
        _, execution = await service.create_task("Sleeps", {"n": 2}, execute=True)
        assert execution is not None
        async with running(a_node(broker, "alone").serve):
            await asyncio.sleep(1.2)  # three leases with nobody recording updates
            assert [run for run in RUNS if run[0] == 2] == []
            async with running(service.consume_updates):
                final = await wait_until_finished(service, execution.id)
    assert final.status == S.PASSED
    assert final.attempt == 1, "the lease passed while the claim waited"
    assert [run[0] for run in RUNS if run[0] == 2] == [2]


async def test_a_node_stopped_while_its_claim_waits_reports_nothing_and_gives_it_back() -> None:
    broker = NoDedupeBroker()
    async with Service(MemoryStore(), broker, settings()) as service:
        _, execution = await service.create_task("Sleeps", {"n": 3}, execute=True)
        assert execution is not None
        node = a_node(broker, "stopping")
        node.shutdown_grace_seconds = 0.1
        async with running(node.serve):
            await asyncio.sleep(0.3)
        updates = await pending_updates(broker, service)
        redelivered = await broker.pull("Sleeps-sub", 10, lease=1, wait=0.5)
    assert updates, "the claim was never sent"
    assert all(u.status == S.RUNNING and u.claim == updates[0].claim for u in updates), updates
    assert [d.deliveries for d in redelivered] == [2]


async def pending_updates(broker: MemoryBroker, service: Service) -> list[Update]:
    subscription = default_subscription(service.settings.updates_topic)
    deliveries = await broker.pull(subscription, 100, lease=1, wait=0)
    return [decode_update(d.data) for d in deliveries]


# The rule, on records


def a_running(attempt: int, worker: WorkerInfo, started: float) -> Execution:
    at = utcnow() - timedelta(seconds=started)
    return Execution(
        task_id="T", topic="Sleeps", status=S.RUNNING, attempt=attempt, worker=worker, started_at=at
    )


def a_claim(execution: Execution, worker: WorkerInfo, token: str, attempt: int = 1) -> Update:
    return Update(
        execution_id=execution.id,
        task_id="T",
        attempt=attempt,
        seq=1,
        status=S.RUNNING,
        worker=worker,
        started_at=execution.started_at,
        claim=token,
    )


ONE = WorkerInfo(node="one", host="h", pid=1)
TWO = WorkerInfo(node="two", host="h", pid=2)


def test_the_claim_the_record_holds_is_granted_and_another_copys_denied() -> None:
    execution = a_running(1, ONE, started=1)
    answers = answer_claims(
        [a_claim(execution, ONE, "mine"), a_claim(execution, TWO, "copy")],
        {execution.id: execution},
    )
    assert (answers.granted, answers.denied) == (("mine",), ("copy",))


def test_a_claim_of_an_older_attempt_or_a_finished_execution_is_denied() -> None:
    newer = a_running(2, ONE, started=1)
    finished = a_running(1, ONE, started=2).model_copy(update={"status": S.PASSED})
    answers = answer_claims(
        [a_claim(newer, ONE, "older", attempt=1), a_claim(finished, ONE, "finished")],
        {newer.id: newer, finished.id: finished},
    )
    assert answers.granted == ()
    assert set(answers.denied) == {"older", "finished"}


def test_a_claim_on_an_unknown_execution_is_denied() -> None:
    execution = a_running(1, ONE, started=1)
    assert answer_claims([a_claim(execution, ONE, "lost")], {}).denied == ("lost",)


def test_a_claimant_a_sweeper_presumed_lost_is_still_granted_its_attempt() -> None:
    presumed_lost = a_running(1, ONE, started=1).model_copy(update={"status": S.INCOMPLETE})
    answers = answer_claims(
        [a_claim(presumed_lost, ONE, "alive")], {presumed_lost.id: presumed_lost}
    )
    assert answers.granted == ("alive",)


class LosesFirstAnswer(NoDedupeBroker):
    """Drops the first claim answer published, as an API dying before its answer would."""

    lost = False

    async def publish(self, topic: str, messages: Sequence[Message]) -> set[str]:
        if topic.endswith("-control") and not self.lost and b'"claims"' in messages[0].data:
            self.lost = True
            return set()
        return await super().publish(topic, messages)


async def test_a_claim_whose_answer_was_lost_is_sent_again_and_runs_once() -> None:
    broker = LosesFirstAnswer()
    async with Service(MemoryStore(), broker, settings()) as service:
        _, execution = await service.create_task("Sleeps", {"n": 4}, execute=True)
        assert execution is not None
        async with running(service.consume_updates, a_node(broker, "patient").serve):
            final = await wait_until_finished(service, execution.id)
    assert broker.lost
    assert (final.status, final.attempt) == (S.PASSED, 1)
    assert [run[0] for run in RUNS if run[0] == 4] == [4]
