"""Who may call the datastore: a shared token, mutual TLS, or the platform in front of it.

The datastore checks `authorization: Bearer TOKEN` (constant time) in a server interceptor,
and refuses to listen beyond loopback unless a token, mutual TLS or `datastore_auth=platform`
is configured. Clients send the token as call credentials on grpcs:// (gRPC refuses call
credentials on plaintext channels, so a client interceptor adds it there), and, behind
Cloud Run's IAM, a Google ID token in `x-serverless-authorization` (which leaves
`authorization` to the token).
"""

from __future__ import annotations

import asyncio
import hmac
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import grpc

from sublim.config import Settings, is_loopback
from sublim.errors import ConfigError, StoreError

TOKEN_KEY = "authorization"
#: Cloud Run checks an ID token here as well as in `authorization`, and leaves it to the app.
ID_TOKEN_KEY = "x-serverless-authorization"
Metadata = tuple[tuple[str, str], ...]


def mutual_tls_configured(settings: Settings) -> bool:
    return None not in (
        settings.datastore_tls_cert,
        settings.datastore_tls_key,
        settings.datastore_tls_ca,
    )


def require_authentication(settings: Settings) -> None:
    """Refuse a datastore that anyone who reaches it could use."""
    if is_loopback(settings.host) or settings.datastore_auth == "platform":
        return
    if settings.datastore_token or mutual_tls_configured(settings):
        return
    raise ConfigError(
        f"the datastore would listen on {settings.host or 'every interface'} without "
        "authentication: set SUBLIM_DATASTORE_TOKEN (a secret of 16 characters or more, which "
        "its clients set too), or mutual TLS (SUBLIM_DATASTORE_TLS_CERT, SUBLIM_DATASTORE_TLS_KEY "
        "and SUBLIM_DATASTORE_TLS_CA, the CA of the client certificates), or "
        "SUBLIM_DATASTORE_AUTH=platform where the platform authenticates every call (Cloud Run "
        "without --allow-unauthenticated); or listen on 127.0.0.1"
    )


# The server's check ---------------------------------------------------------------------


async def _refuse(request: bytes, context: Any) -> None:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, "a valid datastore token is required")


class TokenGuard(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Lets through only the calls that carry `authorization: Bearer TOKEN`."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()
        self._refusal = grpc.unary_unary_rpc_method_handler(_refuse)

    def admits(self, metadata: Sequence[tuple[str, str | bytes]] | None) -> bool:
        presented = [value for key, value in metadata or () if key == TOKEN_KEY]
        return len(presented) == 1 and hmac.compare_digest(_bytes(presented[0]), self._expected)

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], details: Any
    ) -> Any:
        if self.admits(details.invocation_metadata):
            return await continuation(details)
        return self._refusal


def _bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


# What clients send ----------------------------------------------------------------------


class GoogleIdTokens:
    """Google ID tokens for one audience, from the environment's credentials (the metadata
    server on Cloud Run), fetched again shortly before they expire."""

    def __init__(self, audience: str) -> None:
        try:
            from google.auth.transport.requests import Request
            from google.oauth2 import id_token
        except ImportError as exc:
            raise ConfigError(
                "datastore_auth=platform needs Google's auth library: "
                f"pip install 'sublim[gcp]' ({exc.name} is missing)"
            ) from exc
        self.audience = audience
        self._request = Request()
        self._fetch_credentials: Callable[..., Any] = id_token.fetch_id_token_credentials
        self._credentials: Any = None
        self._lock = threading.Lock()

    def token(self) -> str:
        """A valid ID token; blocks while it fetches one."""
        with self._lock:
            try:
                return self._valid_token()
            except Exception as exc:  # google-auth raises several unrelated classes
                problem = f"cannot get a Google ID token for {self.audience}: {exc}"
                raise StoreError(problem) from exc

    def _valid_token(self) -> str:
        if self._credentials is None:
            self._credentials = self._fetch_credentials(self.audience, request=self._request)
        if not self._credentials.valid:
            self._credentials.refresh(self._request)
        return str(self._credentials.token)


@dataclass(frozen=True, slots=True)
class ClientAuth:
    """What a grpc:// or grpcs:// store sends with every call."""

    token: str | None = None
    id_tokens: GoogleIdTokens | None = None

    @classmethod
    def from_settings(cls, settings: Settings, url: str) -> ClientAuth:
        id_tokens = None
        if settings.datastore_auth == "platform":
            id_tokens = GoogleIdTokens(settings.datastore_audience or _audience_of(url))
        return cls(token=settings.datastore_token, id_tokens=id_tokens)

    def __bool__(self) -> bool:
        return self.token is not None or self.id_tokens is not None

    def metadata(self) -> Metadata:
        """The call metadata; blocks while an ID token is fetched."""
        pairs = []
        if self.token is not None:
            pairs.append((TOKEN_KEY, f"Bearer {self.token}"))
        if self.id_tokens is not None:
            pairs.append((ID_TOKEN_KEY, f"Bearer {self.id_tokens.token()}"))
        return tuple(pairs)

    def call_credentials(self) -> Any:
        """For a TLS channel: gRPC's call credentials, run in its own threads."""
        return grpc.metadata_call_credentials(_MetadataPlugin(self), name="sublim-datastore")

    def interceptors(self) -> list[Any]:
        """For a plaintext channel, which takes no call credentials."""
        return [_MetadataInterceptor(self)]


def _audience_of(url: str) -> str:
    return f"https://{urlsplit(url).hostname}"


class _MetadataPlugin(grpc.AuthMetadataPlugin):  # type: ignore[misc]
    def __init__(self, auth: ClientAuth) -> None:
        self._auth = auth

    def __call__(self, context: Any, callback: Any) -> None:
        try:
            metadata = self._auth.metadata()
        except StoreError as exc:
            callback((), exc)
            return
        callback(metadata, None)


class _MetadataInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, auth: ClientAuth) -> None:
        self._auth = auth

    async def intercept_unary_unary(
        self, continuation: Callable[[Any, Any], Awaitable[Any]], details: Any, request: Any
    ) -> Any:
        added = await self._metadata()
        with_auth = grpc.aio.ClientCallDetails(
            details.method,
            details.timeout,
            grpc.aio.Metadata(*(details.metadata or ()), *added),
            details.credentials,
            details.wait_for_ready,
        )
        return await continuation(with_auth, request)

    async def _metadata(self) -> Metadata:
        if self._auth.id_tokens is None:
            return self._auth.metadata()
        return await asyncio.to_thread(self._auth.metadata)
