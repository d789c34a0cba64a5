"""pull_updates=False: updates come by push only, so no pull subscription is made for them."""

from __future__ import annotations

import pytest

from sublim.broker.memory import MemoryBroker
from sublim.config import Settings
from sublim.core.service import Service
from sublim.errors import BrokerError
from sublim.store.memory import MemoryStore


async def test_a_service_that_pulls_updates_subscribes_to_the_updates_topic() -> None:
    broker = MemoryBroker.from_url("memory://")
    async with Service(MemoryStore(), broker, Settings(pull_updates=True)):
        assert await broker.pull("TaskExecutionUpdates-sub", 1, lease=1.0, wait=0) == []


async def test_a_service_whose_updates_are_pushed_makes_no_updates_subscription() -> None:
    broker = MemoryBroker.from_url("memory://")
    async with Service(MemoryStore(), broker, Settings(pull_updates=False)) as service:
        await service.ping()
        with pytest.raises(BrokerError):
            await broker.pull("TaskExecutionUpdates-sub", 1, lease=1.0, wait=0)
