"""A small executor: `sublim up --executor sublim.examples.hello:node`.

`node` is built at import but connects to nothing until it runs.
"""

from __future__ import annotations

import asyncio

from sublim import ExecutionNodeBuilder, Task, TaskResult, TaskStatus


class Hello(Task):
    """Greets someone: the smallest useful task."""

    name: str = "world"

    async def execute(self) -> TaskResult:
        return TaskResult(status=TaskStatus.PASSED, data={"greeting": f"Hello, {self.name}!"})


class Sleep(Task):
    """Waits, to watch executions run."""

    seconds: float = 1.0

    async def execute(self) -> dict[str, float]:
        await asyncio.sleep(self.seconds)
        return {"slept": self.seconds}


class Fibonacci(Task):
    """CPU-bound work on the process pool."""

    pool = "process"
    n: int = 25

    def execute(self) -> dict[str, int]:
        return {"n": self.n, "fib": _fib(self.n)}


class Fail(Task):
    """Always raises: shows retries, then Failed, in the event log."""

    max_attempts = 2
    message: str = "failing by design"

    def execute(self) -> None:
        raise RuntimeError(self.message)


def _fib(n: int) -> int:
    return n if n < 2 else _fib(n - 1) + _fib(n - 2)


node = (
    ExecutionNodeBuilder(workers=4)
    .with_consumer(Hello)
    .with_consumer(Sleep)
    .with_consumer(Fibonacci)
    .with_consumer(Fail)
    .build()
)
