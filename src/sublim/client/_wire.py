"""What the sync and async clients share: each API call as a `Call` (the request to send and
how to read its answer), the mapping of problem+json answers onto the error tree, and the
decoding of Server-Sent Events. Only the transport differs between the two clients.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from sublim.core.model import Event, Execution, TaskRecord, TaskStatus
from sublim.errors import (
    ApiConflict,
    ApiError,
    ApiExecutionNotFound,
    ApiInvalidInput,
    ApiNotFound,
    ApiTaskNotFound,
    ApiUnavailable,
    AuthError,
    Unreachable,
)
from sublim.store.base import Page

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

Subject = tuple[Literal["task", "execution"], str]
Params = list[tuple[str, str]]
StatusFilter = TaskStatus | str | Iterable[TaskStatus | str] | None


class CreatedTask(TaskRecord):
    """A new task; with `execute=True`, also the execution that was enqueued."""

    execution: Execution | None = None


def segment(identifier: str) -> str:
    """`identifier` as one path segment: every reserved character percent-encoded, and "."
    or ".." spelled so that no URL normalization treats it as a step up the path."""
    quoted = quote(identifier, safe="")
    return quoted.replace(".", "%2E") if quoted in {".", ".."} else quoted


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API call: the request, what a 404 is about, and how to read a success."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    params: Params = field(default_factory=list)
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    subject: Subject | None = None

    def request_options(self) -> dict[str, Any]:
        return {"params": self.params, "json": self.body, "headers": self.headers}

    def result(self, response: httpx.Response) -> T:
        """The answer read, or the error it is."""
        if response.is_error:
            raise error_from(response, self.subject)
        return self.read(response)


# --- reading answers -------------------------------------------------------------------


def _known_fields(model: type[BaseModel], data: Mapping[str, Any]) -> dict[str, Any]:
    """Leave out fields a newer API may add, which the (strict) models would refuse."""
    return {key: value for key, value in data.items() if key in model.model_fields}


def _as(model: type[M]) -> Callable[[httpx.Response], M]:
    def read(response: httpx.Response) -> M:
        return model.model_validate(_known_fields(model, response.json()))

    return read


def _page_of(model: type[M]) -> Callable[[httpx.Response], Page[M]]:
    def read(response: httpx.Response) -> Page[M]:
        body = response.json()
        items = [model.model_validate(_known_fields(model, item)) for item in body["items"]]
        return Page(items=items, next_cursor=body.get("next_cursor"))

    return read


def _items_of(model: type[M]) -> Callable[[httpx.Response], list[M]]:
    def read(response: httpx.Response) -> list[M]:
        return [model.model_validate(_known_fields(model, i)) for i in response.json()["items"]]

    return read


def _events(response: httpx.Response) -> list[Event]:
    return [Event.model_validate(event) for event in response.json()]


def _nothing(response: httpx.Response) -> None:
    return None


def _status_field(response: httpx.Response) -> str:
    status: str = response.json()["status"]
    return status


# --- errors ----------------------------------------------------------------------------


def _problem_of(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"detail": response.text.strip()}
    return body if isinstance(body, dict) else {"detail": str(body)}


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.replace(".", "", 1).isdigit() else None


def _error_class(status: int, subject: Subject | None) -> type[ApiError]:
    if status == 404 and subject is not None:
        return ApiTaskNotFound if subject[0] == "task" else ApiExecutionNotFound
    by_status: dict[int, type[ApiError]] = {
        400: ApiInvalidInput,
        401: AuthError,
        403: AuthError,
        404: ApiNotFound,
        409: ApiConflict,
        413: ApiInvalidInput,
        422: ApiInvalidInput,
        503: ApiUnavailable,
    }
    return by_status.get(status, ApiError)


def error_from(response: httpx.Response, subject: Subject | None = None) -> ApiError:
    """The error tree's exception for a problem+json answer, with the server's detail."""
    problem = _problem_of(response)
    error = _error_class(response.status_code, subject)(
        response.status_code,
        str(problem.get("title") or response.reason_phrase),
        str(problem.get("detail") or ""),
        errors=problem.get("errors"),
        retry_after=_retry_after(response),
    )
    if isinstance(error, ApiTaskNotFound) and subject:
        error.task_id = subject[1]
    if isinstance(error, ApiExecutionNotFound) and subject:
        error.execution_id = subject[1]
    return error


@contextmanager
def answered(url: str) -> Iterator[None]:
    """Turn a transport failure (refused, timed out, cut) into `Unreachable`."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise Unreachable(f"the API at {url} did not answer in time ({exc!r})") from exc
    except httpx.TransportError as exc:
        raise Unreachable(f"cannot reach the API at {url}: {exc}") from exc


# --- the calls -------------------------------------------------------------------------


def _idempotency(key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": key} if key else {}


def _without_none(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def _pairs(**params: Any) -> Params:
    return [(name, str(value)) for name, value in params.items() if value is not None]


def _statuses(status: StatusFilter) -> list[str]:
    if status is None:
        return []
    if isinstance(status, str):  # a TaskStatus is a str too
        return [str(status)]
    return [str(one) for one in status]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def healthz() -> Call[str]:
    return Call("GET", "/healthz", _status_field)


def readyz() -> Call[str]:
    return Call("GET", "/readyz", _status_field)


def create_task(
    topic: str,
    payload: Mapping[str, Any] | None,
    *,
    name: str | None,
    labels: Mapping[str, str] | None,
    execute: bool,
    max_attempts: int | None,
    idempotency_key: str | None,
) -> Call[CreatedTask]:
    task = {"topic": topic, "payload": payload, "name": name, "labels": labels}
    body = _task_body(task | {"execute": execute, "max_attempts": max_attempts})
    return Call(
        "POST", "/v1/tasks", _as(CreatedTask), body=body, headers=_idempotency(idempotency_key)
    )


#: What a task to create may say: `create_task`'s arguments but its idempotency key.
TASK_FIELDS = frozenset({"topic", "payload", "name", "labels", "execute", "max_attempts"})


def _task_body(task: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body of one task; a field `create_task` does not take, or no topic, is a
    `TypeError` (before anything is sent)."""
    unknown = task.keys() - TASK_FIELDS
    if unknown or "topic" not in task:
        wrong = f"unknown fields {sorted(unknown)}" if unknown else "no topic"
        raise TypeError(f"a task to create has {wrong}; it takes {sorted(TASK_FIELDS)}")
    payload, labels = task.get("payload"), task.get("labels")
    return _without_none(
        topic=task["topic"],
        payload=dict(payload) if payload is not None else None,
        name=task.get("name"),
        labels=dict(labels) if labels is not None else None,
        max_attempts=task.get("max_attempts"),
    ) | ({"execute": True} if task.get("execute") else {})


def create_tasks(
    tasks: Iterable[Mapping[str, Any]], *, idempotency_key: str | None
) -> Call[list[CreatedTask]]:
    """`POST /v1/tasks:batch`; each task a mapping of `create_task`'s arguments (a key it
    does not take is a `TypeError` here, before anything is sent)."""
    body = {"tasks": [_task_body(task) for task in tasks]}
    return Call(
        "POST",
        "/v1/tasks:batch",
        _items_of(CreatedTask),
        body=body,
        headers=_idempotency(idempotency_key),
    )


def _on_task(
    method: str,
    task_id: str,
    read: Callable[[httpx.Response], T],
    action: str = "",
    **options: Any,
) -> Call[T]:
    """A call on one task's path (or, with `action`, below it); a 404 is `ApiTaskNotFound`."""
    path = f"/v1/tasks/{segment(task_id)}" + (f"/{action}" if action else "")
    return Call(method, path, read, subject=("task", task_id), **options)


def get_task(task_id: str) -> Call[TaskRecord]:
    return _on_task("GET", task_id, _as(TaskRecord))


def list_tasks(
    *,
    topic: str | None,
    labels: Mapping[str, str] | None,
    status: TaskStatus | str | None,
    limit: int,
    cursor: str | None,
) -> Call[Page[TaskRecord]]:
    params = _pairs(topic=topic, status=status, limit=limit, cursor=cursor)
    params += [("label", f"{key}:{value}") for key, value in (labels or {}).items()]
    return Call("GET", "/v1/tasks", _page_of(TaskRecord), params=params)


def update_task(
    task_id: str,
    *,
    name: str | None,
    payload: Mapping[str, Any] | None,
    labels: Mapping[str, str] | None,
) -> Call[TaskRecord]:
    body = _without_none(
        name=name,
        payload=dict(payload) if payload is not None else None,
        labels=dict(labels) if labels is not None else None,
    )
    return _on_task("PATCH", task_id, _as(TaskRecord), body=body)


def delete_task(task_id: str) -> Call[None]:
    return _on_task("DELETE", task_id, _nothing)


def enqueue(
    task_id: str, *, max_attempts: int | None, idempotency_key: str | None
) -> Call[Execution]:
    return _on_task(
        "POST",
        task_id,
        _as(Execution),
        action="executions",
        body=_without_none(max_attempts=max_attempts) or None,
        headers=_idempotency(idempotency_key),
    )


@dataclass(frozen=True)
class ExecutionFilter:
    """Which executions a list holds (of one task, or all); `page` is the call for one page."""

    task_id: str | None
    statuses: tuple[str, ...]
    topic: str | None
    created_after: datetime | None
    created_before: datetime | None

    @classmethod
    def of(
        cls,
        task_id: str | None,
        status: StatusFilter,
        topic: str | None,
        created_after: datetime | None,
        created_before: datetime | None,
    ) -> ExecutionFilter:
        """The filter of the client's arguments, in their order; `status` read once."""
        return cls(task_id, tuple(_statuses(status)), topic, created_after, created_before)

    def page(self, limit: int, cursor: str | None) -> Call[Page[Execution]]:
        params = [("status", one) for one in self.statuses] + _pairs(
            topic=self.topic,
            created_after=_iso(self.created_after),
            created_before=_iso(self.created_before),
            limit=limit,
            cursor=cursor,
        )
        if self.task_id is None:
            return Call("GET", "/v1/executions", _page_of(Execution), params=params)
        return _on_task(
            "GET", self.task_id, _page_of(Execution), action="executions", params=params
        )


def _on_execution(method: str, execution_id: str, action: str = "") -> Call[Execution]:
    path = f"/v1/executions/{segment(execution_id)}" + (f"/{action}" if action else "")
    return Call(method, path, _as(Execution), subject=("execution", execution_id))


def get_execution(execution_id: str) -> Call[Execution]:
    return _on_execution("GET", execution_id)


def cancel(execution_id: str) -> Call[Execution]:
    return _on_execution("POST", execution_id, "cancel")


def retry(execution_id: str) -> Call[Execution]:
    return _on_execution("POST", execution_id, "retry")


def events(execution_id: str) -> Call[list[Event]]:
    return Call(
        "GET",
        f"/v1/executions/{segment(execution_id)}/events",
        _events,
        subject=("execution", execution_id),
    )


def event_stream(execution_id: str, after: int) -> Call[None]:
    """The live stream's request; its body is read line by line by an `EventDecoder`."""
    headers = {"Accept": "text/event-stream"}
    if after:
        headers["Last-Event-ID"] = str(after)
    return Call(
        "GET",
        f"/v1/executions/{segment(execution_id)}/events",
        _nothing,
        headers=headers,
        subject=("execution", execution_id),
    )


# --- Server-Sent Events ----------------------------------------------------------------


@dataclass
class EventDecoder:
    """Reads an execution's SSE stream line by line: `feed` returns the events a line
    completes; `ended` turns True at the `end` message, `renewed` at a `reconnect` message
    (the server ended the stream: its lifetime, a shutdown); `last_id` is the last event's id."""

    ended: bool = False
    renewed: bool = False
    last_id: int = 0
    _kind: str = "message"
    _data: list[str] = field(default_factory=list)
    _id: str | None = None

    def feed(self, line: str) -> list[Event]:
        if line == "":
            return self._dispatch()
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._kind = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value
        return []

    def _dispatch(self) -> list[Event]:
        kind, data, message_id = self._kind, "\n".join(self._data), self._id
        self._kind, self._data, self._id = "message", [], None
        if kind == "end":
            self.ended = True
            return []
        if kind == "reconnect":
            self.renewed = True
            return []
        if kind != "message" or not data:
            return []
        if message_id and message_id.isdigit():
            self.last_id = int(message_id)
        return [Event.model_validate(json.loads(data))]


# --- connecting ------------------------------------------------------------------------

DEFAULT_URL = "http://127.0.0.1:8080"
URL_ENV = "SUBLIM_API_URL"
TOKEN_ENV = "SUBLIM_API_TOKEN"
DEFAULT_TIMEOUT = 30.0
#: The server sends a keep-alive every 15 s on an idle stream: wait a good while longer.
STREAM_READ_TIMEOUT = 60.0
#: Reconnections (with Last-Event-ID) after a stream closed before its `end` message, not
#: counting those the server asked for with `event: reconnect` (a stream's lifetime ended).
STREAM_RECONNECTS = 5


def reconnects_left(decoder: EventDecoder, left: int) -> int:
    """The unasked-for reconnections left after a stream closed (and `decoder` is reset for
    the next one): a `reconnect` message costs none."""
    renewed, decoder.renewed = decoder.renewed, False
    return left if renewed else left - 1


@dataclass(frozen=True)
class Connection:
    """Where the API is and how to talk to it; the arguments, else the environment."""

    url: str
    token: str | None
    timeout: float

    @classmethod
    def of(cls, url: str | None, token: str | None, timeout: float) -> Connection:
        chosen = url or os.environ.get(URL_ENV) or DEFAULT_URL
        return cls(chosen.rstrip("/"), token or os.environ.get(TOKEN_ENV) or None, timeout)

    def headers(self) -> dict[str, str]:
        auth = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {"User-Agent": "sublim-client"} | auth

    def stream_timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout, read=max(self.timeout, STREAM_READ_TIMEOUT))
