"""`sublim.Client`: the HTTP API from synchronous code (a thin facade over `_wire`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx

from sublim.client import _wire
from sublim.client._wire import Call, Connection, CreatedTask, EventDecoder, StatusFilter
from sublim.core.model import Event, Execution, TaskRecord, TaskStatus
from sublim.store.base import Page

T = TypeVar("T")


def follow_pages(fetch: Callable[[str | None], Page[T]]) -> Iterator[T]:
    """Every item of every page, fetching the next page as the previous one runs out."""
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


class Client:
    """The HTTP API of Subliminal. `url` defaults to `$SUBLIM_API_URL`, else
    http://127.0.0.1:8080; `token` (a bearer token) to `$SUBLIM_API_TOKEN`.

    Errors are the `sublim.errors` tree: `ApiTaskNotFound` (a `TaskNotFound`), `ApiConflict`,
    `ApiInvalidInput`, `AuthError`, `ApiUnavailable`, and `Unreachable` without an answer.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = _wire.DEFAULT_TIMEOUT,
    ) -> None:
        self.connection = Connection.of(url, token, timeout)
        self._http = httpx.Client(
            base_url=self.connection.url, headers=self.connection.headers(), timeout=timeout
        )

    @property
    def url(self) -> str:
        """The API's base URL, without a trailing slash."""
        return self.connection.url

    def close(self) -> None:
        """Close the client's connections."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, call: Call[T]) -> T:
        with _wire.answered(self.url):
            response = self._http.request(call.method, call.path, **call.request_options())
        return call.result(response)

    # --- operations ---

    def healthz(self) -> str:
        """ "ok" while the API process answers."""
        return self._send(_wire.healthz())

    def readyz(self) -> str:
        """ "ready" when the API's store and broker answer; `ApiUnavailable` otherwise."""
        return self._send(_wire.readyz())

    # --- tasks ---

    def create_task(
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
        return self._send(
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

    def create_tasks(
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
        return self._send(_wire.create_tasks(tasks, idempotency_key=idempotency_key))

    def get_task(self, task_id: str) -> TaskRecord:
        """The task; `ApiTaskNotFound` when there is none."""
        return self._send(_wire.get_task(task_id))

    def list_tasks(
        self,
        topic: str | None = None,
        labels: Mapping[str, str] | None = None,
        status: TaskStatus | str | None = None,
        *,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[TaskRecord]:
        """One page of tasks, newest first; pass `next_cursor` back as `cursor`."""
        return self._send(
            _wire.list_tasks(topic=topic, labels=labels, status=status, limit=limit, cursor=cursor)
        )

    def iter_tasks(
        self,
        topic: str | None = None,
        labels: Mapping[str, str] | None = None,
        status: TaskStatus | str | None = None,
        *,
        page_size: int = 100,
    ) -> Iterator[TaskRecord]:
        """Every matching task, newest first, following the cursors page by page."""
        return follow_pages(
            lambda cursor: self.list_tasks(topic, labels, status, limit=page_size, cursor=cursor)
        )

    def update_task(
        self,
        task_id: str,
        *,
        name: str | None = None,
        payload: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> TaskRecord:
        """Change the fields given (labels are replaced as a whole)."""
        return self._send(_wire.update_task(task_id, name=name, payload=payload, labels=labels))

    def delete_task(self, task_id: str) -> None:
        """Delete the task and its executions."""
        self._send(_wire.delete_task(task_id))

    # --- executions ---

    def enqueue(
        self,
        task_id: str,
        *,
        max_attempts: int | None = None,
        idempotency_key: str | None = None,
    ) -> Execution:
        """Enqueue a new execution of the task."""
        return self._send(
            _wire.enqueue(task_id, max_attempts=max_attempts, idempotency_key=idempotency_key)
        )

    def list_executions(
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
        return self._send(where.page(limit, cursor))

    def iter_executions(
        self,
        task_id: str | None = None,
        *,
        status: StatusFilter = None,
        topic: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        page_size: int = 100,
    ) -> Iterator[Execution]:
        """Every matching execution, newest first, following the cursors page by page."""
        where = _wire.ExecutionFilter.of(task_id, status, topic, created_after, created_before)
        return follow_pages(lambda cursor: self._send(where.page(page_size, cursor)))

    def get_execution(self, execution_id: str) -> Execution:
        """One execution with its result, error and event log."""
        return self._send(_wire.get_execution(execution_id))

    def cancel(self, execution_id: str) -> Execution:
        """Cancel a queued or running execution; `ApiConflict` once it has finished."""
        return self._send(_wire.cancel(execution_id))

    def retry(self, execution_id: str) -> Execution:
        """A new execution of the same task; `ApiConflict` while this one has not finished."""
        return self._send(_wire.retry(execution_id))

    def events(self, execution_id: str) -> list[Event]:
        """The execution's event log so far."""
        return self._send(_wire.events(execution_id))

    def stream_events(self, execution_id: str, *, after: int = 0) -> Iterator[Event]:
        """The execution's events, the log so far then each one as it is recorded, until the
        execution finishes (or is deleted); `after` skips that many events."""
        decoder, left = EventDecoder(last_id=after), _wire.STREAM_RECONNECTS
        while left >= 0:
            yield from self._stream_once(execution_id, decoder)
            if decoder.ended:
                return
            left = _wire.reconnects_left(decoder, left)

    def _stream_once(self, execution_id: str, decoder: EventDecoder) -> Iterator[Event]:
        with self._lines(_wire.event_stream(execution_id, decoder.last_id)) as lines:
            for line in lines:
                yield from decoder.feed(line)
                if decoder.ended:
                    return

    @contextmanager
    def _lines(self, call: Call[None]) -> Iterator[Iterator[str]]:
        timeout = self.connection.stream_timeout()
        with (
            _wire.answered(self.url),
            self._http.stream(
                call.method, call.path, timeout=timeout, **call.request_options()
            ) as response,
        ):
            if response.is_error:
                response.read()
                call.result(response)
            yield response.iter_lines()

    def wait(self, execution_id: str) -> Execution:
        """Wait until the execution finishes; the finished execution."""
        for _ in self.stream_events(execution_id):
            pass
        return self.get_execution(execution_id)
