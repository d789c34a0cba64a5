"""The task type of tests/e2e/test_publish_crash.py, in executor nodes of one worker each: a
node takes one request at a time, so two copies of one request, where two exist, go to two
nodes. Runs are recorded as the chaos tasks record theirs (tests/chaos/tasks.py), start and
end, with the process and the time."""

from __future__ import annotations

import asyncio
import uuid

from sublim import ExecutionNodeBuilder, Task
from tests.chaos.tasks import record

NODE = "tests.e2e.crash_tasks:node"


class Solo(Task):
    """Sleeps `ms` milliseconds on the event loop, recording when it starts and ends."""

    n: int
    ms: int

    async def execute(self) -> dict[str, int]:
        run = uuid.uuid4().hex[:12]
        record("start", self.n, run)
        await asyncio.sleep(self.ms / 1000)
        record("end", self.n, run)
        return {"n": self.n}


node = ExecutionNodeBuilder(workers=1).with_consumer(Solo).build()
