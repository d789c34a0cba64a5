"""`sublim gcp provision`: the original's recipe of cloud commands, as one idempotent call.

Creates in one project, against Pub/Sub or its emulator (`PUBSUB_EMULATOR_HOST`):
- the updates topic;
- per task type, the topic `<Topic>` and its pull subscription `<Topic>-sub` (exactly-once
  delivery, dead letters to `<Topic>-sub-dlq` after `max_deliveries`);
- with a push endpoint, the push subscription `<updates topic>-push` to it (OIDC token when
  a service account is given, dead letters to `<updates topic>-push-dlq`, no ordering);
and nothing else. What exists is left as it is (and reported as found).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from google.pubsub_v1 import PublisherAsyncClient, SubscriberAsyncClient

from sublim.config import DEFAULT_UPDATES_TOPIC
from sublim.engines.pubsub import (
    DEFAULT_ACK_DEADLINE,
    DEFAULT_MAX_DELIVERIES,
    PubSubAdmin,
    PullSpec,
    PushSpec,
)

PUSH_SUFFIX = "-push"
_SECRET_QUERY = re.compile(r"(token=)[^&]+")


@dataclass(frozen=True)
class Plan:
    """What to provision."""

    project: str
    task_topics: tuple[str, ...] = ()
    updates_topic: str = DEFAULT_UPDATES_TOPIC
    push_endpoint: str | None = None
    push_service_account: str | None = None
    push_audience: str | None = None
    max_deliveries: int = DEFAULT_MAX_DELIVERIES
    ack_deadline: int = DEFAULT_ACK_DEADLINE

    @property
    def push_subscription(self) -> str:
        return f"{self.updates_topic}{PUSH_SUFFIX}"

    def pull_specs(self) -> list[PullSpec]:
        return [
            PullSpec(
                self.project,
                topic,
                f"{topic}-sub",
                max_deliveries=self.max_deliveries,
                ack_deadline=self.ack_deadline,
            )
            for topic in self.task_topics
        ]

    @property
    def oidc_audience(self) -> str | None:
        """The audience of push tokens: as given, else the endpoint (Pub/Sub's default)."""
        if self.push_service_account is None:
            return None
        return self.push_audience or self.push_endpoint

    def push_spec(self) -> PushSpec | None:
        if self.push_endpoint is None:
            return None
        return PushSpec(
            self.project,
            self.updates_topic,
            self.push_subscription,
            self.push_endpoint,
            service_account=self.push_service_account,
            audience=self.oidc_audience,
            max_deliveries=self.max_deliveries,
        )


@dataclass
class Report:
    """Each resource path, and whether it was created (True) or found (False); notes."""

    resources: dict[str, bool] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def record(self, resources: dict[str, bool]) -> None:
        """Add what one step found or created (created by any step stays created)."""
        for path, created in resources.items():
            self.resources[path] = self.resources.get(path, False) or created


def without_secrets(url: str) -> str:
    """An endpoint fit to print: `?token=…` masked."""
    return _SECRET_QUERY.sub(r"\1***", url)


async def provision(plan: Plan) -> Report:
    publisher, subscriber = PublisherAsyncClient(), SubscriberAsyncClient()
    try:
        return await _provision(PubSubAdmin(publisher, subscriber, plan.project), plan)
    finally:
        await publisher.transport.close()  # type: ignore[no-untyped-call]
        await subscriber.transport.close()  # type: ignore[no-untyped-call]


async def _provision(admin: PubSubAdmin, plan: Plan) -> Report:
    report = Report(await admin.topic(plan.updates_topic))
    for spec in plan.pull_specs():
        _, created = await admin.subscription(spec.resource())
        report.record(created)
    push = plan.push_spec()
    if push is not None:
        await _provision_push(admin, push, report)
    return report


async def _provision_push(admin: PubSubAdmin, push: PushSpec, report: Report) -> None:
    existing, created = await admin.subscription(push.resource())
    report.record(created)
    endpoint = existing.push_config.push_endpoint
    if endpoint != push.endpoint:
        report.notes.append(
            f"{existing.name} exists and pushes to {without_secrets(endpoint) or '(pull)'}, "
            f"not {without_secrets(push.endpoint)}: left as it is"
        )
