"""Bearer tokens with scopes: `read` for GET, `write` for POST/PATCH/DELETE, `admin` for all.

`settings.api_tokens` maps each token to its scopes. `settings.auth`: `required`, `off`, or
`auto`, which requires a token whenever the API listens on more than the loopback interface.
Health, readiness, metrics and the API's documentation stay open.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from sublim.config import Settings, is_loopback
from sublim.errors import ConfigError

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
REALM = 'Bearer realm="sublim"'

bearer_scheme = HTTPBearer(auto_error=False, description="an API token of settings.api_tokens")


def auth_required(settings: Settings) -> bool:
    if settings.auth == "auto":
        return not is_loopback(settings.host)
    return settings.auth == "required"


@dataclass(frozen=True, slots=True)
class Authenticator:
    """The tokens and their scopes; `required` False lets every request through."""

    required: bool
    tokens: Mapping[str, frozenset[str]]

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator:
        required = auth_required(settings)
        if required and not settings.api_tokens:
            raise ConfigError(
                f"authentication is required (auth={settings.auth}, host={settings.host}) "
                "but no api_tokens are set: set SUBLIM_API_TOKENS or listen on 127.0.0.1"
            )
        tokens = {token: frozenset(scopes) for token, scopes in settings.api_tokens.items()}
        return cls(required=required, tokens=tokens)

    def scopes_of(self, presented: str) -> frozenset[str] | None:
        """The scopes of a token, comparing with every known token in constant time."""
        found: frozenset[str] | None = None
        for token, scopes in self.tokens.items():
            if hmac.compare_digest(token.encode(), presented.encode()):
                found = scopes
        return found


def needed_scope(method: str) -> str:
    return "read" if method in READ_METHODS else "write"


def _unauthorized(detail: str, error: str | None = None) -> HTTPException:
    challenge = REALM if error is None else f'{REALM}, error="{error}"'
    return HTTPException(401, detail, headers={"WWW-Authenticate": challenge})


def _forbidden(scope: str) -> HTTPException:
    challenge = f'{REALM}, error="insufficient_scope", scope="{scope}"'
    return HTTPException(
        403, f"this token lacks the {scope!r} scope", headers={"WWW-Authenticate": challenge}
    )


def check_token(authenticator: Authenticator, token: str | None, scope: str) -> None:
    """Raise 401 (no or unknown token) or 403 (token without `scope`)."""
    if token is None:
        raise _unauthorized("a bearer token is required (Authorization: Bearer TOKEN)")
    scopes = authenticator.scopes_of(token)
    if scopes is None:
        raise _unauthorized("unknown bearer token", "invalid_token")
    if scope not in scopes and "admin" not in scopes:
        raise _forbidden(scope)


BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


async def authorize(request: Request, credentials: BearerCredentials) -> None:
    """Dependency of every /v1 route while authentication is required."""
    authenticator: Authenticator = request.app.state.authenticator
    token = credentials.credentials if credentials else None
    check_token(authenticator, token, needed_scope(request.method))


def auth_dependencies(authenticator: Authenticator) -> Sequence[Any]:
    """The dependencies routers take: none while authentication is off (so that the OpenAPI
    document only declares a security scheme that is enforced)."""
    return [Depends(authorize)] if authenticator.required else []
