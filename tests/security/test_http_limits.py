"""Issue 10, item 4: the HTTP server's limits, against a real `sublim api` process.

Before: 50 slow-header connections were held for ever, a 50 MB header was served, a 20 MB
POST from urllib saw `Connection reset by peer` instead of its 413, and one open event
stream held a SIGINT'd server for 58 s."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from sublim.api.http_server import HeadLimits, _h11_protocol, _httptools_protocol
from tests.api.conftest import ApiProcess, create_task, start_api

HEADER_TIMEOUT = 1.0
SHUTDOWN_SECONDS = 5.0


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    env = {"SUBLIM_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT)}
    process = start_api(tmp_path_factory.mktemp("limits"), env)
    yield process
    process.stop()


def _address(api: ApiProcess) -> tuple[str, int]:
    host, port = api.url.removeprefix("http://").split(":")
    return host, int(port)


def _closed_by_server(sock: socket.socket) -> bool:
    """The server closed (after a 408 or not) within the socket's timeout."""
    try:
        while chunk := sock.recv(4096):
            if not chunk.startswith(b"HTTP/1.1 408"):
                return False
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_slow_header_connections_are_closed_after_the_timeout_while_others_are_served(
    api: ApiProcess,
) -> None:
    slow = [socket.create_connection(_address(api)) for _ in range(50)]
    for sock in slow:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    assert httpx.get(f"{api.url}/healthz", timeout=5).status_code == 200
    started = time.monotonic()
    for sock in slow:
        sock.settimeout(HEADER_TIMEOUT + 5)
        assert _closed_by_server(sock)
        sock.close()
    assert time.monotonic() - started < HEADER_TIMEOUT + 5


def test_a_50_mb_header_is_refused(api: ApiProcess) -> None:
    sock = socket.create_connection(_address(api))
    sock.settimeout(10)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
    sent = 0
    try:
        while sent < 50_000_000:
            sock.sendall(b"a" * 65536)
            sent += 65536
        sock.sendall(b"\r\n\r\n")
        answer = sock.recv(200)
    except (ConnectionResetError, BrokenPipeError):
        answer = b""
    finally:
        sock.close()
    assert sent < 50_000_000 or answer.startswith(b"HTTP/1.1 431")
    assert not answer.startswith(b"HTTP/1.1 200")


def test_a_20_mb_body_from_urllib_gets_its_413(api: ApiProcess) -> None:
    body = json.dumps({"topic": "Big", "payload": {"blob": "z" * 20_000_000}}).encode()
    request = urllib.request.Request(
        f"{api.url}/v1/tasks", data=body, headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 413
    assert json.loads(refused.value.read())["status"] == 413


def _open_stream(api: ApiProcess, execution_id: str) -> socket.socket:
    sock = socket.create_connection(_address(api))
    sock.settimeout(10)
    sock.sendall(
        f"GET /v1/executions/{execution_id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    return sock


def test_shutdown_with_100_open_event_streams_completes_within_the_timeout(
    tmp_path: Path,
) -> None:
    env = {
        "SUBLIM_HTTP_SHUTDOWN_SECONDS": str(SHUTDOWN_SECONDS),
        "SUBLIM_MAX_EVENT_STREAMS_PER_TOKEN": "200",
    }
    api = start_api(tmp_path, env)
    try:
        with api.client() as http:
            execution = create_task(http, "Streamed", execute=True)["execution"]
        streams = [_open_stream(api, execution["id"]) for _ in range(100)]
        started = time.monotonic()
        api.proc.send_signal(signal.SIGINT)
        api.proc.wait(timeout=SHUTDOWN_SECONDS + 10)
        took = time.monotonic() - started
    finally:
        api.stop()
    print(f"shutdown with 100 open event streams took {took:.2f} s")
    assert took < SHUTDOWN_SECONDS
    assert all(b"event: reconnect" in _rest_of(sock) for sock in streams)


def _rest_of(sock: socket.socket) -> bytes:
    """What the server sent on `sock` until it closed it."""
    received = b""
    with sock:
        while chunk := sock.recv(65536):
            received += chunk
    return received


async def _ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.mark.parametrize("make_protocol", [_httptools_protocol, _h11_protocol])
async def test_either_protocol_closes_a_connection_whose_head_is_not_done_in_time(
    make_protocol: Callable[..., type[asyncio.Protocol]],
) -> None:
    """The h11 fallback (no httptools) keeps the head's time limit too."""
    protocol = make_protocol(**_limits_of(make_protocol))
    server = uvicorn.Server(uvicorn.Config(_ok, http=protocol, log_config=None))
    listening = socket.create_server(("127.0.0.1", 0))
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    reader, writer = await asyncio.open_connection(*listening.getsockname())
    writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    answer = await asyncio.wait_for(reader.read(), timeout=HEADER_TIMEOUT + 5)
    writer.close()
    server.should_exit = True
    await serving
    assert answer.startswith(b"HTTP/1.1 408")


def _limits_of(make_protocol: Callable[..., type[asyncio.Protocol]]) -> dict[str, float]:
    if make_protocol is _h11_protocol:
        return {"timeout": HEADER_TIMEOUT}
    return {"max_bytes": 65536, "timeout": HEADER_TIMEOUT}


async def test_a_head_is_timed_from_its_own_start_on_a_connection_that_served_others() -> None:
    """One timer per connection: a head that ended in time leaves it to lapse, and the next
    head is given its own full timeout."""
    loop = asyncio.get_running_loop()
    breaches: list[tuple[int, float]] = []
    head = HeadLimits(1024, 0.2, lambda status: breaches.append((status, loop.time())))
    began = loop.time()
    head.start(loop)
    await asyncio.sleep(0.1)
    head.stop()  # the first request's head, in time
    await asyncio.sleep(0.05)
    head.start(loop)  # the next one begins at 0.15 s: due at 0.35 s, not at 0.2 s
    await asyncio.sleep(0.45)
    assert [status for status, _ in breaches] == [408]
    assert breaches[0][1] - began >= 0.35
    head.close()
