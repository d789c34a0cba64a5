"""GET /v1/executions/{id}/events: the event log, or with `Accept: text/event-stream` a live
stream of the events as they are recorded, which ends when the execution finishes.

A stream wakes on the service's in-process `ChangeFeed` when its execution changes, and then
reads it once for all the streams of that execution in this process (`read_together`); it
also re-reads the store every `event_stream_poll_seconds`, for changes recorded by another
process (another API replica), which the feed cannot see (docs/decisions/023).
Each event is an SSE message whose `id` is its position in the log: a client that reconnects
with `Last-Event-ID` resumes after it. The last message is `event: end` once the execution
finished, or `event: reconnect` when the stream reached its lifetime or the server stops
(the client then reconnects with `Last-Event-ID`). Open streams are capped per token and
per process (`StreamSlots`: 429 above).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from sublim.api.deps import ServiceDep, problems
from sublim.api.ids import ExecutionIdPath
from sublim.api.schemas import EventOut
from sublim.api.streams import StreamSlot, StreamSlots, holder_of
from sublim.core.model import Execution
from sublim.core.service import Service
from sublim.errors import BackendError, NotFound

router = APIRouter(prefix="/v1/executions", tags=["executions"])

EVENT_STREAM = "text/event-stream"
KEEPALIVE_SECONDS = 15.0
#: Last-Event-ID: a position in an event log, at most nine digits (or empty: from the start).
EVENT_ID_PATTERN = r"^[0-9]{0,9}$"


def sse_message(data: str, *, event: str | None = None, message_id: int | None = None) -> str:
    lines = [f"event: {event}"] if event else []
    if message_id is not None:
        lines.append(f"id: {message_id}")
    lines.append(f"data: {data}")
    return "\n".join(lines) + "\n\n"


def _end_message(execution: Execution | None, why: str) -> str:
    status = execution.status.value if execution else None
    return sse_message(json.dumps({"status": status, "reason": why}), event="end")


def _reconnect_message(why: str) -> str:
    return sse_message(json.dumps({"reason": why}), event="reconnect")


async def _changed_or_timeout(changed: asyncio.Event, seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(changed.wait(), timeout=seconds)
        return True
    return False


@dataclass(slots=True)
class _Schedule:
    """When a stream next re-reads the store, sends a keep-alive, and ends."""

    poll_every: float
    next_poll: float
    next_keepalive: float
    deadline: float

    @classmethod
    def starting(cls, now: float, poll_every: float, lifetime: float) -> _Schedule:
        return cls(poll_every, now + poll_every, now + KEEPALIVE_SECONDS, now + lifetime)

    def wait(self, now: float) -> float:
        return max(0.0, min(self.next_poll, self.next_keepalive, self.deadline) - now)

    def due(self, now: float) -> str | None:
        """What is due at `now`: "lifetime", "poll", "keepalive" or nothing."""
        if now >= self.deadline:
            return "lifetime"
        if now >= self.next_poll:
            self.next_poll = now + self.poll_every
            return "poll"
        if now >= self.next_keepalive:
            self.next_keepalive = now + KEEPALIVE_SECONDS
            return "keepalive"
        return None


class EventStream:
    """The SSE messages of one execution's events, from `start` on, until it finishes, its
    lifetime ends or the server stops."""

    def __init__(self, service: Service, execution_id: str, start: int, slots: StreamSlots):
        self.service = service
        self.execution_id = execution_id
        self.sent = start
        self.slots = slots
        self._loop = asyncio.get_running_loop()
        limits = slots.limits
        self.schedule = _Schedule.starting(
            self._loop.time(), limits.poll_seconds, limits.lifetime_seconds
        )

    async def messages(self) -> AsyncIterator[str]:
        with self.service.feed.watch(self.execution_id) as watcher, self.slots.attending(watcher):
            execution, ending = await self._read()
            while True:
                for message in self._new_events(execution):
                    yield message
                if ending is not None:
                    yield ending
                    return
                execution, ending = await self._next(watcher, execution)

    async def _next(
        self, watcher: asyncio.Event, execution: Execution | None
    ) -> tuple[Execution | None, str | None]:
        """Wait for what comes next: a pushed change, a re-read, a keep-alive or the end."""
        while True:
            changed = await _changed_or_timeout(watcher, self.schedule.wait(self._loop.time()))
            watcher.clear()
            if self.slots.closing:
                return execution, _reconnect_message("the server is shutting down")
            if changed:
                return await self._read()
            due = self.schedule.due(self._loop.time())
            if due == "lifetime":
                return execution, _reconnect_message("the stream reached its lifetime")
            if due == "poll":
                return await self._read()
            if due == "keepalive":
                return execution, ": keep-alive\n\n"

    async def _read(self) -> tuple[Execution | None, str | None]:
        try:
            execution = await self.slots.read_together(
                self.execution_id, lambda: self.service.get_execution(self.execution_id)
            )
        except NotFound:
            return None, _end_message(None, "deleted")
        except BackendError as exc:
            return None, _end_message(None, f"store unavailable: {type(exc).__name__}")
        return execution, _ending_of(execution)

    def _new_events(self, execution: Execution | None) -> list[str]:
        if execution is None:
            return []
        fresh = execution.events[self.sent :]
        messages = [self._message(self.sent + offset, event) for offset, event in enumerate(fresh)]
        self.sent = max(self.sent, len(execution.events))
        if messages:
            self.schedule.next_keepalive = self._loop.time() + KEEPALIVE_SECONDS
        return messages

    @staticmethod
    def _message(index: int, event: object) -> str:
        out = EventOut.model_validate(event, from_attributes=True)
        return sse_message(out.model_dump_json(), message_id=index + 1)


def _ending_of(execution: Execution) -> str | None:
    return _end_message(execution, "finished") if execution.finished else None


def _resume_position(last_event_id: str) -> int:
    """The events to skip (the route's pattern has made it empty or 1 to 9 digits)."""
    return int(last_event_id) if last_event_id else 0


class HeldStream(StreamingResponse):
    """A streaming response that gives its stream slot back however it ends."""

    def __init__(self, slot: StreamSlot, content: AsyncIterator[str], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self.slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.slot.release()


_STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {EVENT_STREAM: {"schema": {"type": "string"}}},
        "description": "the event log, or a live stream of it",
    }
}


@router.get(
    "/{execution_id}/events",
    response_model=list[EventOut],
    responses=_STREAM_DOC | problems(404, 422, 429, 503),
)
async def execution_events(
    execution_id: ExecutionIdPath,
    request: Request,
    service: ServiceDep,
    last_event_id: Annotated[
        str, Header(description="resume a stream after this event", pattern=EVENT_ID_PATTERN)
    ] = "",
) -> list[EventOut] | Response:
    """The execution's event log; with `Accept: text/event-stream`, a live stream (429 when
    this token or this server has as many open streams as it may)."""
    start = _resume_position(last_event_id)
    execution = await service.get_execution(execution_id)
    if EVENT_STREAM not in request.headers.get("accept", ""):
        return [EventOut.of(event) for event in execution.events]
    slots: StreamSlots = request.app.state.event_streams
    slot = slots.acquire(holder_of(request.headers.get("authorization", "")))
    stream = EventStream(service, execution_id, start, slots)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return HeldStream(slot, stream.messages(), media_type=EVENT_STREAM, headers=headers)
