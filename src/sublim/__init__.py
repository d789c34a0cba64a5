"""Subliminal: a configurable task management system.

The public names: task types and their results, the executor builder, the core service and
its settings, the HTTP API's clients, and the root of the exception tree.
"""

from sublim.client import AsyncClient, Client
from sublim.config import Settings
from sublim.errors import SublimError
from sublim.executor.builder import ExecutionNodeBuilder
from sublim.executor.node import ExecutionNode
from sublim.model import TaskResult, TaskStatus
from sublim.service import Service
from sublim.task import Task

__all__ = [
    "AsyncClient",
    "Client",
    "ExecutionNode",
    "ExecutionNodeBuilder",
    "Service",
    "Settings",
    "SublimError",
    "Task",
    "TaskResult",
    "TaskStatus",
]
