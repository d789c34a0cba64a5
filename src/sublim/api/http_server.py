"""The HTTP server's own limits, around uvicorn's protocols and server.

uvicorn bounds neither the size of a request's head (httptools reads a 50 MB header) nor
the time a client takes to send it (a connection that trickles its headers is held for
ever). `head_limited_protocol` returns uvicorn's protocol with both: a head larger than
`max_bytes` is answered 431, one not complete within `timeout` seconds 408, and the
connection is closed. `GracefulServer` ends the app's event streams as soon as shutdown
begins, so that open streams do not hold a stopping server until its timeout.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import uvicorn

DEFAULT_MAX_HEAD_BYTES = 64 * 1024
DEFAULT_HEAD_TIMEOUT_SECONDS = 10.0


def refusal(status: int) -> bytes:
    """A complete response that closes the connection, for a request that never got in."""
    phrase = HTTPStatus(status).phrase
    body = f"{phrase}\n".encode()
    head = (
        f"HTTP/1.1 {status} {phrase}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class HeadLimits:
    """The state of one connection's request head: its deadline, and the bytes read so far.

    One timer per connection, not per request: `stop` only clears the deadline, and a timer
    that fires finds the head done (it lapses) or a later head's deadline (it is set again
    for that). Arming and cancelling a timer for every request cost more than the rest.
    """

    def __init__(self, max_bytes: int, timeout: float, on_breach: Callable[[int], None]) -> None:
        self.max_bytes = max_bytes
        self.timeout = timeout
        self._on_breach = on_breach
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: float | None = None
        self._bytes = 0

    @property
    def reading(self) -> bool:
        return self._deadline is not None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._deadline is None:
            self._bytes = 0
            self._loop = loop
            self._deadline = loop.time() + self.timeout
            if self._timer is None:
                self._timer = loop.call_at(self._deadline, self._expire)

    def stop(self) -> None:
        self._deadline = None

    def close(self) -> None:
        """Stop, and drop the timer (the connection is gone)."""
        self.stop()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def count(self, size: int) -> None:
        """Count `size` bytes of an unfinished head; 431 past the limit."""
        self._bytes += size
        if self._bytes > self.max_bytes:
            self.stop()
            self._on_breach(431)

    def _expire(self) -> None:
        self._timer = None
        if self._deadline is None or self._loop is None:
            return
        if self._loop.time() < self._deadline:
            self._timer = self._loop.call_at(self._deadline, self._expire)
            return
        self.stop()
        self._on_breach(408)


def _refuse(transport: asyncio.Transport, cycle: Any, status: int) -> None:
    if transport.is_closing():
        return
    if cycle is None or cycle.response_complete:
        transport.write(refusal(status))
    transport.close()


class _EndsHead(asyncio.Protocol):
    """What both head-limited protocols do when the head's limits are breached or the
    connection goes: stop the timer, answer (unless a response is under way) and close."""

    head: HeadLimits
    transport: asyncio.Transport
    cycle: Any

    def connection_lost(self, exc: Exception | None) -> None:
        self.head.close()
        super().connection_lost(exc)

    def _breach(self, status: int) -> None:
        self.head.close()
        _refuse(self.transport, self.cycle, status)


def _httptools_protocol(max_bytes: int, timeout: float) -> type[asyncio.Protocol]:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class HeadLimitedHttpTools(_EndsHead, HttpToolsProtocol):
        """httptools, with the head timed from its first byte (or the connection's opening)
        to its end, and its bytes counted after each read that did not complete it."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            self.head = HeadLimits(max_bytes, timeout, self._breach)
            super().connection_made(transport)
            self.head.start(self.loop)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.head.reading and not self.transport.is_closing():
                self.head.count(len(data))

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.head.start(self.loop)

        def on_headers_complete(self) -> None:
            self.head.stop()
            super().on_headers_complete()

    return HeadLimitedHttpTools


def _h11_protocol(timeout: float) -> type[asyncio.Protocol]:
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeadLimitedH11(_EndsHead, H11Protocol):
        """h11 (which bounds the head itself: `h11_max_incomplete_event_size`), with the head
        timed while the peer is between requests."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            self.head = HeadLimits(1 << 62, timeout, self._breach)
            super().connection_made(transport)
            self.head.start(self.loop)

        def data_received(self, data: bytes) -> None:
            if self.conn.their_state is h11.IDLE:
                self.head.start(self.loop)
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self.head.stop()

    return HeadLimitedH11


def head_limited_protocol(
    max_bytes: int = DEFAULT_MAX_HEAD_BYTES, timeout: float = DEFAULT_HEAD_TIMEOUT_SECONDS
) -> type[asyncio.Protocol]:
    """uvicorn's HTTP/1.1 protocol (httptools, else h11) with the head's limits."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return _h11_protocol(timeout)
    return _httptools_protocol(max_bytes, timeout)


class GracefulServer(uvicorn.Server):
    """A uvicorn server that calls `on_shutdown` (which ends long responses) first thing
    when it begins to shut down; requests still running after the config's
    `timeout_graceful_shutdown` are cancelled."""

    def __init__(self, config: uvicorn.Config, on_shutdown: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_shutdown = on_shutdown

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._on_shutdown()
        await super().shutdown(sockets)
