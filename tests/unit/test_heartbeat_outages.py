"""A running attempt keeps its lease through a passing broker outage: a heartbeat that fails
to extend the lease is tried again at the next beat, instead of ending the heartbeat (which
would let the lease pass under a live worker, and the request run twice at once)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sublim import Task, TaskStatus
from sublim.config import Settings
from sublim.errors import BrokerError
from sublim.testing import Harness

S = TaskStatus
RUNS: list[str] = []


class OutlivesItsLease(Task):
    """Runs for three leases, so only heartbeats keep it from being delivered again."""

    key: str

    async def execute(self) -> None:
        RUNS.append(self.key)
        await asyncio.sleep(1.5)


def settings() -> Settings:
    return Settings(
        store_url="memory://",
        broker_url="memory://",
        lease_seconds=0.5,
        heartbeat_seconds=0.1,
        max_attempts=3,
    )


async def test_an_attempt_keeps_its_lease_after_one_extension_fails() -> None:
    async with Harness(OutlivesItsLease, settings=settings()) as harness:
        extend = harness.broker.extend
        calls: list[int] = []

        async def fails_once(
            subscription: str, receipts: Sequence[str], *, lease: float
        ) -> set[str]:
            calls.append(len(calls))
            if len(calls) == 1:
                raise BrokerError("broker unreachable for a moment")
            return await extend(subscription, receipts, lease=lease)

        harness.broker.extend = fails_once  # type: ignore[method-assign]
        execution = await harness.enqueue(OutlivesItsLease(key="one"))
        await harness.run_until_idle(timeout=10)
        done = await harness.get(execution.id)
    assert RUNS.count("one") == 1
    assert (done.status, done.attempt) == (S.PASSED, 1)
    assert len(calls) > 5
