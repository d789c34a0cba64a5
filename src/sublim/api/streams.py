"""The open event streams of one API process: a cap per token and per process, each
stream's lifetime and re-read interval, and the end of them all when the server stops."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from starlette.exceptions import HTTPException

from sublim.config import Settings
from sublim.core.model import Execution

RETRY_AFTER_SECONDS = 5


class TooManyStreams(HTTPException):
    """429: a cap on open event streams is reached (an HTTPException, answered as a problem)."""

    def __init__(self, detail: str) -> None:
        super().__init__(429, detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


@dataclass(frozen=True, slots=True)
class StreamLimits:
    per_process: int = 500
    per_token: int = 50
    lifetime_seconds: float = 300.0
    poll_seconds: float = 5.0


def holder_of(authorization: str) -> str:
    """Who holds a stream: a digest of the Authorization header ('' for anonymous)."""
    return hashlib.sha256(authorization.encode()).hexdigest()


class StreamSlot:
    """One open stream's place; `release` (idempotent) gives it back."""

    def __init__(self, slots: StreamSlots, holder: str) -> None:
        self._slots = slots
        self._holder = holder
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._slots.give_back(self._holder)


class StreamSlots:
    """Counts open streams by holder, shares their reads of one execution, and wakes them
    all to end when the server stops."""

    def __init__(self, limits: StreamLimits) -> None:
        self.limits = limits
        self.closing = False
        self._open: Counter[str] = Counter()
        self._watchers: set[asyncio.Event] = set()
        self._reads: dict[str, asyncio.Future[Execution]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> StreamSlots:
        return cls(
            StreamLimits(
                per_process=settings.max_event_streams,
                per_token=settings.max_event_streams_per_token,
                lifetime_seconds=settings.event_stream_seconds,
                poll_seconds=settings.event_stream_poll_seconds,
            )
        )

    def __len__(self) -> int:
        return self._open.total()

    def acquire(self, holder: str) -> StreamSlot:
        """A slot for `holder`; TooManyStreams when a cap is reached or the server stops."""
        if self.closing:
            raise TooManyStreams("the server is shutting down")
        if len(self) >= self.limits.per_process:
            raise TooManyStreams(f"this server has {self.limits.per_process} open event streams")
        if self._open[holder] >= self.limits.per_token:
            raise TooManyStreams(f"this token has {self.limits.per_token} open event streams")
        self._open[holder] += 1
        return StreamSlot(self, holder)

    def give_back(self, holder: str) -> None:
        self._open[holder] -= 1
        if self._open[holder] <= 0:
            del self._open[holder]

    @contextmanager
    def attending(self, watcher: asyncio.Event) -> Iterator[None]:
        """While the block runs, `end_all` sets `watcher` (the stream then sees `closing`)."""
        self._watchers.add(watcher)
        try:
            yield
        finally:
            self._watchers.discard(watcher)

    async def read_together(
        self, execution_id: str, read: Callable[[], Awaitable[Execution]]
    ) -> Execution:
        """`read()`, shared by the streams of `execution_id` that ask while it runs: a change
        wakes every stream of its execution at once, and costs one store read."""
        running = self._reads.get(execution_id)
        if running is None:
            running = asyncio.ensure_future(read())
            self._reads[execution_id] = running
            running.add_done_callback(lambda _: self._reads.pop(execution_id, None))
        return await asyncio.shield(running)

    def end_all(self) -> None:
        """Shutdown has begun: every open stream ends with `event: reconnect`."""
        self.closing = True
        for watcher in list(self._watchers):
            watcher.set()
