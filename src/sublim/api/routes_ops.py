"""Open operational routes: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from starlette.responses import Response

from sublim.api.deps import ServiceDep, problems
from sublim.api.metrics import Metrics
from sublim.api.problems import problem
from sublim.api.schemas import Health
from sublim.core.redaction import redact
from sublim.errors import BackendError

router = APIRouter(tags=["operations"])

READY_TIMEOUT_SECONDS = 2.0


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is alive (it answers)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses=problems(503))
async def readyz(service: ServiceDep) -> Health | Response:
    """The store and the broker answer; 503 while one does not."""
    try:
        await asyncio.wait_for(service.ping(), timeout=READY_TIMEOUT_SECONDS)
    except (BackendError, TimeoutError) as exc:
        detail = redact(f"not ready: {type(exc).__name__}: {exc}")
        return problem(503, detail, headers={"Retry-After": "2"})
    return Health(status="ready")


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "Prometheus text format",
        }
    },
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics of this process."""
    collected: Metrics = request.app.state.metrics
    return collected.render()
