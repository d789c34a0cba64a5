"""`create_app(service, settings)`: the FastAPI application over a `Service`.

Its lifespan opens the service and runs the service's background loops in this process:
the updates consumer (executors' updates pulled from the updates topic) and the sweeper.
Several replicas sharing a store may each run a sweeper: the core claims each execution it
republishes atomically in the store, so one execution is published by one of them only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from sublim.api import events, routes_executions, routes_ops, routes_tasks, updates
from sublim.api.auth import Authenticator, auth_dependencies
from sublim.api.hosts import LoopbackHostsOnly
from sublim.api.idempotency import IdempotencyCache
from sublim.api.limits import BodyLimit
from sublim.api.metrics import Metrics, RequestMetrics
from sublim.api.problems import PROBLEM_JSON, install_problem_handlers
from sublim.api.push_oidc import require_google_auth
from sublim.api.streams import StreamSlots
from sublim.config import Settings
from sublim.core.loops import Loop, Supervised, Sweeper, UpdatesConsumer, run_loops, start_loops
from sublim.core.service import Service

log = logging.getLogger("sublim.api")


def background_loops(service: Service) -> list[Loop]:
    """The service's loops this process runs, each started again after a failure: the
    sweeper, and the updates consumer unless updates are pushed to the API."""
    loops: list[Loop] = [Sweeper(service)]
    if service.settings.pull_updates:
        loops.append(UpdatesConsumer(service))
    return [Supervised(loop, log) for loop in loops]


async def run_background_loops(service: Service, stop: asyncio.Event) -> None:
    """The service's background loops (see `background_loops`), until `stop` is set."""
    await run_loops(background_loops(service), stop)


def _lifespan(service: Service, manage_service: bool) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not manage_service:
            yield
            return
        await service.open()
        loops = start_loops(background_loops(service))
        try:
            yield
        finally:
            await loops.stop()
            await service.close()

    return lifespan


def _problems_as_problem_json(schema: dict[str, Any]) -> dict[str, Any]:
    """Document error responses with the media type they are sent with."""
    for operation in (op for path in schema.get("paths", {}).values() for op in path.values()):
        for status, response in operation.get("responses", {}).items():
            content = response.get("content", {})
            if status[0] in "45" and "application/json" in content:
                content[PROBLEM_JSON] = content.pop("application/json")
    return schema


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, routes=app.routes, description=app.description
            )
            app.openapi_schema = _problems_as_problem_json(schema)
        return app.openapi_schema

    return openapi


def _include_routes(app: FastAPI, authenticator: Authenticator) -> None:
    guarded = list(auth_dependencies(authenticator))
    app.include_router(routes_tasks.router, dependencies=guarded)
    app.include_router(routes_executions.router, dependencies=guarded)
    app.include_router(events.router, dependencies=guarded)
    app.include_router(updates.router)
    app.include_router(routes_ops.router)


def create_app(service: Service, settings: Settings, *, manage_service: bool = True) -> FastAPI:
    """The HTTP API over `service`. With `manage_service` (the default) the app's lifespan
    opens and closes the service and runs its background loops; `sublim up`, which runs
    them itself, passes False. `ConfigError` if authentication is required without tokens,
    or if `push_audience` is set without google-auth (the `gcp` extra)."""
    authenticator = Authenticator.from_settings(settings)
    if settings.push_audience is not None:
        require_google_auth()
    metrics = Metrics()
    service.feed.listen(metrics.count_change)
    app = FastAPI(
        title="Subliminal",
        version="0.1.0",
        lifespan=_lifespan(service, manage_service),
        description="Tasks and their executions. Errors are application/problem+json.",
        redoc_url=None,
    )
    app.state.service = service
    app.state.settings = settings
    app.state.authenticator = authenticator
    app.state.metrics = metrics
    app.state.idempotency = IdempotencyCache(max_bytes=settings.idempotency_cache_bytes)
    app.state.event_streams = StreamSlots.from_settings(settings)
    install_problem_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=metrics)
    if not authenticator.required:
        app.add_middleware(LoopbackHostsOnly)  # outermost: before anything reads the request
    _include_routes(app, authenticator)
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    return app
