"""POST /task_execution_update: the original's push route for execution updates.

The body is a Pub/Sub push envelope whose `message.data` is the base64 of an update's JSON.
Pub/Sub redelivers what is not acknowledged with a success, so: a message that can never be
recorded (a malformed envelope, an undecodable update) gets a 400 and is logged; a store
outage gets a 503 (redelivered later); anything recorded, ignored as a duplicate, or naming
an unknown execution gets a 200 (recording it twice changes nothing: updates are
idempotent).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException

from sublim.api.auth import Authenticator, check_token
from sublim.api.deps import ServiceDep, problems
from sublim.api.metrics import Metrics
from sublim.api.push_oidc import PushTokenVerifier, http_certs_fetcher
from sublim.api.schemas import UpdateReceipt
from sublim.config import Settings
from sublim.core.messages import decode_update
from sublim.core.model import Update
from sublim.errors import InvalidInput

log = logging.getLogger("sublim.api.updates")

router = APIRouter(tags=["updates"])


class PushMessage(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    data: str = Field(description="base64 of the update's JSON")
    message_id: str | None = Field(None, alias="messageId")
    attributes: dict[str, str] = Field(default_factory=dict)


class PushEnvelope(BaseModel):
    model_config = ConfigDict(extra="allow")

    message: PushMessage
    subscription: str | None = None


def _bad_request(detail: str) -> HTTPException:
    return HTTPException(400, detail)


def parse_envelope(body: bytes) -> Update:
    """The update inside a push envelope; 400 if the envelope or the update is malformed."""
    try:
        envelope = PushEnvelope.model_validate_json(body)
    except ValidationError as exc:
        raise _bad_request(f"not a Pub/Sub push envelope: {exc.error_count()} error(s)") from exc
    try:
        data = base64.b64decode(envelope.message.data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _bad_request("message.data is not base64") from exc
    try:
        return decode_update(data)
    except InvalidInput as exc:
        raise _bad_request(f"message.data is not an execution update: {exc}") from exc


async def verify_push(request: Request, token: str | None) -> None:
    """`?token=` must match `push_token` when it is set, and the OIDC token must verify when
    `push_audience` is set; with neither, while authentication is required, a bearer token
    with the write scope."""
    settings: Settings = request.app.state.settings
    if settings.push_token is not None:
        _check_push_token(settings.push_token, token)
    if settings.push_audience is not None:
        await _oidc_verifier(request, settings).verify(request.headers.get("authorization"))
    if settings.push_token is None and settings.push_audience is None:
        _check_api_token(request)


def _check_push_token(expected: str, token: str | None) -> None:
    if token is None or not hmac.compare_digest(token.encode(), expected.encode()):
        raise HTTPException(403, "missing or wrong push token (?token=)")


def _oidc_verifier(request: Request, settings: Settings) -> PushTokenVerifier:
    """One verifier per app, so that Google's keys are fetched once an hour."""
    verifier: PushTokenVerifier | None = getattr(request.app.state, "push_verifier", None)
    if verifier is None:
        assert settings.push_audience is not None
        assert settings.push_service_account is not None
        fetch = http_certs_fetcher(settings.push_oidc_certs_url)
        verifier = PushTokenVerifier(settings.push_audience, settings.push_service_account, fetch)
        request.app.state.push_verifier = verifier
    return verifier


def _check_api_token(request: Request) -> None:
    authenticator: Authenticator = request.app.state.authenticator
    if authenticator.required:
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        check_token(authenticator, bearer or None, "write")


_ENVELOPE_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["message"],
                    "properties": {
                        "message": {
                            "type": "object",
                            "required": ["data"],
                            "properties": {
                                "data": {
                                    "type": "string",
                                    "description": "base64 of the update's JSON",
                                },
                                "messageId": {"type": "string"},
                                "attributes": {
                                    "type": "object",
                                    "additionalProperties": {"type": "string"},
                                },
                            },
                        },
                        "subscription": {"type": "string"},
                    },
                }
            }
        },
    }
}


@router.post(
    "/task_execution_update",
    response_model=UpdateReceipt,
    responses=problems(400, 401, 403, 413, 503),
    openapi_extra=_ENVELOPE_DOC,
)
async def task_execution_update(
    request: Request,
    service: ServiceDep,
    token: Annotated[str | None, Query(description="the push token, when one is set")] = None,
) -> UpdateReceipt:
    """Record one execution update pushed by Pub/Sub (or any client speaking its envelope)."""
    await verify_push(request, token)
    metrics: Metrics = request.app.state.metrics
    try:
        update = parse_envelope(await request.body())
    except HTTPException:
        metrics.updates.labels(route="push", outcome="malformed").inc()
        raise
    change = await service.record_update(update)
    outcome = "unknown" if change is None else change.outcome
    metrics.updates.labels(route="push", outcome=outcome).inc()
    return UpdateReceipt(execution_id=update.execution_id, outcome=outcome)
