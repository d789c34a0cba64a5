"""Loopback names, and the Host rule of an API that serves without tokens.

An API without authentication trusts whoever can reach it, which on loopback means the
local user; but a web page the user opens can reach it too, by DNS rebinding (its own name
resolving to 127.0.0.1). Such a request carries the page's name in `Host`, so while auth is
off only loopback names are served: `localhost`, `127.x.y.z` and `[::1]`, with any port.
Everything else gets 421 Misdirected Request (decision 022).
"""

from __future__ import annotations

import functools

from starlette.types import ASGIApp, Receive, Scope, Send

from sublim.api.problems import problem
from sublim.config import is_loopback

GUARDED_SCOPES = frozenset({"http", "websocket"})
#: Policy Violation; a websocket closed before it is accepted is answered 403.
WEBSOCKET_REFUSED = 1008


def host_name(header: str) -> str | None:
    """The name of a Host header without its port (`[::1]:8080` → `::1`); None when the
    header is not `name[:port]` or `[ipv6][:port]`."""
    if header.startswith("["):
        name, _, rest = header[1:].partition("]")
        return name if ":" in name and _is_port_suffix(rest) else None
    name, _, port = header.partition(":")
    return name if not port or port.isdigit() else None


def _is_port_suffix(rest: str) -> bool:
    return rest == "" or (rest.startswith(":") and rest[1:].isdigit())


def is_loopback_host_header(header: str) -> bool:
    name = host_name(header)
    return name is not None and is_loopback(name)


#: `is_loopback_host_header`, remembered for the few Host values a server sees (bounded:
#: the header is the client's).
_loopback_host_header = functools.lru_cache(maxsize=256)(is_loopback_host_header)


def _host_header(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"host":
            return str(value.decode("latin-1"))
    return ""


class LoopbackHostsOnly:
    """Pure ASGI middleware: 421 problem+json for a request whose Host is not loopback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        guarded = scope["type"] in GUARDED_SCOPES
        host = _host_header(scope) if guarded else ""
        if not guarded or _loopback_host_header(host):
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": WEBSOCKET_REFUSED})
        else:
            await problem(421, _refusal(host))(scope, receive, send)


def _refusal(host: str) -> str:
    return (
        f"this API serves without tokens, so it answers loopback Host names only "
        f"(localhost, 127.0.0.1, [::1]), not {host[:100]!r}; to serve other names, "
        "require tokens (SUBLIM_AUTH=required and SUBLIM_API_TOKENS)"
    )
