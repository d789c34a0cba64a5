"""`ExecutionNodeBuilder`: the original's builder, in Python.

node = (ExecutionNodeBuilder(workers=3, broker="redis://localhost")
        .with_consumer(Thumbnail, subscription="ThumbnailExecutionRequests-sub")
        .build())
node.run()
"""

from __future__ import annotations

from typing import Self

from sublim.broker.base import Broker
from sublim.config import Settings
from sublim.core.backends import broker_from_url
from sublim.core.task import Task
from sublim.errors import ConfigError
from sublim.executor.attempt import Consumer
from sublim.executor.node import ExecutionNode


class ExecutionNodeBuilder:
    """Builds an `ExecutionNode`: a worker pool fed by one consumer per task type.

    `broker` is a URL or a `Broker`; by default the configured one (`SUBLIM_BROKER_URL`, else
    the embedded default). `updates_topic` defaults to the configured updates topic.
    """

    def __init__(
        self,
        workers: int = 4,
        broker: str | Broker | None = None,
        updates_topic: str | None = None,
        *,
        settings: Settings | None = None,
        name: str | None = None,
    ) -> None:
        if workers < 1:
            raise ConfigError(f"workers must be at least 1, not {workers}")
        self.settings = settings or Settings()
        self.workers = workers
        self.broker = broker if broker is not None else self.settings.broker_url
        self.updates_topic = updates_topic or self.settings.updates_topic
        self.name = name
        self._consumers: list[Consumer] = []

    def with_consumer(self, task_type: type[Task], subscription: str | None = None) -> Self:
        """Consume `task_type`'s topic through `subscription` (default `<topic>-sub`)."""
        if not (isinstance(task_type, type) and issubclass(task_type, Task)):
            raise ConfigError(f"{task_type!r} is not a subclass of sublim.Task")
        subscription = subscription or f"{task_type.topic}-sub"
        if any(c.subscription == subscription for c in self._consumers):
            raise ConfigError(f"subscription {subscription!r} is consumed twice")
        self._consumers.append(Consumer(task_type, subscription))
        return self

    def build(self) -> ExecutionNode:
        if not self._consumers:
            raise ConfigError("an execution node needs at least one consumer: call with_consumer()")
        broker = (
            broker_from_url(self.broker, self.settings)
            if isinstance(self.broker, str)
            else self.broker
        )
        return ExecutionNode(
            broker=broker,
            consumers=self._consumers,
            workers=self.workers,
            updates_topic=self.updates_topic,
            lease_seconds=self.settings.lease_seconds,
            heartbeat_seconds=self.settings.heartbeat_seconds,
            shutdown_grace_seconds=self.settings.shutdown_grace_seconds,
            cancel_grace_seconds=self.settings.cancel_grace_seconds,
            name=self.name,
            owns_broker=isinstance(self.broker, str),
            event_loop=self.settings.event_loop,
        )
