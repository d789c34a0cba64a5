"""`Idempotency-Key`: a retried POST with the same key gets the first response back.

Responses are kept in this process, in a cache bounded by bytes (the JSON-encoded bodies) and
entries, with a time to live (see docs/decisions/003 for why, and for the limit: API
replicas do not share it). Only successful (2xx) responses are kept: a request that failed
may be retried for real. A response larger than the whole budget is not kept (its retry runs
again). A key reused with a different request is a 422; a retry that arrives while the first
is still running waits for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sublim.errors import InvalidInput

DEFAULT_TTL_SECONDS = 24 * 3600.0
DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
REPLAYED_HEADER = "Idempotent-Replayed"

#: A response's status and body: JSON bytes, or a value `encode_json` encodes.
Produce = Callable[[], Awaitable[tuple[int, Any]]]


@dataclass(frozen=True, slots=True)
class StoredResponse:
    fingerprint: str
    status: int
    content: bytes
    expires_at: float


@dataclass(frozen=True, slots=True)
class Outcome:
    """A response: its status and JSON-encoded body, and whether it is a replay."""

    status: int
    content: bytes
    replayed: bool


def fingerprint_of(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def encode_json(body: Any) -> bytes:
    """`body` as Starlette's JSONResponse encodes it."""
    return json.dumps(
        body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode()


class IdempotencyCache:
    """First responses by key, least recently stored evicted first, expiring after `ttl`,
    holding at most `max_entries` responses and `max_bytes` of response bodies."""

    def __init__(
        self,
        ttl: float = DEFAULT_TTL_SECONDS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._stored: OrderedDict[str, StoredResponse] = OrderedDict()
        self._bytes = 0
        self._running: dict[str, asyncio.Future[None]] = {}

    @property
    def size_bytes(self) -> int:
        """The bytes of the stored response bodies."""
        return self._bytes

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
            content = body if isinstance(body, bytes) else encode_json(body)
            if 200 <= status < 300:
                expires_at = self._clock() + self.ttl
                self._store(key, StoredResponse(fingerprint, status, content, expires_at))
            return Outcome(status, content, replayed=False)
        finally:
            del self._running[key]
            done.set_result(None)

    def _lookup(self, key: str) -> StoredResponse | None:
        stored = self._stored.get(key)
        if stored is not None and stored.expires_at <= self._clock():
            self._forget(key)
            return None
        return stored

    def _store(self, key: str, stored: StoredResponse) -> None:
        if len(stored.content) > self.max_bytes:
            return
        self._forget(key)
        self._stored[key] = stored
        self._bytes += len(stored.content)
        while len(self._stored) > self.max_entries or self._bytes > self.max_bytes:
            self._forget(next(iter(self._stored)))

    def _forget(self, key: str) -> None:
        stored = self._stored.pop(key, None)
        if stored is not None:
            self._bytes -= len(stored.content)

    def __len__(self) -> int:
        return len(self._stored)


def _replay(stored: StoredResponse, fingerprint: str) -> Outcome:
    if stored.fingerprint != fingerprint:
        raise InvalidInput("this Idempotency-Key was used with a different request")
    return Outcome(stored.status, stored.content, replayed=True)
