"""What routes take from the app: the service, settings, and shared query parameters.

Dependencies are `async def`: FastAPI runs a plain `def` dependency (or a class's `__init__`)
in its thread pool, a thread hop on every request for what is an attribute read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request
from starlette.responses import JSONResponse, Response

from sublim.api.idempotency import REPLAYED_HEADER, IdempotencyCache, Produce, fingerprint_of
from sublim.api.ids import Ulid
from sublim.api.schemas import Problem
from sublim.core.model import TaskStatus
from sublim.core.service import Service
from sublim.store.base import MAX_PAGE, ExecutionQuery


async def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="items per page")]
Cursor = Annotated[Ulid | None, Query(description="next_cursor of the previous page")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1, max_length=255, description="retries with the same key get the first response"
    ),
]


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses (documented as problem+json)."""
    return {
        status: {"model": Problem, "description": HTTPStatus(status).phrase} for status in statuses
    }


def as_utc(moment: datetime | None) -> datetime | None:
    """A time without a zone is taken as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


class ExecutionFilters:
    """The filters of execution lists (query parameters: see `execution_filters`)."""

    def __init__(
        self,
        status: list[TaskStatus] | None = None,
        topic: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> None:
        self.statuses = frozenset(status or ())
        self.topic = topic
        self.created_after = as_utc(created_after)
        self.created_before = as_utc(created_before)
        self.limit = limit
        self.cursor = cursor

    def query(self, task_id: str | None = None) -> ExecutionQuery:
        return ExecutionQuery(
            task_id=task_id,
            topic=self.topic,
            statuses=self.statuses,
            limit=self.limit,
            created_after=self.created_after,
            created_before=self.created_before,
            cursor=self.cursor,
        )


async def execution_filters(
    status: Annotated[list[TaskStatus], Query(description="repeatable")] = [],  # noqa: B006
    topic: str | None = None,
    created_after: Annotated[datetime | None, Query(description="inclusive")] = None,
    created_before: Annotated[datetime | None, Query(description="exclusive")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> ExecutionFilters:
    """The filters of execution lists, as query parameters."""
    return ExecutionFilters(status, topic, created_after, created_before, limit, cursor)


ExecutionFiltersDep = Annotated[ExecutionFilters, Depends(execution_filters)]


async def idempotent(
    request: Request, key: str | None, body: Callable[[], str], produce: Produce
) -> Response:
    """Run `produce` once per Idempotency-Key (per token, method and path); `body` gives
    the request's fingerprint, computed only when a key is sent."""
    if key is None:
        status, content = await produce()
        return json_response(content, status)
    cache: IdempotencyCache = request.app.state.idempotency
    who = request.headers.get("authorization", "")
    cache_key = fingerprint_of(who, request.method, request.url.path, key)
    outcome = await cache.run(cache_key, fingerprint_of(body()), produce)
    headers = {REPLAYED_HEADER: "true"} if outcome.replayed else {}
    return Response(
        outcome.content, status_code=outcome.status, headers=headers, media_type="application/json"
    )


def json_response(content: bytes | Any, status: int = 200) -> Response:
    """`content` (JSON bytes, or a value Starlette's JSONResponse encodes) as a response."""
    if isinstance(content, bytes):
        return Response(content, status_code=status, media_type="application/json")
    return JSONResponse(content, status_code=status)
