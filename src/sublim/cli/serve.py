"""The long-running commands: `sublim up`, `sublim api` and `sublim executor`."""

from __future__ import annotations

import asyncio
import importlib
import math
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from rich.console import Console

from sublim.api.app import create_app, run_background_loops
from sublim.api.http_server import GracefulServer, head_limited_protocol
from sublim.config import Settings
from sublim.core.backends import broker_from_url
from sublim.core.redaction import redact
from sublim.core.service import Service
from sublim.core.shutdown import stop_on_signals
from sublim.errors import ConfigError
from sublim.executor.node import ExecutionNode

console = Console()


def load_node(ref: str, broker_override: str | None = None) -> ExecutionNode:
    """Import `MODULE:NAME` and return that node. The current directory is importable, last
    on `sys.path`: a module there never shadows the standard library or an installed package."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"expected MODULE:NODE, such as myapp.tasks:node, not {ref!r}")
    if str(Path.cwd()) not in sys.path:
        sys.path.append(str(Path.cwd()))
    try:
        node = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load execution node {ref!r}: {exc}") from exc
    if not isinstance(node, ExecutionNode):
        raise ConfigError(f"{ref} is a {type(node).__name__}, not an ExecutionNode (call .build())")
    if broker_override:
        node.use_broker(broker_from_url(broker_override), owned=True)
    return node


async def serve_executor(node: ExecutionNode) -> None:
    await node.serve(stop_on_signals())


def api_url(settings: Settings) -> str:
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"http://{host}:{settings.port}"


def http_server(app: FastAPI, settings: Settings) -> uvicorn.Server:
    """A uvicorn server for `app`, logging through our handlers (access log only at DEBUG),
    with the limits of docs/decisions/023: head size and time, connections, shutdown time."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=settings.log_level == "DEBUG",
        lifespan="on",
        server_header=False,
        http=head_limited_protocol(settings.max_header_bytes, settings.header_timeout_seconds),
        h11_max_incomplete_event_size=settings.max_header_bytes,
        limit_concurrency=settings.max_connections,
        timeout_graceful_shutdown=math.ceil(settings.http_shutdown_seconds),
    )
    return GracefulServer(config, on_shutdown=app.state.event_streams.end_all)


async def serve_api(settings: Settings) -> None:
    """`sublim api`: the HTTP API, whose lifespan runs the updates consumer and the sweeper."""
    app = create_app(Service.from_settings(settings), settings)
    url = api_url(settings)
    console.print(f"[bold]sublim api[/bold] {url}  docs: {url}/docs")
    await http_server(app, settings).serve()


async def _serve_until_stopped(server: uvicorn.Server, stop: asyncio.Event) -> None:
    """Serve until `stop` is set; a server that stops by itself (a signal) sets `stop`."""

    async def stop_server() -> None:
        await stop.wait()
        server.should_exit = True

    stopper = asyncio.create_task(stop_server())
    try:
        await server.serve()
    finally:
        stop.set()
        await stopper


async def serve_up(settings: Settings, executor: str | None, *, demo: int = 0) -> None:
    """The API, the service's background loops, an optional executor and an optional demo,
    in one process and one event loop."""
    stop = stop_on_signals()
    async with Service.from_settings(settings) as service:
        server = http_server(create_app(service, settings, manage_service=False), settings)
        loops: list[Coroutine[Any, Any, None]] = [
            run_background_loops(service, stop),
            _serve_until_stopped(server, stop),
        ]
        if executor:
            node = load_node(executor)
            node.use_broker(service.broker, owned=False)
            loops.append(node.serve(stop))
        _print_up(settings, executor)
        if demo:
            loops.append(_demo(service, demo))
        await asyncio.gather(*loops)


def _print_up(settings: Settings, executor: str | None) -> None:
    url = api_url(settings)
    console.print(
        f"[bold]sublim up[/bold] store={redact(settings.effective_store_url)} "
        f"broker={redact(settings.broker_url)}" + (f" executor={executor}" if executor else "")
    )
    console.print(f"  API  {url}\n  docs {url}/docs")


async def _demo(service: Service, count: int) -> None:
    from sublim.cli.demo import run_demo

    await run_demo(service, count)
