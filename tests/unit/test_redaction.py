"""`redact`: URL passwords and secret query values masked, everything else left as it is."""

from __future__ import annotations

import logging

import pytest

from sublim.core.redaction import RedactingFilter, redact


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("postgresql://sublim:pw@db:5432/sublim", "postgresql://sublim:***@db:5432/sublim"),
        ("redis://:pw@cache:6379/0", "redis://:***@cache:6379/0"),
        ("amqp://guest:p%40ss@rabbit/", "amqp://guest:***@rabbit/"),
        ("amqp://guest:p@ss@rabbit/vhost", "amqp://guest:***@rabbit/vhost"),
        ("nats://s3cr3t-token@nats:4222", "nats://***@nats:4222"),
        ("redis://cache?password=pw&db=2", "redis://cache?password=***&db=2"),
        ("/task_execution_update?token=abc&x=1", "/task_execution_update?token=***&x=1"),
        ("failed: amqp://u:pw@h/ and redis://:pw2@r", "failed: amqp://u:***@h/ and redis://:***@r"),
    ],
)
def test_secrets_are_masked(text: str, redacted: str) -> None:
    assert redact(text) == redacted


@pytest.mark.parametrize(
    "text",
    [
        "sqlite:///./sublim.db",
        "postgresql://postgres@127.0.0.1:5432/sublim?search_path=t",
        "http://127.0.0.1:8080/docs",
        "grpcs://datastore.example:443",
        "/v1/tasks?topic=Thumbnail&tokens=3",
    ],
)
def test_text_without_secrets_is_unchanged(text: str) -> None:
    assert redact(text) == text


def test_the_filter_masks_arguments_and_keeps_their_positions() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", "/task_execution_update?token=abc", "1.1", 403),
        None,
    )
    assert RedactingFilter().filter(record) is True
    assert record.getMessage() == (
        '127.0.0.1:5000 - "POST /task_execution_update?token=*** HTTP/1.1" 403'
    )
