"""An API process that dies between publishing an execution request and recording it.

`python -m tests.e2e.publish_crash STORE_URL BROKER_URL TOPIC PAYLOAD_JSON` creates a task of
TOPIC, prints its id, enqueues one execution of it, and kills itself with SIGKILL as soon as
the request message has been published on TOPIC: the broker holds the request, the store
still says ReadyForDispatch. Publishes on other topics (updates, control) go through.

Where the store records executions and publishes their requests in one transaction (the
PostgreSQL store and broker on one database), it dies right after that transaction instead:
there is no moment between the two to die in. Exits with 1 if it did not die.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from sublim.broker.base import Message
from sublim.config import Settings
from sublim.core.model import Execution, TaskRecord
from sublim.core.service import Service


def die() -> NoReturn:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable: SIGKILL was sent")


def die_right_after_publishing_on(service: Service, topic: str) -> None:
    """Wrap the broker's `publish` (and a transactional outbox's `create_and_publish`) so that
    the process dies as soon as a message of `topic` is published."""
    broker: Any = service.broker
    publish = broker.publish

    async def publish_then_die(on: str, messages: Sequence[Message]) -> set[str]:
        dropped: set[str] = await publish(on, messages)
        if on == topic:
            die()
        return dropped

    broker.publish = publish_then_die
    outbox: Any = service.store
    if hasattr(outbox, "create_and_publish"):
        create_and_publish = outbox.create_and_publish

        async def create_publish_then_die(
            executions: Sequence[Execution],
            messages: Mapping[str, Sequence[Message]],
            tasks: Sequence[TaskRecord] = (),
        ) -> None:
            await create_and_publish(executions, messages, tasks)
            if topic in messages:
                die()

        outbox.create_and_publish = create_publish_then_die


async def main(store_url: str, broker_url: str, topic: str, payload: dict[str, Any]) -> None:
    settings = Settings(store_url=store_url, broker_url=broker_url)
    async with Service.from_settings(settings) as service:
        die_right_after_publishing_on(service, topic)
        task, _ = await service.create_task(topic, payload)
        print(task.id, flush=True)
        await service.enqueue(task.id)
    raise SystemExit(f"enqueued {task.id} and did not die: no publish on {topic} was seen")


if __name__ == "__main__":
    store, broker, on_topic, body = sys.argv[1:]
    asyncio.run(main(store, broker, on_topic, json.loads(body)))
