"""End to end on Google's emulators, in the original's topology: a Firestore-backed
`sublim datastore`, `sublim api` over it receiving every update BY PUSH from a Pub/Sub push
subscription (no pull consumer), and two `sublim executor` processes on Pub/Sub."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.flow import runs_per_task
from tests.e2e.gcp_stack import (
    PUSH_TOKEN,
    GcpStack,
    enqueue,
    executions_of,
    gcp_stack,
    wait_until_finished,
)

pytest.importorskip("google.cloud.pubsub_v1")
pytest.importorskip("google.cloud.firestore")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[GcpStack]:
    with gcp_stack(tmp_path) as running:
        yield running


def statuses(executions: list[dict[str, object]]) -> Counter[object]:
    return Counter(e["status"] for e in executions)


async def test_1000_executions_pass_exactly_once_with_updates_pushed(stack: GcpStack) -> None:
    stack.executors.start()
    stack.executors.start()
    async with stack.client() as client:
        await enqueue(client, "Noop", [{"n": n} for n in range(1000)])
        executions = await wait_until_finished(client, "Noop", 1000, timeout=240)

    assert statuses(executions) == {"Passed": 1000}
    assert runs_per_task(stack.record_file) == Counter(range(1000))
    assert all(e["attempt"] == 1 for e in executions)


async def test_an_executor_killed_mid_run_loses_nothing(stack: GcpStack) -> None:
    doomed = stack.executors.start()
    stack.executors.start()
    async with stack.client() as client:
        await enqueue(client, "Nap", [{"n": n, "seconds": 0.3} for n in range(200)])
        await wait_for_some_runs(stack, at_least=20)
        doomed.send_signal(signal.SIGKILL)
        stack.executors.start()  # a replacement, as a supervisor would start
        executions = await wait_until_finished(client, "Nap", 200, timeout=240)

    assert statuses(executions) == {"Passed": 200}
    ran = runs_per_task(stack.record_file)
    assert set(ran) == set(range(200))  # nothing lost; a killed attempt may have run twice
    assert sum(ran.values()) - 200 <= 16  # at most the killed executor's workers ran again


async def wait_for_some_runs(stack: GcpStack, at_least: int) -> None:
    for _ in range(600):
        if (
            stack.record_file.exists()
            and len(stack.record_file.read_text().splitlines()) >= at_least
        ):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the executors never ran anything")


# Pushes that are not Pub/Sub's own


def envelope(update: dict[str, object], message_id: str = "1") -> dict[str, object]:
    data = base64.b64encode(json.dumps(update).encode()).decode()
    return {"message": {"data": data, "messageId": message_id}, "subscription": "s"}


async def test_forged_malformed_and_duplicated_pushes_record_nothing_twice(
    stack: GcpStack,
) -> None:
    stack.executors.start()
    async with stack.client() as client:
        [execution_id] = await enqueue(client, "Noop", [{"n": 7}])
        [done] = await wait_until_finished(client, "Noop", 1, timeout=60)
        events_before = (await client.get(f"/v1/executions/{execution_id}")).json()["events"]
        stale = {
            "execution_id": execution_id,
            "task_id": done["task_id"],
            "attempt": 1,
            "seq": 1,
            "status": "Running",
        }
        route = "/task_execution_update"

        forged = await client.post(f"{route}?token=forged", json=envelope(stale))
        malformed = await client.post(f"{route}?token={PUSH_TOKEN}", content=b"{not json")
        duplicate = await client.post(f"{route}?token={PUSH_TOKEN}", json=envelope(stale))

        events_after = (await client.get(f"/v1/executions/{execution_id}")).json()["events"]
        executions = await executions_of(client, "Noop")

    assert (forged.status_code, malformed.status_code) == (403, 400)
    assert (duplicate.status_code, duplicate.json()["outcome"]) == (200, "ignored")
    assert events_after == events_before
    assert [e["status"] for e in executions] == ["Passed"]


async def test_the_api_pulls_no_updates(stack: GcpStack) -> None:
    """Every recorded update came by push: the API made no pull subscription for updates."""
    from google.api_core.exceptions import NotFound
    from google.pubsub_v1 import SubscriberClient

    subscriber = SubscriberClient()
    path = f"projects/{stack.project}/subscriptions/TaskExecutionUpdates-sub"
    with pytest.raises(NotFound):
        subscriber.get_subscription(subscription=path)
    async with httpx.AsyncClient(base_url=stack.api.url) as client:
        assert (await client.get("/readyz")).status_code == 200


async def test_a_malformed_update_pushed_by_pubsub_ends_in_the_dead_letters(
    stack: GcpStack,
) -> None:
    """The route answers 400; Pub/Sub retries, then parks the message (decision 018)."""
    from google.api_core.exceptions import DeadlineExceeded
    from google.pubsub_v1 import PublisherClient, PubsubMessage, ReceivedMessage, SubscriberClient

    topic = f"projects/{stack.project}/topics/TaskExecutionUpdates"
    PublisherClient().publish(topic=topic, messages=[PubsubMessage(data=b"not an update")])
    parked = f"projects/{stack.project}/subscriptions/TaskExecutionUpdates-push-dlq"
    subscriber = SubscriberClient()
    letters: list[ReceivedMessage] = []
    for _ in range(60):
        with contextlib.suppress(DeadlineExceeded):
            letters = list(
                subscriber.pull(subscription=parked, max_messages=10, timeout=3.0).received_messages
            )
        if letters:
            break
    [letter] = letters
    assert letter.message.data == b"not an update"
    assert letter.message.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
