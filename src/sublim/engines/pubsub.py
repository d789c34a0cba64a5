"""Pub/Sub resources as Subliminal lays them out, created idempotently.

Shared by the `pubsub://` broker (which creates what its consumers need on the fly) and
`sublim gcp provision` (which creates everything up front, as the original's recipe did):

- a topic per task type, and the updates topic;
- a pull subscription per consumer, with exactly-once delivery and a dead-letter policy whose
  topic is `<subscription>-dlq`; a subscription of the same name on that topic keeps the dead
  letters (Pub/Sub drops what a topic without subscriptions receives);
- message ordering on the pull subscriptions of topics whose messages carry ordering keys
  (not on the push subscription: see `PushSpec`);
- optionally, a push subscription of the updates topic to the API's /task_execution_update.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from google.api_core import exceptions as gexc
from google.protobuf import duration_pb2
from google.pubsub_v1 import PublisherAsyncClient, SubscriberAsyncClient
from google.pubsub_v1.types import (
    DeadLetterPolicy,
    ExpirationPolicy,
    PushConfig,
    RetryPolicy,
    Subscription,
    Topic,
)

#: Deliveries after which a message is moved to the dead-letter topic (Pub/Sub: 5 to 100).
DEFAULT_MAX_DELIVERIES = 100
#: The ack deadline a new pull subscription gets: the default lease of `sublim executor`.
DEFAULT_ACK_DEADLINE = 30
#: A push subscription waits this long for the endpoint's answer.
PUSH_ACK_DEADLINE = 30
#: Pub/Sub's bounds.
MIN_ACK_DEADLINE, MAX_ACK_DEADLINE = 10, 600
MIN_MAX_DELIVERIES, MAX_MAX_DELIVERIES = 5, 100
DEAD_LETTER_SUFFIX = "-dlq"


def topic_path(project: str, topic: str) -> str:
    return f"projects/{project}/topics/{topic}"


def subscription_path(project: str, subscription: str) -> str:
    return f"projects/{project}/subscriptions/{subscription}"


def short_name(path: str) -> str:
    """`projects/P/topics/T` → `T`."""
    return path.rsplit("/", 1)[-1]


def dead_letter_name(subscription: str) -> str:
    return f"{subscription}{DEAD_LETTER_SUFFIX}"


@dataclass(frozen=True, slots=True)
class PullSpec:
    """A pull subscription as Subliminal creates it."""

    project: str
    topic: str
    subscription: str
    max_deliveries: int = DEFAULT_MAX_DELIVERIES
    ack_deadline: int = DEFAULT_ACK_DEADLINE
    ordered: bool = False
    #: One process's subscription (a node's control subscription): Pub/Sub's shortest
    #: retention (10 min) and expiry (1 day idle), so a node that died leaves little behind.
    ephemeral: bool = False

    def resource(self) -> Subscription:
        subscription = Subscription(
            name=subscription_path(self.project, self.subscription),
            topic=topic_path(self.project, self.topic),
            ack_deadline_seconds=self.ack_deadline,
            enable_exactly_once_delivery=True,
            enable_message_ordering=self.ordered,
            dead_letter_policy=_dead_letter_policy(
                self.project, self.subscription, self.max_deliveries
            ),
        )
        if self.ephemeral:
            subscription.message_retention_duration = duration_pb2.Duration(seconds=600)
            subscription.expiration_policy = ExpirationPolicy(
                ttl=duration_pb2.Duration(seconds=86_400)
            )
        return subscription


@dataclass(frozen=True, slots=True)
class PushSpec:
    """The push subscription of the updates topic to the API's route."""

    project: str
    topic: str
    subscription: str
    endpoint: str
    service_account: str | None = None
    audience: str | None = None
    max_deliveries: int = DEFAULT_MAX_DELIVERIES

    def resource(self) -> Subscription:
        return Subscription(
            name=subscription_path(self.project, self.subscription),
            topic=topic_path(self.project, self.topic),
            ack_deadline_seconds=PUSH_ACK_DEADLINE,
            push_config=self._push_config(),
            # No ordering: an update whose push keeps failing would hold up every later
            # update of its execution until dead-lettered (and the emulator then never
            # dead-letters it); the store orders updates by (attempt, seq) anyway.
            enable_message_ordering=False,
            retry_policy=RetryPolicy(
                minimum_backoff=duration_pb2.Duration(seconds=1),
                maximum_backoff=duration_pb2.Duration(seconds=60),
            ),
            dead_letter_policy=_dead_letter_policy(
                self.project, self.subscription, self.max_deliveries
            ),
        )

    def _push_config(self) -> PushConfig:
        if self.service_account is None:
            return PushConfig(push_endpoint=self.endpoint)
        token = PushConfig.OidcToken(
            service_account_email=self.service_account, audience=self.audience or ""
        )
        return PushConfig(push_endpoint=self.endpoint, oidc_token=token)


def _dead_letter_policy(project: str, subscription: str, max_deliveries: int) -> DeadLetterPolicy:
    return DeadLetterPolicy(
        dead_letter_topic=topic_path(project, dead_letter_name(subscription)),
        max_delivery_attempts=max_deliveries,
    )


async def ensure_topic(publisher: PublisherAsyncClient, path: str) -> bool:
    """Create the topic; False if it existed."""
    try:
        await publisher.create_topic(request=Topic(name=path))
        return True
    except gexc.AlreadyExists:
        return False


async def get_subscription(subscriber: SubscriberAsyncClient, path: str) -> Subscription | None:
    try:
        return await subscriber.get_subscription(subscription=path)
    except gexc.NotFound:
        return None


async def create_subscription(
    subscriber: SubscriberAsyncClient, resource: Subscription
) -> tuple[Subscription, bool]:
    """Create the subscription; if it exists, the existing one. True if created."""
    try:
        return await subscriber.create_subscription(request=resource), True
    except gexc.AlreadyExists:
        existing = await get_subscription(subscriber, resource.name)
        if existing is None:  # deleted in between: try once more
            return await subscriber.create_subscription(request=resource), True
        return existing, False


class PubSubAdmin:
    """Creates Subliminal's resources in one project, idempotently. Each method answers, by
    resource path, whether it was created (True) or found (False)."""

    def __init__(
        self, publisher: PublisherAsyncClient, subscriber: SubscriberAsyncClient, project: str
    ) -> None:
        self.publisher = publisher
        self.subscriber = subscriber
        self.project = project

    async def topic(self, name: str) -> dict[str, bool]:
        path = topic_path(self.project, name)
        return {path: await ensure_topic(self.publisher, path)}

    async def dead_letters(self, subscription: str) -> dict[str, bool]:
        """The dead-letter topic of `subscription` and the subscription that keeps its letters."""
        name = dead_letter_name(subscription)
        created = await self.topic(name)
        keeper = Subscription(
            name=subscription_path(self.project, name), topic=topic_path(self.project, name)
        )
        _, made = await create_subscription(self.subscriber, keeper)
        return created | {keeper.name: made}

    async def subscription(self, resource: Subscription) -> tuple[Subscription, dict[str, bool]]:
        """The subscription, its topic and its dead letters; the subscription as it exists."""
        created = await self.topic(short_name(resource.topic))
        created |= await self.dead_letters(short_name(resource.name))
        existing, made = await create_subscription(self.subscriber, resource)
        return existing, created | {resource.name: made}

    async def delete_subscription(self, subscription: str) -> None:
        """Delete the subscription, its dead-letter keeper and topic; what is gone is skipped."""
        dead_letters = dead_letter_name(subscription)
        for name in (subscription, dead_letters):
            with contextlib.suppress(gexc.NotFound):
                await self.subscriber.delete_subscription(
                    subscription=subscription_path(self.project, name)
                )
        with contextlib.suppress(gexc.NotFound):
            await self.publisher.delete_topic(topic=topic_path(self.project, dead_letters))
