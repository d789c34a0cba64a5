"""Testing support for users' own tests: Subliminal in memory, in one process.

    async with Harness(Thumbnail) as sublim:
        execution = await sublim.enqueue(Thumbnail(url="https://…"))
        await sublim.run_until_idle()
        assert (await sublim.get(execution.id)).status == TaskStatus.PASSED

`run_inline(task)` runs one task's ``execute`` right here, with the same rules for its outcome
as a worker, without any queue.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sublim.broker.memory import MemoryBroker
from sublim.config import Settings
from sublim.core.model import ACTIVE, Execution, TaskResult, TaskStatus
from sublim.core.policy import verdict_for_value
from sublim.core.service import Service
from sublim.core.task import Task
from sublim.errors import SublimError
from sublim.executor.builder import ExecutionNodeBuilder
from sublim.store.base import ExecutionQuery
from sublim.store.memory import MemoryStore

POLL_SECONDS = 0.005


class Harness:
    """A service, an execution node and an updates consumer, all in memory."""

    def __init__(
        self, *task_types: type[Task], workers: int = 4, settings: Settings | None = None
    ) -> None:
        self.settings = settings or Settings(store_url="memory://", broker_url="memory://")
        self.broker = MemoryBroker()
        self.service = Service(MemoryStore(), self.broker, self.settings)
        builder = ExecutionNodeBuilder(workers, self.broker, settings=self.settings, name="harness")
        for task_type in task_types:
            builder.with_consumer(task_type)
        self.node = builder.build() if task_types else None
        self._stop = asyncio.Event()
        self._background: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Harness:
        await self.service.open()
        self._background.append(asyncio.create_task(self.service.consume_updates(self._stop)))
        if self.node is not None:
            self._background.append(asyncio.create_task(self.node.serve(self._stop)))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._background)
        await self.service.close()

    async def enqueue(self, task: Task, *, labels: dict[str, str] | None = None) -> Execution:
        """Record `task` and enqueue one execution of it."""
        max_attempts = type(task).max_attempts
        _, execution = await self.service.create_task(
            type(task).topic,
            task.model_dump(mode="json"),
            labels=labels,
            execute=True,
            max_attempts=max_attempts,
        )
        assert execution is not None
        return execution

    async def get(self, execution_id: str) -> Execution:
        return await self.service.get_execution(execution_id)

    async def executions(
        self, *, status: TaskStatus | None = None, topic: str | None = None
    ) -> list[Execution]:
        """Every recorded execution (with its event log), oldest first."""
        statuses = frozenset({status}) if status else frozenset()
        page = await self.service.list_executions(
            ExecutionQuery(statuses=statuses, topic=topic, limit=1000)
        )
        return [await self.get(e.id) for e in reversed(page.items)]

    async def run_until_idle(self, timeout: float = 10.0) -> list[Execution]:
        """Wait until no execution is queued or running; returns every execution."""
        deadline = time.monotonic() + timeout
        while await self._busy():
            if time.monotonic() > deadline:
                raise SublimError(f"executions still active after {timeout} s")
            await asyncio.sleep(POLL_SECONDS)
        return await self.executions()

    async def _busy(self) -> bool:
        query = ExecutionQuery(statuses=ACTIVE | {TaskStatus.INCOMPLETE}, limit=1000)
        page = await self.service.list_executions(query)
        return any(not e.finished for e in page.items)


def run_inline(task: Task) -> TaskResult:
    """Run `task.execute()` here and now (from sync code); the outcome as a worker reports it.

    An exception propagates, so that a test sees it with its traceback.
    """
    value: Any = task.execute()
    if asyncio.iscoroutine(value):
        value = asyncio.run(value)
    return _as_result(value)


async def run_inline_async(task: Task) -> TaskResult:
    """`run_inline` for async tests: awaits an async `execute` on the running loop."""
    value: Any = task.execute()
    if asyncio.iscoroutine(value):
        value = await value
    return _as_result(value)


def _as_result(value: Any) -> TaskResult:
    verdict = verdict_for_value(value)
    return TaskResult(status=verdict.status, data=verdict.data)
