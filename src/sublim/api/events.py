"""GET /v1/executions/{id}/events: the event log, or with `Accept: text/event-stream` a live
stream of the events as they are recorded, which ends when the execution finishes.

The stream wakes on the service's in-process `ChangeFeed` and also re-reads the store every
`POLL_SECONDS`, so that changes recorded by another process (another API replica) arrive
too. Each event is an SSE message whose `id` is its position in the log: a client that
reconnects with `Last-Event-ID` resumes after it. The last message is `event: end`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from starlette.responses import Response, StreamingResponse

from sublim.api.deps import ServiceDep, problems
from sublim.api.schemas import EventOut
from sublim.errors import BackendError, NotFound
from sublim.model import Execution
from sublim.service import Service

router = APIRouter(prefix="/v1/executions", tags=["executions"])

EVENT_STREAM = "text/event-stream"
POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0


def sse_message(data: str, *, event: str | None = None, message_id: int | None = None) -> str:
    lines = [f"event: {event}"] if event else []
    if message_id is not None:
        lines.append(f"id: {message_id}")
    lines.append(f"data: {data}")
    return "\n".join(lines) + "\n\n"


def _end_message(execution: Execution | None, why: str) -> str:
    status = execution.status.value if execution else None
    return sse_message(json.dumps({"status": status, "reason": why}), event="end")


async def _changed_or_timeout(changed: asyncio.Event, seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(changed.wait(), timeout=seconds)
        return True
    return False


class EventStream:
    """The SSE messages of one execution's events, from `start` on, until it finishes."""

    def __init__(self, service: Service, execution_id: str, start: int) -> None:
        self.service = service
        self.execution_id = execution_id
        self.sent = start
        self.idle = 0.0

    async def messages(self) -> AsyncIterator[str]:
        with self.service.feed.watch(self.execution_id) as changed:
            while True:
                changed.clear()
                execution, ending = await self._read()
                for message in self._new_events(execution):
                    yield message
                if ending is not None:
                    yield ending
                    return
                if await self._keepalive_due(changed):
                    yield ": keep-alive\n\n"

    async def _read(self) -> tuple[Execution | None, str | None]:
        try:
            execution = await self.service.get_execution(self.execution_id)
        except NotFound:
            return None, _end_message(None, "deleted")
        except BackendError as exc:
            return None, _end_message(None, f"store unavailable: {type(exc).__name__}")
        return execution, _end_message(execution, "finished") if execution.finished else None

    def _new_events(self, execution: Execution | None) -> list[str]:
        if execution is None:
            return []
        fresh = execution.events[self.sent :]
        messages = [self._message(self.sent + offset, event) for offset, event in enumerate(fresh)]
        self.sent = max(self.sent, len(execution.events))
        return messages

    @staticmethod
    def _message(index: int, event: object) -> str:
        out = EventOut.model_validate(event, from_attributes=True)
        return sse_message(out.model_dump_json(), message_id=index + 1)

    async def _keepalive_due(self, changed: asyncio.Event) -> bool:
        if await _changed_or_timeout(changed, POLL_SECONDS):
            self.idle = 0.0
            return False
        self.idle += POLL_SECONDS
        if self.idle < KEEPALIVE_SECONDS:
            return False
        self.idle = 0.0
        return True


def _resume_position(last_event_id: str | None) -> int:
    return int(last_event_id) if last_event_id and last_event_id.isdigit() else 0


_STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {EVENT_STREAM: {"schema": {"type": "string"}}},
        "description": "the event log, or a live stream of it",
    }
}


@router.get(
    "/{execution_id}/events",
    response_model=list[EventOut],
    responses=_STREAM_DOC | problems(404, 503),
)
async def execution_events(
    execution_id: str,
    request: Request,
    service: ServiceDep,
    last_event_id: Annotated[
        str | None, Header(description="resume a stream after this event")
    ] = None,
) -> list[EventOut] | Response:
    """The execution's event log; with `Accept: text/event-stream`, a live stream."""
    execution = await service.get_execution(execution_id)
    if EVENT_STREAM not in request.headers.get("accept", ""):
        return [EventOut.of(event) for event in execution.events]
    stream = EventStream(service, execution_id, _resume_position(last_event_id))
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream.messages(), media_type=EVENT_STREAM, headers=headers)
