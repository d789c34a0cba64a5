"""Micro-batching: many concurrent callers, one backend call per batch.

Callers `submit` items and await their own result; one flusher task takes everything pending
and hands it to the batch function in one call. Under light load a batch is one item and adds
no delay; under heavy load batches grow by themselves, so the cost of a round trip or a
transaction is shared. Order of submission is kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger("sublim.batching")

BatchFn = Callable[[Sequence[T]], Awaitable[Sequence[R]]]


class Batcher(Generic[T, R]):
    """Runs `fn` over batches of submitted items, at most `max_batch` at a time."""

    def __init__(self, fn: BatchFn[T, R], *, max_batch: int = 500, name: str = "batcher") -> None:
        self._fn = fn
        self._max_batch = max_batch
        self._name = name
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def submit(self, item: T) -> asyncio.Future[R]:
        """Queue an item; the returned future resolves with its result (or its error)."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._idle.clear()
        self._wakeup.set()
        if self._task is None:
            self._task = asyncio.create_task(self._flush_forever(), name=self._name)
        return future

    async def __call__(self, item: T) -> R:
        return await self.submit(item)

    async def close(self) -> None:
        """Flush what is pending, then stop the flusher."""
        await self._idle.wait()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _flush_forever(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                await self._flush_once()
            self._idle.set()

    async def _flush_once(self) -> None:
        batch = self._pending[: self._max_batch]
        del self._pending[: self._max_batch]
        items = [item for item, _ in batch]
        try:
            results = await self._fn(items)
        except Exception as exc:
            _fail_all(batch, exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


def _fail_all(batch: list[tuple[T, asyncio.Future[R]]], exc: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
