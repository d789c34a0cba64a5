"""The peer harness's no-op job as a Subliminal task type: `sublim executor sublim_noop:node`.

The job is the harness's own `benchrec.noop_body(i, enq)` (timestamps at entry and exit, handed
to benchrec's in-process buffer that a thread pushes to Redis DB 15 every 10 ms), exactly as the
peers' jobs call it. `i` and `enq` (the producer's timestamp taken right before the enqueue
call) travel in the task's payload. It returns 1, so the execution ends Passed with result 1.

The node's broker is `SUBLIM_BROKER_URL` (set by `sys_sublim.Bench`); its worker slots are
`SUBLIM_BENCH_WORKERS` (default 16) on the async pool (the job is a coroutine).
"""

from __future__ import annotations

import os

import benchrec  # the harness's recorder: its folder is on the workers' PYTHONPATH

from sublim import ExecutionNodeBuilder, Task

TOPIC = "BenchNoop"
WORKERS = int(os.environ.get("SUBLIM_BENCH_WORKERS", "16"))


class BenchNoop(Task):
    """One harness job: record the timing, return 1."""

    i: int
    enq: float

    async def execute(self) -> int:
        return benchrec.noop_body(self.i, self.enq)


node = ExecutionNodeBuilder(workers=WORKERS, name="bench").with_consumer(BenchNoop).build()
