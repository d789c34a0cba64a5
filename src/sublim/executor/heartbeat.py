"""An attempt's heartbeat, on a timer rather than a task of its own.

Every `every` seconds while the attempt runs, its beat runs (extend the delivery's lease,
report the attempt Running), the next one `every` seconds after the last returned. Most
attempts end before their first beat is due: they cost one timer handle, not a task, an event
and a `wait_for` each (docs/decisions/034-cheaper-attempts.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("sublim.executor")


class Heartbeat:
    """Calls `beat` every `every` seconds from now until `stop`."""

    def __init__(self, every: float, beat: Callable[[], Awaitable[None]], name: str) -> None:
        self._every = every
        self._beat = beat
        self._name = name
        self._loop = asyncio.get_running_loop()
        self._stopped = False
        self._beating: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = self._loop.call_later(every, self._due)

    async def stop(self) -> None:
        """At once: no beat starts, and a beat under way is cancelled, before this returns."""
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        beating, self._beating = self._beating, None
        if beating is not None:
            beating.cancel()
            await asyncio.gather(beating, return_exceptions=True)

    def _due(self) -> None:
        self._timer = None
        if not self._stopped:
            self._beating = self._loop.create_task(self._beat_then_next(), name=self._name)

    async def _beat_then_next(self) -> None:
        try:
            await self._beat()
        except Exception as exc:  # the lease must still be extended at the next beat
            log.warning("%s failed (%r); beating again in %.1f s", self._name, exc, self._every)
        self._beating = None
        if not self._stopped:
            self._timer = self._loop.call_later(self._every, self._due)
