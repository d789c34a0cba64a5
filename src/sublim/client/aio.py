"""`sublim.AsyncClient`: the HTTP API from asyncio code, method for method as `Client`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx

from sublim.client import _wire
from sublim.client._wire import Call, Connection, CreatedTask, EventDecoder, StatusFilter
from sublim.core.model import Event, Execution, TaskRecord, TaskStatus
from sublim.store.base import Page

T = TypeVar("T")


async def follow_pages(fetch: Callable[[str | None], Awaitable[Page[T]]]) -> AsyncIterator[T]:
    """Every item of every page, fetching the next page as the previous one runs out."""
    cursor: str | None = None
    while True:
        page = await fetch(cursor)
        for item in page.items:
            yield item
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


class AsyncClient:
    """`sublim.Client` for asyncio: the same methods, awaited (`iter_*` and
    `stream_events` are async iterators)."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = _wire.DEFAULT_TIMEOUT,
    ) -> None:
        self.connection = Connection.of(url, token, timeout)
        self._http = httpx.AsyncClient(
            base_url=self.connection.url, headers=self.connection.headers(), timeout=timeout
        )

    @property
    def url(self) -> str:
        """The API's base URL, without a trailing slash."""
        return self.connection.url

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _send(self, call: Call[T]) -> T:
        with _wire.answered(self.url):
            response = await self._http.request(call.method, call.path, **call.request_options())
        return call.result(response)

    # --- operations ---

    async def healthz(self) -> str:
        """ "ok" while the API process answers."""
        return await self._send(_wire.healthz())

    async def readyz(self) -> str:
        """ "ready" when the API's store and broker answer; `ApiUnavailable` otherwise."""
        return await self._send(_wire.readyz())

    # --- tasks ---

    async def create_task(
        self,
        topic: str,
        payload: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        labels: Mapping[str, str] | None = None,
        execute: bool = False,
        max_attempts: int | None = None,
        idempotency_key: str | None = None,
    ) -> CreatedTask:
        """Create a task; `execute=True` also enqueues it (then `.execution` is set)."""
        return await self._send(
            _wire.create_task(
                topic,
                payload,
                name=name,
                labels=labels,
                execute=execute,
                max_attempts=max_attempts,
                idempotency_key=idempotency_key,
            )
        )

    async def create_tasks(
        self,
        tasks: Sequence[Mapping[str, Any]],
        *,
        idempotency_key: str | None = None,
    ) -> list[CreatedTask]:
        """Create up to 1000 tasks in one call (`POST /v1/tasks:batch`); each task is a
        mapping of `create_task`'s arguments: `topic`, and optionally `payload`, `name`,
        `labels`, `execute`, `max_attempts`. Returns them in the order given. Every task is
        checked first: if one is invalid, none is created (`ApiInvalidInput`, naming its
        index as `tasks[i]`)."""
        return await self._send(_wire.create_tasks(tasks, idempotency_key=idempotency_key))

    async def get_task(self, task_id: str) -> TaskRecord:
        """The task; `ApiTaskNotFound` when there is none."""
        return await self._send(_wire.get_task(task_id))

    async def list_tasks(
        self,
        topic: str | None = None,
        labels: Mapping[str, str] | None = None,
        status: TaskStatus | str | None = None,
        *,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[TaskRecord]:
        """One page of tasks, newest first; pass `next_cursor` back as `cursor`."""
        return await self._send(
            _wire.list_tasks(topic=topic, labels=labels, status=status, limit=limit, cursor=cursor)
        )

    def iter_tasks(
        self,
        topic: str | None = None,
        labels: Mapping[str, str] | None = None,
        status: TaskStatus | str | None = None,
        *,
        page_size: int = 100,
    ) -> AsyncIterator[TaskRecord]:
        """Every matching task, newest first, following the cursors page by page."""
        return follow_pages(
            lambda cursor: self.list_tasks(topic, labels, status, limit=page_size, cursor=cursor)
        )

    async def update_task(
        self,
        task_id: str,
        *,
        name: str | None = None,
        payload: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> TaskRecord:
        """Change the fields given (labels are replaced as a whole)."""
        return await self._send(
            _wire.update_task(task_id, name=name, payload=payload, labels=labels)
        )

    async def delete_task(self, task_id: str) -> None:
        """Delete the task and its executions."""
        await self._send(_wire.delete_task(task_id))

    # --- executions ---

    async def enqueue(
        self,
        task_id: str,
        *,
        max_attempts: int | None = None,
        idempotency_key: str | None = None,
    ) -> Execution:
        """Enqueue a new execution of the task."""
        return await self._send(
            _wire.enqueue(task_id, max_attempts=max_attempts, idempotency_key=idempotency_key)
        )

    async def list_executions(
        self,
        task_id: str | None = None,
        *,
        status: StatusFilter = None,
        topic: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Execution]:
        """One page of executions (of one task, or all), newest first, without event logs."""
        where = _wire.ExecutionFilter.of(task_id, status, topic, created_after, created_before)
        return await self._send(where.page(limit, cursor))

    def iter_executions(
        self,
        task_id: str | None = None,
        *,
        status: StatusFilter = None,
        topic: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[Execution]:
        """Every matching execution, newest first, following the cursors page by page."""
        where = _wire.ExecutionFilter.of(task_id, status, topic, created_after, created_before)
        return follow_pages(lambda cursor: self._send(where.page(page_size, cursor)))

    async def get_execution(self, execution_id: str) -> Execution:
        """One execution with its result, error and event log."""
        return await self._send(_wire.get_execution(execution_id))

    async def cancel(self, execution_id: str) -> Execution:
        """Cancel a queued or running execution; `ApiConflict` once it has finished."""
        return await self._send(_wire.cancel(execution_id))

    async def retry(self, execution_id: str) -> Execution:
        """A new execution of the same task; `ApiConflict` while this one has not finished."""
        return await self._send(_wire.retry(execution_id))

    async def events(self, execution_id: str) -> list[Event]:
        """The execution's event log so far."""
        return await self._send(_wire.events(execution_id))

    async def stream_events(self, execution_id: str, *, after: int = 0) -> AsyncIterator[Event]:
        """The execution's events, the log so far then each one as it is recorded, until the
        execution finishes (or is deleted); `after` skips that many events."""
        decoder, left = EventDecoder(last_id=after), _wire.STREAM_RECONNECTS
        while left >= 0:
            async for event in self._stream_once(execution_id, decoder):
                yield event
            if decoder.ended:
                return
            left = _wire.reconnects_left(decoder, left)

    async def _stream_once(self, execution_id: str, decoder: EventDecoder) -> AsyncIterator[Event]:
        async with self._lines(_wire.event_stream(execution_id, decoder.last_id)) as lines:
            async for line in lines:
                for event in decoder.feed(line):
                    yield event
                if decoder.ended:
                    return

    @asynccontextmanager
    async def _lines(self, call: Call[None]) -> AsyncIterator[AsyncIterator[str]]:
        timeout = self.connection.stream_timeout()
        with _wire.answered(self.url):
            async with self._http.stream(
                call.method, call.path, timeout=timeout, **call.request_options()
            ) as response:
                if response.is_error:
                    await response.aread()
                    call.result(response)
                yield response.aiter_lines()

    async def wait(self, execution_id: str) -> Execution:
        """Wait until the execution finishes; the finished execution."""
        async for _ in self.stream_events(execution_id):
            pass
        return await self.get_execution(execution_id)
