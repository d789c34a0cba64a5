"""In-process notice of the changes a `Service` records.

Listeners see every applied change (metrics count them); waiters are woken when one
execution changes (live event streams). The feed only knows what this process records: a
watcher of changes made by other processes (another API replica) also polls the store.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

from sublim.core.model import Change, Execution

ChangeListener = Callable[[Change], None]


class ChangeFeed:
    """Listeners of every change, and waiters on the changes of one execution."""

    def __init__(self) -> None:
        self._listeners: list[ChangeListener] = []
        self._waiters: defaultdict[str, set[asyncio.Event]] = defaultdict(set)

    def listen(self, listener: ChangeListener) -> None:
        """Call `listener` with each applied change from now on (it must not block)."""
        self._listeners.append(listener)

    def publish(self, changes: Iterable[Change]) -> None:
        for change in changes:
            if change.changed:
                self._notify(change)

    def publish_created(self, executions: Sequence[Execution]) -> None:
        """Tell of new executions, their first events being the change."""
        self.publish(
            Change(outcome="applied", execution=e, new_events=e.events) for e in executions
        )

    def _notify(self, change: Change) -> None:
        for listener in self._listeners:
            listener(change)
        for waiter in self._waiters.get(change.execution.id, ()):
            waiter.set()

    @contextmanager
    def watch(self, execution_id: str) -> Iterator[asyncio.Event]:
        """An event that is set whenever `execution_id` changes, while the block runs."""
        waiter = asyncio.Event()
        self._waiters[execution_id].add(waiter)
        try:
            yield waiter
        finally:
            self._waiters[execution_id].discard(waiter)
            if not self._waiters[execution_id]:
                del self._waiters[execution_id]
