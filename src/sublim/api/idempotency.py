"""`Idempotency-Key`: a retried POST with the same key gets the first response back.

Responses are kept in this process, in a bounded cache with a time to live (see
docs/decisions/ for why, and for the limit: API replicas do not share it). Only successful
(2xx) responses are kept: a request that failed may be retried for real. A key reused with
a different request is a 422; a retry that arrives while the first is still running waits
for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sublim.errors import InvalidInput

DEFAULT_TTL_SECONDS = 24 * 3600.0
DEFAULT_MAX_ENTRIES = 10_000
REPLAYED_HEADER = "Idempotent-Replayed"

Produce = Callable[[], Awaitable[tuple[int, Any]]]


@dataclass(frozen=True, slots=True)
class StoredResponse:
    fingerprint: str
    status: int
    body: Any
    expires_at: float


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    body: Any
    replayed: bool


def fingerprint_of(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


class IdempotencyCache:
    """First responses by key, least recently stored evicted first, expiring after `ttl`."""

    def __init__(
        self,
        ttl: float = DEFAULT_TTL_SECONDS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._stored: OrderedDict[str, StoredResponse] = OrderedDict()
        self._running: dict[str, asyncio.Future[None]] = {}

    async def run(self, key: str, fingerprint: str, produce: Produce) -> Outcome:
        """The stored response of `key`, or `produce`'s, stored if successful."""
        while (running := self._running.get(key)) is not None:
            await asyncio.shield(running)
        stored = self._lookup(key)
        if stored is not None:
            return _replay(stored, fingerprint)
        return await self._produce_once(key, fingerprint, produce)

    async def _produce_once(self, key: str, fingerprint: str, produce: Produce) -> Outcome:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._running[key] = done
        try:
            status, body = await produce()
            if 200 <= status < 300:
                self._store(
                    key, StoredResponse(fingerprint, status, body, self._clock() + self.ttl)
                )
            return Outcome(status, body, replayed=False)
        finally:
            del self._running[key]
            done.set_result(None)

    def _lookup(self, key: str) -> StoredResponse | None:
        stored = self._stored.get(key)
        if stored is not None and stored.expires_at <= self._clock():
            del self._stored[key]
            return None
        return stored

    def _store(self, key: str, stored: StoredResponse) -> None:
        self._stored[key] = stored
        self._stored.move_to_end(key)
        while len(self._stored) > self.max_entries:
            self._stored.popitem(last=False)

    def __len__(self) -> int:
        return len(self._stored)


def _replay(stored: StoredResponse, fingerprint: str) -> Outcome:
    if stored.fingerprint != fingerprint:
        raise InvalidInput("this Idempotency-Key was used with a different request")
    return Outcome(stored.status, stored.body, replayed=True)
