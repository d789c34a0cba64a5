"""The wire format of the two message kinds: execution requests and execution updates (JSON)."""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

from pydantic import Field, TypeAdapter, ValidationError

from sublim.broker.base import Message
from sublim.core.ids import check_ulid
from sublim.core.model import ExecutionRequest, Model, Update
from sublim.errors import InvalidInput

M = TypeVar("M", bound=Model)


class ControlMessage(Model):
    """An instruction from the API to every execution node, on the control topic."""

    kind: Literal["cancel"] = "cancel"
    execution_id: str
    by: str = "user"


class ClaimAnswers(Model):
    """The recorder's answer to the claims of a batch of updates, by claim token: a granted
    attempt may run; a denied one is a second copy of a request (or of a finished execution)
    and is dropped unrun. Every node hears every answer and takes the tokens it waits on."""

    kind: Literal["claims"] = "claims"
    granted: tuple[str, ...] = ()
    denied: tuple[str, ...] = ()


AnyControl = Annotated[ControlMessage | ClaimAnswers, Field(discriminator="kind")]
_CONTROL: TypeAdapter[ControlMessage | ClaimAnswers] = TypeAdapter(AnyControl)


def control_topic(updates_topic: str) -> str:
    """The topic of control messages, next to the updates topic."""
    return f"{updates_topic}-control"


def control_message(control: ControlMessage | ClaimAnswers) -> Message:
    return Message(data=control.model_dump_json().encode())


def decode_control(data: bytes) -> ControlMessage | ClaimAnswers:
    try:
        return _CONTROL.validate_json(data)
    except ValidationError as exc:
        raise InvalidInput(f"not a valid control message: {exc}") from exc


def request_key(execution_id: str, attempt: int) -> str:
    """The dedupe key of a request: a broker that dedupes holds one message per key."""
    return f"{execution_id}:{attempt}"


def request_message(request: ExecutionRequest) -> Message:
    key = request_key(request.execution_id, request.attempt)
    return Message(data=request.model_dump_json().encode(), key=key)


def update_message(update: Update) -> Message:
    """An update needs no dedupe key: the store ignores a copy of an update it applied."""
    return Message(data=update.model_dump_json().encode(), order=update.execution_id)


def _decode(kind: type[M], data: bytes) -> M:
    try:
        return kind.model_validate_json(data)
    except ValidationError as exc:
        raise InvalidInput(f"not a valid {kind.__name__} message: {exc}") from exc


def decode_request(data: bytes) -> ExecutionRequest:
    request = _decode(ExecutionRequest, data)
    check_ulid("execution id", request.execution_id)
    check_ulid("task id", request.task_id)
    return request


def decode_update(data: bytes) -> Update:
    """The update in `data`; `InvalidInput` if it does not validate or its ids are no ULIDs."""
    update = _decode(Update, data)
    check_ulid("execution id", update.execution_id)
    check_ulid("task id", update.task_id)
    return update
