"""An execution node's control subscription is ephemeral: where claim answers are broadcast
(RabbitMQ, Pub/Sub), the engine deletes what a node that died left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from sublim.errors import Conflict
from tests.contract.broker_backends import amqp_broker, pubsub_broker


async def test_a_rabbitmq_ephemeral_subscription_expires_once_unused(tmp_path: Path) -> None:
    async with amqp_broker(tmp_path) as broker:
        await broker.ensure_subscription("Ephemeral", "Ephemeral-node-1", ephemeral=True)
        # RabbitMQ refuses to declare the queue again without its x-expires.
        with pytest.raises(Conflict, match="x-expires"):
            await broker.ensure_subscription("Ephemeral", "Ephemeral-node-1")


async def test_a_pubsub_ephemeral_subscription_keeps_little_and_expires(tmp_path: Path) -> None:
    pytest.importorskip("google.cloud.pubsub_v1")
    from sublim.broker.pubsub import PubSubBroker
    from sublim.engines.pubsub import get_subscription, subscription_path

    async with pubsub_broker(tmp_path) as broker:
        assert isinstance(broker, PubSubBroker)
        await broker.ensure_subscription("Ephemeral", "Ephemeral-node-1", ephemeral=True)
        path = subscription_path(broker.project, "Ephemeral-node-1")
        found = await get_subscription(broker._clients()[1], path)
    assert found is not None
    assert found.message_retention_duration.total_seconds() == 600
    assert found.expiration_policy.ttl.total_seconds() == 86_400
