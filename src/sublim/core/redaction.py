"""Secrets out of output: `redact(text)` masks the password of every URL in `text` and the
value of secret query parameters (`?token=`, `?password=`, ...), and `RedactingFilter` does
the same to log records (the access log carries `?token=` of the push route).
"""

from __future__ import annotations

import logging
import re

MASK = "***"

#: `scheme://user:password@`: the password runs to the last `@` before the path.
_USER_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:@\s/?#]*):[^\s/?#]*@")
#: NATS reads a lone user part as a token (`nats://TOKEN@host`).
_NATS_TOKEN = re.compile(r"(?P<head>\bnats(?:\+[a-z]+)?://)[^:@\s/?#]+@", re.IGNORECASE)
_SECRET_PARAMETER = re.compile(
    r"(?P<head>[?&;](?:password|passwd|pwd|token|access_token|auth_token|secret|api_key|apikey)=)"
    r"[^&#\s'\"]*",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """`text` with URL passwords, NATS tokens and secret query values replaced by `***`."""
    text = _USER_PASSWORD.sub(rf"\g<head>:{MASK}@", text)
    text = _NATS_TOKEN.sub(rf"\g<head>{MASK}@", text)
    return _SECRET_PARAMETER.sub(rf"\g<head>{MASK}", text)


def _redacted_arg(arg: object) -> object:
    if not isinstance(arg, str | BaseException):
        return arg
    text = str(arg)
    redacted = redact(text)
    return arg if redacted == text else redacted


class RedactingFilter(logging.Filter):
    """Redacts each record's message and arguments in place; drops nothing. The arguments
    keep their positions, so formatters that read them (uvicorn's access log) still work."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted_arg(arg) for arg in record.args)
        return True
