"""OIDC tokens on Pub/Sub pushes: the check for the API on Cloud Run.

A push subscription with an OIDC service account (`sublim gcp provision
--push-service-account`) sends `Authorization: Bearer <JWT>` signed by Google. With
`push_audience` set, the push route accepts a push only if that token verifies: Google's
signature (keys from `push_oidc_certs_url`, cached for an hour and fetched again when a
token names an unknown key), not expired, issued by accounts.google.com for the audience,
and naming `push_service_account` with a verified email (the settings refuse an audience
without it: any Google identity can mint a token for any audience).

This is what `google.oauth2.id_token.verify_oauth2_token` checks, done with
`google.auth.jwt.decode` over keys cached here (the library fetches them on every call) and
without blocking the event loop. google-auth comes with the `gcp` extra and is imported when
a token is first verified, so the API runs without it.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from types import ModuleType
from typing import Any

import httpx
from starlette.exceptions import HTTPException

from sublim.errors import ConfigError

GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
CERTS_TTL_SECONDS = 3600.0
#: An unknown key id fetches the keys again, at most this often.
REFETCH_SECONDS = 60.0
CLOCK_SKEW_SECONDS = 10

CertsFetcher = Callable[[], Awaitable[Mapping[str, str]]]
GOOGLE_AUTH_MISSING = "verifying push tokens needs google-auth: pip install 'sublim[gcp]'"


def http_certs_fetcher(url: str) -> CertsFetcher:
    """Fetch `{key id: PEM certificate}` from `url`."""

    async def fetch() -> Mapping[str, str]:
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.get(url)
            response.raise_for_status()
            certs: dict[str, str] = response.json()
            return certs

    return fetch


def _google_auth() -> tuple[ModuleType, ModuleType]:
    """google.auth's `jwt` and `exceptions`; 503 naming the extra when it is not installed."""
    try:
        from google.auth import exceptions, jwt
    except ImportError as exc:
        raise HTTPException(503, GOOGLE_AUTH_MISSING) from exc
    return jwt, exceptions


def require_google_auth() -> None:
    """`ConfigError` naming the extra when google-auth is not installed: with `push_audience`
    set, the API refuses to start rather than answer every push with a 503."""
    try:
        import google.auth.jwt  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"push_audience is set, but {GOOGLE_AUTH_MISSING}") from exc


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("a push must carry an OIDC token (Authorization: Bearer …)")
    return token.strip()


def _unpadded_b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id(token: str) -> str | None:
    try:
        header = json.loads(_unpadded_b64decode(token.split(".")[0]))
    except (ValueError, binascii.Error):
        raise _unauthorized("the push's OIDC token is not a JWT") from None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


class PushTokenVerifier:
    """Verifies the OIDC tokens of pushes; see the module's documentation."""

    def __init__(self, audience: str, service_account: str, fetch_certs: CertsFetcher) -> None:
        self.audience = audience
        self.service_account = service_account
        self._fetch_certs = fetch_certs
        self._certs: Mapping[str, str] = {}
        self._fetched_at = -CERTS_TTL_SECONDS

    async def verify(self, authorization: str | None) -> dict[str, Any]:
        """The token's claims; 401 if it is missing or does not verify, 403 if it names
        another service account."""
        token = bearer_token(authorization)
        certs = await self._certs_for(key_id(token))
        claims = self._decode(token, certs)
        self._check_identity(claims)
        return claims

    async def _certs_for(self, kid: str | None) -> Mapping[str, str]:
        age = time.monotonic() - self._fetched_at
        unknown_key = kid is not None and kid not in self._certs
        if age > CERTS_TTL_SECONDS or (unknown_key and age > REFETCH_SECONDS):
            await self._refresh()
        return self._certs

    async def _refresh(self) -> None:
        try:
            self._certs = await self._fetch_certs()
        except (httpx.HTTPError, ValueError) as exc:
            raise HTTPException(503, f"cannot fetch the keys of push tokens: {exc}") from exc
        self._fetched_at = time.monotonic()

    def _decode(self, token: str, certs: Mapping[str, str]) -> dict[str, Any]:
        jwt, auth_exceptions = _google_auth()
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                certs=dict(certs),
                audience=self.audience,
                clock_skew_in_seconds=CLOCK_SKEW_SECONDS,
            )
        except (ValueError, auth_exceptions.GoogleAuthError) as exc:
            raise _unauthorized(f"the push's OIDC token does not verify: {exc}") from exc
        if claims.get("iss") not in GOOGLE_ISSUERS:
            raise _unauthorized(
                f"the push's OIDC token was not issued by Google: {claims.get('iss')}"
            )
        return claims

    def _check_identity(self, claims: Mapping[str, Any]) -> None:
        if claims.get("email") != self.service_account or claims.get("email_verified") is not True:
            raise HTTPException(403, "the push's OIDC token names another service account")
