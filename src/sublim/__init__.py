"""Subliminal: a configurable task management system.

The public names: task types and their results, the executor builder, the core service and
its settings, and the root of the exception tree.
"""

from sublim.config import Settings
from sublim.errors import SublimError
from sublim.executor.builder import ExecutionNodeBuilder
from sublim.executor.node import ExecutionNode
from sublim.model import TaskResult, TaskStatus
from sublim.service import Service
from sublim.task import Task

__all__ = [
    "ExecutionNode",
    "ExecutionNodeBuilder",
    "Service",
    "Settings",
    "SublimError",
    "Task",
    "TaskResult",
    "TaskStatus",
]
