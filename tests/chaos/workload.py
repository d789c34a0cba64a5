"""The chaos workload over HTTP: enqueue executions while the API may be down (recovering
each one that a dying API may or may not have recorded), wait until all have finished, and
read every execution back through the API."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from tests.chaos.tasks import ChaosAsync, ChaosProcess, ChaosThread

T = TypeVar("T")
LABEL = "chaos-n"
PAGE = 1000
RETRY_SECONDS = 0.2
#: One execution in this many runs longer than the lease: only heartbeats keep its lease.
LONG_EVERY = 50
LONG_MS = 2500
MAX_MS = 300


#: Executions go to each pool in turn: the event loop, threads, worker processes.
TASK_TYPES = (ChaosAsync, ChaosThread, ChaosProcess)


def payload_of(n: int, rng: random.Random) -> dict[str, Any]:
    topic = TASK_TYPES[n % len(TASK_TYPES)].topic
    ms = LONG_MS if n % LONG_EVERY == LONG_EVERY - 1 else rng.randint(0, MAX_MS)
    return {"topic": topic, "payload": {"n": n, "ms": ms}, "labels": {LABEL: str(n)}}


class Unavailable(Exception):
    """The API answered 5xx: it or one of its backends is down for now."""


#: What a call may meet while the chaos lasts, and outlive by trying again.
PASSING = (httpx.TransportError, Unavailable)


async def persist(call: Callable[[], Awaitable[T]], deadline: float) -> T:
    """`call` until it answers: through an API that is down or a backend that is (503)."""
    while True:
        try:
            return await call()
        except PASSING:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(RETRY_SECONDS)


async def _json(response: Awaitable[httpx.Response]) -> Any:
    """The body of a 2xx answer; `Unavailable` for a 5xx; `HTTPStatusError` for a 4xx."""
    answered = await response
    if answered.status_code >= 500:
        raise Unavailable(f"{answered.status_code}: {answered.text[:200]}")
    answered.raise_for_status()
    return answered.json()


class Workload:
    def __init__(self, http: httpx.AsyncClient, executions: int, seed: int) -> None:
        self.http = http
        self.executions = executions
        self.rng = random.Random(seed)
        #: n -> the id of its execution.
        self.ids: dict[int, str] = {}

    async def enqueue_all(self, seconds: float, concurrency: int = 32) -> None:
        """Enqueue every execution, evenly spread over `seconds`."""
        gate = asyncio.Semaphore(concurrency)
        began = time.monotonic()

        async def one(n: int, body: dict[str, Any]) -> None:
            await asyncio.sleep(max(0.0, began + n * seconds / self.executions - time.monotonic()))
            async with gate:
                self.ids[n] = await self._enqueue(n, body)

        bodies = [payload_of(n, self.rng) for n in range(self.executions)]
        await asyncio.gather(*(one(n, body) for n, body in enumerate(bodies)))

    async def _enqueue(self, n: int, body: dict[str, Any]) -> str:
        """Create the task with its execution. A failed POST may have been recorded all the
        same (by an API killed before it answered, or that answered 503 after the record), so
        after one, look up what the API holds for `n` and finish from there: each `n` gets
        one task and one execution, never two."""
        deadline = time.monotonic() + 60
        try:
            created = await _json(self.http.post("/v1/tasks", json=body | {"execute": True}))
            return str(created["execution"]["id"])
        except PASSING:
            pass
        while True:
            await asyncio.sleep(RETRY_SECONDS)
            try:
                return await self._finish_enqueue(n, body)
            except PASSING:
                if time.monotonic() > deadline:
                    raise

    async def _finish_enqueue(self, n: int, body: dict[str, Any]) -> str:
        """One try of every step of an enqueue still missing, each step only if the API does
        not already hold its outcome."""
        task = await self._find_task(n)
        if task is None:
            task = await _json(self.http.post("/v1/tasks", json=body | {"execute": True}))
            return str(task["execution"]["id"])
        if task["latest_execution"] is not None:
            return str(task["latest_execution"]["id"])
        execution = await _json(self.http.post(f"/v1/tasks/{task['id']}/executions"))
        return str(execution["id"])

    async def _find_task(self, n: int) -> dict[str, Any] | None:
        page = await _json(self.http.get("/v1/tasks", params={"label": f"{LABEL}:{n}"}))
        tasks: list[dict[str, Any]] = page["items"]
        return tasks[0] if tasks else None

    async def wait_until_finished(self, timeout: float) -> list[dict[str, Any]]:
        """Every execution the API lists, once all have finished or `timeout` passed."""
        deadline = time.monotonic() + timeout
        while True:
            listed = await persist(self.list_executions, deadline)
            finished = sum(e["finished_at"] is not None for e in listed)
            if finished >= self.executions or time.monotonic() > deadline:
                return listed
            await asyncio.sleep(0.5)

    async def list_executions(self) -> list[dict[str, Any]]:
        """Every execution, page after page (`next_cursor`)."""
        listed: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": PAGE} | ({"cursor": cursor} if cursor else {})
            page = await _json(self.http.get("/v1/executions", params=params))
            listed += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return listed

    async def read_all(self, ids: list[str], concurrency: int = 16) -> dict[str, dict[str, Any]]:
        """Each execution with its event log (`GET /v1/executions/{id}`)."""
        gate = asyncio.Semaphore(concurrency)
        deadline = time.monotonic() + 60

        async def one(execution_id: str) -> dict[str, Any]:
            async with gate:
                read: dict[str, Any] = await persist(
                    lambda: _json(self.http.get(f"/v1/executions/{execution_id}")), deadline
                )
                return read

        return {e["id"]: e for e in await asyncio.gather(*(one(i) for i in ids))}
