"""The wire format of the two message kinds: execution requests and execution updates (JSON)."""

from __future__ import annotations

from typing import TypeVar

from pydantic import ValidationError

from sublim.broker.base import Message
from sublim.errors import InvalidInput
from sublim.model import ExecutionRequest, Model, Update

M = TypeVar("M", bound=Model)


def request_message(request: ExecutionRequest) -> Message:
    return Message(data=request.model_dump_json().encode(), key=request.execution_id)


def update_message(update: Update) -> Message:
    key = f"{update.execution_id}:{update.attempt}:{update.seq}"
    return Message(data=update.model_dump_json().encode(), key=key)


def _decode(kind: type[M], data: bytes) -> M:
    try:
        return kind.model_validate_json(data)
    except ValidationError as exc:
        raise InvalidInput(f"not a valid {kind.__name__} message: {exc}") from exc


def decode_request(data: bytes) -> ExecutionRequest:
    return _decode(ExecutionRequest, data)


def decode_update(data: bytes) -> Update:
    return _decode(Update, data)
