"""The long-running commands: `sublim up` and `sublim executor`."""

from __future__ import annotations

import asyncio
import importlib
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from rich.console import Console

from sublim.backends import broker_from_url
from sublim.config import Settings
from sublim.errors import ConfigError
from sublim.executor.node import ExecutionNode
from sublim.service import Service

console = Console()


def load_node(ref: str, broker_override: str | None = None) -> ExecutionNode:
    """Import `MODULE:NAME` (the current directory is importable) and return that node."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"expected MODULE:NODE, such as myapp.tasks:node, not {ref!r}")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        node = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load execution node {ref!r}: {exc}") from exc
    if not isinstance(node, ExecutionNode):
        raise ConfigError(f"{ref} is a {type(node).__name__}, not an ExecutionNode (call .build())")
    if broker_override:
        node.use_broker(broker_from_url(broker_override), owned=True)
    return node


def stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def serve_executor(node: ExecutionNode) -> None:
    await node.serve(stop_on_signals())


async def serve_up(settings: Settings, executor: str | None, *, demo: int = 0) -> None:
    """The service's background loops, an optional executor, and an optional demo run."""
    stop = stop_on_signals()
    async with Service.from_settings(settings) as service:
        loops: list[Coroutine[Any, Any, None]] = [
            service.consume_updates(stop), service.run_sweeper(stop)
        ]
        if executor:
            node = load_node(executor)
            node.use_broker(service.broker, owned=False)
            loops.append(node.serve(stop))
        console.print(f"[bold]sublim up[/bold] store={settings.store_url} broker={settings.broker_url}"
                      + (f" executor={executor}" if executor else ""))
        if demo:
            loops.append(_demo(service, demo))
        await asyncio.gather(*loops)


async def _demo(service: Service, count: int) -> None:
    from sublim.cli.demo import run_demo

    await run_demo(service, count)
