"""Pure helpers of the RabbitMQ broker: names and arguments of its exchanges and queues, delay
buckets, the delivery count a message carries, and the options its URL takes.

Layout, for a topic T and a subscription S of it:

- exchange `T` (fanout, durable): what is published on T;
- queue `S` (quorum, durable), bound to `T`; its dead letters go to exchange `T.dlx` with
  routing key `S`, at least once; its delivery limit dead-letters a poison message;
- exchange `T.dlx` (direct, durable) and queue `S.dlq` (quorum) bound to it with key `S`;
- queues `S.delay.<ms>ms` (quorum), one per delay in use: a message nacked with a delay waits
  there for its TTL, then is dead-lettered back to `S` through the default exchange. A delay
  queue deletes itself once unused for a while.

Declaring `S` names its topic through its dead-letter exchange, an argument RabbitMQ compares
on every declaration: moving a subscription to another topic fails with PRECONDITION_FAILED.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sublim.broker._shared import UrlOptions
from sublim.broker.base import check_name
from sublim.errors import InvalidInput

#: Deliveries a message had before a delayed nack sent it through a delay queue.
PRIOR_DELIVERIES_HEADER = "x-sublim-deliveries"
#: Set by quorum queues: how many times this message was returned to the queue.
DELIVERY_COUNT_HEADER = "x-delivery-count"
#: Headers RabbitMQ or this broker add: never part of a message's attributes.
_RESERVED_HEADER_PREFIXES = (
    DELIVERY_COUNT_HEADER,
    PRIOR_DELIVERIES_HEADER,
    "x-death",
    "x-first-death-",
    "x-last-death-",
)
#: A delay queue unused this long after its TTL passes deletes itself (its messages are gone
#: by then: each one waits at most the TTL).
DELAY_QUEUE_IDLE_MS = 120_000
#: Declare a delay queue again after this many seconds, which keeps it from expiring.
DELAY_QUEUE_REDECLARE_SECONDS = 60.0

DEFAULT_DELIVERY_LIMIT = 20
DEFAULT_RECONNECT_INTERVAL = 1.0
DEFAULT_OUTAGE_TIMEOUT = 30.0

_CURRENT_DEAD_LETTER_EXCHANGE = re.compile(r"current is '(?P<exchange>.*)\.dlx'")


def check_amqp_name(kind: str, name: str) -> str:
    """The common name rule, and no `amq.` prefix, which RabbitMQ reserves."""
    check_name(kind, name)
    if name.lower().startswith("amq."):
        raise InvalidInput(f"invalid {kind} name {name!r}: RabbitMQ reserves the 'amq.' prefix")
    return name


def dead_letter_exchange(topic: str) -> str:
    return f"{topic}.dlx"


def dead_letter_queue(subscription: str) -> str:
    return f"{subscription}.dlq"


def delay_queue(subscription: str, delay_ms: int) -> str:
    return f"{subscription}.delay.{delay_ms}ms"


def subscription_arguments(topic: str, subscription: str, delivery_limit: int) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": dead_letter_exchange(topic),
        "x-dead-letter-routing-key": subscription,
        # At-least-once dead-lettering needs the reject-publish overflow mode.
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def dead_letter_queue_arguments() -> dict[str, Any]:
    return {"x-queue-type": "quorum"}


def delay_queue_arguments(subscription: str, delay_ms: int) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-message-ttl": delay_ms,
        "x-expires": delay_ms + DELAY_QUEUE_IDLE_MS,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": subscription,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def delay_bucket_ms(delay: float) -> int:
    """The delay in milliseconds, rounded up to two significant digits: never early, at most
    10 % late, and few distinct delay queues."""
    milliseconds = max(1, math.ceil(delay * 1000))
    step = int(10 ** max(0, len(str(milliseconds)) - 2))
    return math.ceil(milliseconds / step) * step


def deliveries_of(headers: Mapping[str, Any]) -> int:
    """1 on the first delivery: the deliveries before a delayed nack, plus the returns to the
    queue counted by RabbitMQ since, plus this one."""
    prior = int(headers.get(PRIOR_DELIVERIES_HEADER) or 0)
    returned = int(headers.get(DELIVERY_COUNT_HEADER) or 0)
    return prior + returned + 1


def attributes_of(headers: Mapping[str, Any]) -> dict[str, str]:
    """A message's attributes: its headers without those RabbitMQ or this broker add."""
    return {
        key: _text(value)
        for key, value in headers.items()
        if not key.startswith(_RESERVED_HEADER_PREFIXES)
    }


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def topic_in_conflict(reason: str) -> str | None:
    """The topic a subscription is on, from a PRECONDITION_FAILED about its dead-letter
    exchange; None when the conflict is about something else."""
    found = _CURRENT_DEAD_LETTER_EXCHANGE.search(reason)
    return found["exchange"] if found and "x-dead-letter-exchange" in reason else None


@dataclass(frozen=True)
class AmqpOptions:
    """The connection URL for aio-pika and this broker's own query parameters."""

    url: str
    delivery_limit: int = DEFAULT_DELIVERY_LIMIT
    reconnect_interval: float = DEFAULT_RECONNECT_INTERVAL
    outage_timeout: float = DEFAULT_OUTAGE_TIMEOUT


def parse_amqp_url(url: str, delivery_limit: int = DEFAULT_DELIVERY_LIMIT) -> AmqpOptions:
    """`amqp[s]://user:password@host:port/vhost?delivery_limit=20&reconnect_interval=1
    &outage_timeout=30`; other query parameters go to aio-pika (heartbeat, …).
    `delivery_limit` is the default of the option of that name."""
    options = UrlOptions(url, "RabbitMQ")
    delivery_limit = options.take("delivery_limit", int, delivery_limit)
    reconnect_interval = options.take("reconnect_interval", float, DEFAULT_RECONNECT_INTERVAL)
    outage_timeout = options.take("outage_timeout", float, DEFAULT_OUTAGE_TIMEOUT)
    return AmqpOptions(options.for_driver(), delivery_limit, reconnect_interval, outage_timeout)
