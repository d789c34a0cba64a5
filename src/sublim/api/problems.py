"""Every error as `application/problem+json` (RFC 9457): {type, title, status, detail}.

The core's exception tree maps onto statuses here, once: NotFound 404, Conflict 409,
InvalidInput 422 (MessageTooLarge 413), BackendError 503 (with Retry-After); anything
unexpected is a 500 whose detail says nothing of the code (the traceback goes to the
server's log).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from sublim.core.redaction import redact
from sublim.errors import BackendError, Conflict, InvalidInput, MessageTooLarge, NotFound

log = logging.getLogger("sublim.api")

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 2


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON


def problem(
    status: int, detail: str, *, headers: Mapping[str, str] | None = None, **extra: Any
) -> ProblemResponse:
    """A problem response; its type names the status (`urn:sublim:problem:not-found`)."""
    title = HTTPStatus(status).phrase
    slug = title.lower().replace(" ", "-").replace("'", "")
    body = {
        "type": f"urn:sublim:problem:{slug}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    return ProblemResponse(body | extra, status_code=status, headers=headers)


class BodyTooLarge(HTTPException):
    """Raised while a body streams in past the limit (an HTTPException, so that FastAPI's
    body parsing lets it through instead of calling it a parse error)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {
            "loc": list(error.get("loc", ())),
            "msg": str(error.get("msg", "")),
            "type": error.get("type"),
        }
        for error in exc.errors()
    ]


def _is_malformed_json(exc: RequestValidationError) -> bool:
    return any(error.get("type") == "json_invalid" for error in exc.errors())


async def on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if _is_malformed_json(exc):
        return problem(400, "the request body is not valid JSON")
    return problem(422, "the request does not validate", errors=_field_errors(exc))


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return problem(exc.status_code, str(exc.detail), headers=exc.headers)


async def on_not_found(request: Request, exc: Exception) -> Response:
    return problem(404, str(exc))


async def on_conflict(request: Request, exc: Exception) -> Response:
    return problem(409, str(exc))


async def on_invalid_input(request: Request, exc: Exception) -> Response:
    return problem(422, str(exc))


async def on_message_too_large(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MessageTooLarge)
    return problem(413, str(exc), limit_bytes=exc.limit)


async def on_backend_error(request: Request, exc: Exception) -> Response:
    reason = redact(str(exc))
    log.warning("%s %s: backend unavailable: %s", request.method, request.url.path, reason)
    detail = f"{type(exc).__name__}: the store or the broker is unavailable; try again"
    return problem(503, detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return problem(500, "an unexpected error occurred; it was logged on the server")


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(NotFound, on_not_found)
    app.add_exception_handler(Conflict, on_conflict)
    app.add_exception_handler(InvalidInput, on_invalid_input)
    app.add_exception_handler(MessageTooLarge, on_message_too_large)
    app.add_exception_handler(BackendError, on_backend_error)
    app.add_exception_handler(Exception, on_unexpected)
