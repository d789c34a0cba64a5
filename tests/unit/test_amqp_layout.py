"""The RabbitMQ broker's pure helpers: delay buckets, delivery counts, names, URL options."""

from __future__ import annotations

import pytest

from sublim.broker._amqp_layout import (
    attributes_of,
    check_amqp_name,
    delay_bucket_ms,
    deliveries_of,
    parse_amqp_url,
    topic_in_conflict,
)
from sublim.errors import ConfigError, InvalidInput


@pytest.mark.parametrize(
    ("delay", "bucket"),
    [(0.0001, 1), (0.007, 7), (0.056, 56), (0.6, 600), (1.234, 1300), (61.0, 61000), (0.101, 110)],
)
def test_a_delay_is_rounded_up_to_two_significant_digits_in_milliseconds(
    delay: float, bucket: int
) -> None:
    assert delay_bucket_ms(delay) == bucket
    assert delay * 1000 <= bucket <= max(1, delay * 1000 * 1.1)


def test_deliveries_add_the_count_before_a_delay_to_the_returns_since() -> None:
    assert deliveries_of({}) == 1
    assert deliveries_of({"x-delivery-count": 0}) == 1
    assert deliveries_of({"x-delivery-count": 2}) == 3
    assert deliveries_of({"x-delivery-count": 1, "x-sublim-deliveries": 3}) == 5


def test_attributes_leave_out_the_headers_rabbitmq_and_the_broker_add() -> None:
    headers = {
        "kind": "test",
        "raw": b"bytes",
        "x-delivery-count": 1,
        "x-sublim-deliveries": 2,
        "x-death": [],
        "x-first-death-reason": "expired",
    }
    assert attributes_of(headers) == {"kind": "test", "raw": "bytes"}


def test_the_amq_prefix_is_refused() -> None:
    with pytest.raises(InvalidInput, match="reserves"):
        check_amqp_name("topic", "amq.direct")
    assert check_amqp_name("topic", "amqp-work") == "amqp-work"


def test_a_conflict_on_the_dead_letter_exchange_names_the_current_topic() -> None:
    reason = (
        "PRECONDITION_FAILED - inequivalent arg 'x-dead-letter-exchange' for queue 's' in "
        "vhost '/': received 'other.dlx' but current is 'orders.v1.dlx'"
    )
    assert topic_in_conflict(reason) == "orders.v1"
    assert topic_in_conflict("inequivalent arg 'x-delivery-limit' … current is '5'") is None


def test_url_options_are_taken_out_and_the_rest_goes_to_aio_pika() -> None:
    options = parse_amqp_url("amqp://u:p@h:5672/vh?delivery_limit=5&heartbeat=30&outage_timeout=2")
    assert options.url == "amqp://u:p@h:5672/vh?heartbeat=30"
    assert (options.delivery_limit, options.outage_timeout, options.reconnect_interval) == (5, 2, 1)
    with pytest.raises(ConfigError):
        parse_amqp_url("amqp://h/?delivery_limit=many")
