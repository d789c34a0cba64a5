"""The event loop of a serving process (`sublim up`, `api`, `executor`, `datastore`, and
`ExecutionNode.run`): uvloop where it is installed, which costs the API and the executor less
CPU per execution than the standard loop (bench/README.md, "Event loop"), or asyncio's own.

`auto` takes uvloop when it imports (sublim depends on it through `uvicorn[standard]` on
Linux and macOS; not on Windows, where asyncio's loop runs); `uvloop` requires it;
`asyncio` never uses it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from sublim.config import EventLoopKind
from sublim.errors import ConfigError

T = TypeVar("T")

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def loop_factory(kind: EventLoopKind) -> LoopFactory | None:
    """The factory of the loop `kind` names; None for asyncio's default."""
    if kind == "asyncio":
        return None
    try:
        import uvloop
    except ImportError as exc:
        if kind == "uvloop":
            raise ConfigError("event_loop=uvloop, but uvloop is not installed") from exc
        return None
    factory: LoopFactory = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T], kind: EventLoopKind = "auto") -> T:
    """`asyncio.run(main)` on the loop `kind` names."""
    with asyncio.Runner(loop_factory=loop_factory(kind)) as runner:
        return runner.run(main)
