"""The request body limit: 413 above `max_body_bytes`, by Content-Length or as it streams.

A response sent before the request's body was read (the 413 itself, a 401, ...) first
reads and discards the rest of the body, up to `DRAIN_BYTES` and `DRAIN_SECONDS`: a client
that sends its whole body before reading (Python's urllib) would otherwise see the
connection reset, the kernel discarding the unread body and the answer with it. A body too
large or too slow to drain, or one the client waits to send (`Expect: 100-continue`), is not
read: the answer says `Connection: close` instead.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sublim.api.problems import BodyTooLarge, problem

DRAIN_BYTES = 64 * 1024 * 1024
DRAIN_SECONDS = 10.0


_BODY_HEADERS = frozenset({b"content-length", b"transfer-encoding", b"expect"})


def _body_headers(scope: Scope) -> dict[bytes, bytes]:
    """The headers that say what body follows, in one pass (the first of each)."""
    found: dict[bytes, bytes] = {}
    for name, value in scope.get("headers", ()):
        if name in _BODY_HEADERS and name not in found:
            found[name] = bytes(value)
    return found


def _declared_length(value: bytes | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


@dataclass(slots=True)
class _Body:
    """What is known of one request's body: whether some of it is still unread."""

    unread: bool
    declared: int | None
    expects_continue: bool

    @classmethod
    def of(cls, scope: Scope) -> _Body:
        headers = _body_headers(scope)
        declared = _declared_length(headers.get(b"content-length"))
        chunked = headers.get(b"transfer-encoding", b"").lower() == b"chunked"
        expect = headers.get(b"expect", b"").lower() == b"100-continue"
        return cls(unread=bool(declared) or chunked, declared=declared, expects_continue=expect)

    def saw(self, message: Message) -> None:
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            self.unread = False

    def drainable(self) -> bool:
        too_large = self.declared is not None and self.declared > DRAIN_BYTES
        return not (self.expects_continue or too_large)


async def _discard(body: _Body, receive: Receive) -> bool:
    """Read and drop the rest of the body; False if it is over the bounds."""
    discarded = 0
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            while body.unread and discarded <= DRAIN_BYTES:
                message = await receive()
                body.saw(message)
                discarded += len(message.get("body", b""))
    except TimeoutError:
        return False
    return not body.unread


def _closing(message: Message) -> Message:
    return {**message, "headers": [*message.get("headers", ()), (b"connection", b"close")]}


class BodyLimit:
    """Pure ASGI middleware: refuses a declared length over the limit before reading, and
    stops a streamed (chunked) body once it passes the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = _Body.of(scope)
        if body.unread:  # a request without a body has nothing to drain
            send = _draining_first(body, receive, send)
        if body.declared is not None and body.declared > self.max_bytes:
            response = problem(413, f"request body larger than {self.max_bytes} bytes")
            await response(scope, receive, send)
            return
        await self.app(scope, self._counting(body, receive), send)

    def _counting(self, body: _Body, receive: Receive) -> Receive:
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            body.saw(message)
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)
            return message

        return counted


def _draining_first(body: _Body, receive: Receive, send: Send) -> Send:
    """`send`, which before a response starts discards the unread body (or, when it may
    not, closes the connection after the response)."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start" and body.unread:
            drained = body.drainable() and await _discard(body, receive)
            if not drained:
                message = _closing(message)
        await send(message)

    return sending
