"""Prometheus metrics, on a registry of the app's own (never the global one).

- `sublim_http_requests_total{method,route,status}` and
  `sublim_http_request_duration_seconds{method,route}`: routes by template, so ids do not
  multiply the series;
- `sublim_execution_events_total{status}`: status transitions this process recorded;
- `sublim_updates_received_total{route,outcome}`: updates ingested by the push route.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sublim.core.model import Change

UNMATCHED = "unmatched"
#: Label sets whose children `observe` keeps at hand (route templates are few; methods are
#: the client's, so past this many the labels are looked up each time).
MAX_CACHED_LABEL_SETS = 1024


class Metrics:
    """The API's collectors, registered on `registry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "sublim_http_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "sublim_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
        )
        self.execution_events = Counter(
            "sublim_execution_events",
            "execution status transitions recorded",
            ["status"],
            registry=self.registry,
        )
        self.updates = Counter(
            "sublim_updates_received",
            "execution updates ingested",
            ["route", "outcome"],
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def count_change(self, change: Change) -> None:
        """A `ChangeFeed` listener: one count per recorded transition."""
        for event in change.new_events:
            self.execution_events.labels(status=event.status.value).inc()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        count, latency = self._children_of(method, route, status)
        count.inc()
        latency.observe(seconds)

    def _children_of(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        """The labelled counter and histogram of a request (`labels()` costs ~8 µs each)."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(method=method, route=route, status=str(status)),
                self.latency.labels(method=method, route=route),
            )
            if len(self._children) < MAX_CACHED_LABEL_SETS:
                self._children[key] = children
        return children

    def render(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class RequestMetrics:
    """Pure ASGI middleware that counts and times each request by route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.observe(scope["method"], route_template(scope), status, elapsed)
