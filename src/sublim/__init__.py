"""Subliminal: a configurable task management system.

The public names: task types and their results (and what a task raises to retry or give
up), the executor builder, the core service and its settings, the HTTP API's clients, and the
root of the exception tree. They are imported on first use, so that `import sublim` (and every
`sublim` command) stays quick.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sublim.client import AsyncClient, Client
    from sublim.config import Settings
    from sublim.core.model import TaskResult, TaskStatus
    from sublim.core.service import Service
    from sublim.core.task import Fail, Retry, Task
    from sublim.errors import SublimError
    from sublim.executor.builder import ExecutionNodeBuilder
    from sublim.executor.node import ExecutionNode

_HOMES = {
    "AsyncClient": "sublim.client",
    "Client": "sublim.client",
    "ExecutionNode": "sublim.executor.node",
    "ExecutionNodeBuilder": "sublim.executor.builder",
    "Fail": "sublim.core.task",
    "Retry": "sublim.core.task",
    "Service": "sublim.core.service",
    "Settings": "sublim.config",
    "SublimError": "sublim.errors",
    "Task": "sublim.core.task",
    "TaskResult": "sublim.core.model",
    "TaskStatus": "sublim.core.model",
}

__all__ = [
    "AsyncClient",
    "Client",
    "ExecutionNode",
    "ExecutionNodeBuilder",
    "Fail",
    "Retry",
    "Service",
    "Settings",
    "SublimError",
    "Task",
    "TaskResult",
    "TaskStatus",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'sublim' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
