"""The task type of tests/e2e/test_publish_crash.py, in executor nodes of one worker each: a
node takes one request at a time, so two copies of one request, where two exist, go to two
nodes. Runs are recorded as the chaos tasks record theirs (tests/chaos/tasks.py), start and
end, with the process and the time."""

from __future__ import annotations

from sublim import ExecutionNodeBuilder
from tests.chaos.tasks import ChaosAsync

NODE = "tests.e2e.crash_tasks:node"


class Solo(ChaosAsync):
    """Sleeps `ms` milliseconds on the event loop, recording when it starts and ends."""


node = ExecutionNodeBuilder(workers=1).with_consumer(Solo).build()
