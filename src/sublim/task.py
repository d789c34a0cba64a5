"""`Task`: the base class of user task types.

A task type is a pydantic model whose fields are the payload, with an ``execute`` method (sync
or async). Its policy is written as class variables::

    class Thumbnail(Task):
        topic = "thumbnails"          # default: the class name
        max_attempts = 5              # default: the settings' max_attempts
        pool = "process"              # "async", "thread" or "process"; default by execute's kind

        url: str
        width: int = 256

        def execute(self) -> TaskResult: ...
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

PoolKind = Literal["async", "thread", "process"]
POOL_KINDS: tuple[PoolKind, ...] = ("async", "thread", "process")


class Task(BaseModel):
    """Base class of task types: fields are the payload, ``execute`` is the work."""

    model_config = ConfigDict(extra="forbid")

    topic: ClassVar[str] = "Task"
    max_attempts: ClassVar[int | None] = None
    time_limit: ClassVar[float | None] = None
    pool: ClassVar[PoolKind | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "topic" not in cls.__dict__:
            cls.topic = cls.__name__
        if cls.pool is not None and cls.pool not in POOL_KINDS:
            raise TypeError(f"{cls.__name__}.pool must be one of {POOL_KINDS}, not {cls.pool!r}")

    def execute(self) -> Any:
        """Do the work. Return a `TaskResult`, or any JSON value (meaning Passed with that
        data); raise to fail the attempt."""
        raise NotImplementedError(f"{type(self).__name__}.execute is not implemented")

    @classmethod
    def is_async(cls) -> bool:
        return inspect.iscoroutinefunction(cls.execute)

    @classmethod
    def pool_kind(cls) -> PoolKind:
        if cls.pool is not None:
            return cls.pool
        return "async" if cls.is_async() else "thread"
