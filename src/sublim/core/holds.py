"""What holds an execution back before it is published, and what lets it go.

- **Dependencies.** An execution enqueued with `depends_on` waits `Blocked` until every
  execution it depends on has `Passed`; then it is published. If one of them ends otherwise,
  it ends `Cancelled`, with the reason.
- **Concurrency limits.** A topic with a limit (`Settings.concurrency_limits`) has at most
  that many executions Dispatched or Running at once, across all executors; the others wait
  `ReadyForDispatch` and are published, oldest first, as slots free up.

Both are decided here, once, and re-checked by the sweeper, so that a crash between two steps
only delays an execution. With several API replicas the limit is approximate: each dispatcher
counts what the store holds, and two may fill the same free slot.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from sublim.core.model import Change, Execution, TaskStatus
from sublim.core.modifiers import CancelBlocked, Unblock
from sublim.errors import ExecutionNotFound, InvalidInput
from sublim.store.base import ExecutionQuery, ModifyFn, Store

log = logging.getLogger("sublim.service")

S = TaskStatus
IN_FLIGHT = frozenset({S.DISPATCHED, S.RUNNING})
SWEEP_BATCH = 500

Modify = Callable[[Sequence[str], ModifyFn], Awaitable[list[Change]]]
Publish = Callable[[Sequence[Execution], str], Awaitable[list[Execution]]]
Claim = Callable[[Sequence[Execution]], Awaitable[list[Execution]]]


@dataclass(frozen=True, slots=True)
class DependencyVerdict:
    """What an execution's dependencies say: go, wait, or give up (with why)."""

    ready: bool
    failed_reason: str | None = None


def judge_dependencies(dependencies: Sequence[Execution]) -> DependencyVerdict:
    for dependency in dependencies:
        if dependency.finished and dependency.status != S.PASSED:
            return DependencyVerdict(False, f"dependency {dependency.id} ended {dependency.status}")
    ready = all(d.status == S.PASSED for d in dependencies)
    return DependencyVerdict(ready)


class Holds:
    """Dependencies and concurrency limits, over the service's store primitives."""

    def __init__(
        self,
        store: Store,
        modify: Modify,
        publish: Publish,
        claim: Claim,
        limits: Mapping[str, int],
    ) -> None:
        self.store = store
        self._modify = modify
        self._publish = publish
        self._claim = claim
        self.limits = dict(limits)

    def limited(self, topic: str) -> bool:
        return topic in self.limits

    async def dependencies_of(self, depends_on: Sequence[str]) -> list[Execution]:
        """The executions named by `depends_on`; `InvalidInput` if one does not exist."""
        try:
            return [await self.store.get_execution(i) for i in depends_on]
        except ExecutionNotFound as exc:
            raise InvalidInput(f"depends_on names no execution {exc.execution_id!r}") from exc

    async def release(self, finished: Sequence[Execution]) -> None:
        """After executions finished: judge those waiting on them, and fill freed slots."""
        # This runs for every batch of recorded updates: one query tells whether anything is
        # blocked at all, instead of one query per finished execution.
        if finished and await self._anything_blocked():
            for execution in finished:
                await self.judge_blocked(await self._waiting_on(execution.id))
        for topic in sorted({e.topic for e in finished if self.limited(e.topic)}):
            await self.fill_slots(topic)

    async def judge_blocked(self, blocked: Sequence[Execution]) -> None:
        """Publish the blocked executions whose dependencies passed; cancel those whose
        dependencies failed; leave the others waiting."""
        for execution in blocked:
            verdict = judge_dependencies(await self.dependencies_of(execution.depends_on))
            if verdict.failed_reason is not None:
                await self._modify([execution.id], CancelBlocked(verdict.failed_reason))
            elif verdict.ready:
                await self._unblock(execution)

    async def _unblock(self, execution: Execution) -> None:
        changes = await self._modify([execution.id], Unblock("its dependencies passed"))
        if not any(change.changed for change in changes):
            return
        if self.limited(execution.topic):
            await self.fill_slots(execution.topic)
        else:
            await self._publish([changes[0].execution], "published: dependencies passed")

    async def fill_slots(self, topic: str) -> list[Execution]:
        """Publish the oldest waiting executions of a limited topic into its free slots."""
        limit = self.limits[topic]
        free = limit - await self._in_flight(topic, limit)
        if free <= 0:
            return []
        query = ExecutionQuery(
            topic=topic, statuses=frozenset({S.READY_FOR_DISPATCH}), oldest_first=True, limit=free
        )
        claimed = await self._claim((await self.store.list_executions(query)).items)
        reason = f"published: a slot of the {topic} limit ({limit}) is free"
        return await self._publish(claimed, reason) if claimed else []

    async def sweep(self) -> None:
        """Re-judge blocked executions and refill every limited topic (after a crash)."""
        query = ExecutionQuery(statuses=frozenset({S.BLOCKED}), limit=SWEEP_BATCH)
        await self.judge_blocked((await self.store.list_executions(query)).items)
        for topic in sorted(self.limits):
            await self.fill_slots(topic)

    async def _in_flight(self, topic: str, limit: int) -> int:
        query = ExecutionQuery(topic=topic, statuses=IN_FLIGHT, limit=limit)
        return len((await self.store.list_executions(query)).items)

    async def _anything_blocked(self) -> bool:
        query = ExecutionQuery(statuses=frozenset({S.BLOCKED}), limit=1)
        return bool((await self.store.list_executions(query)).items)

    async def _waiting_on(self, execution_id: str) -> list[Execution]:
        query = ExecutionQuery(
            waiting_on=execution_id, statuses=frozenset({S.BLOCKED}), limit=SWEEP_BATCH
        )
        return (await self.store.list_executions(query)).items
