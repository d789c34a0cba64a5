"""Fuzzing the decoders that read what others send: the push route's envelope decoder and the
datastore's codec. Every input decodes, or raises the error the decoder documents (a 400, or
`InvalidInput` / pydantic's `ValidationError`, which the server answers INVALID_ARGUMENT);
anything else (an OverflowError, a KeyError, ...) would be a 500 or an INTERNAL, a bug."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from sublim.api.updates import parse_envelope
from sublim.core.ids import new_ulid
from sublim.core.messages import decode_update
from sublim.core.model import Update
from sublim.datastore import codec, inbound
from sublim.datastore import datastore_pb2 as pb
from sublim.errors import InvalidInput

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: Per message kind (13 of them): fewer each, about as many in all.
FUZZ_EACH = settings(FUZZ, max_examples=60)
DOCUMENTED = (InvalidInput, ValidationError)

# JSON values, and update-shaped objects whose fields are sometimes right, sometimes not.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
ids = st.sampled_from(["", "..", "a/b", "x\n"]) | st.text(max_size=30) | st.builds(new_ulid)
update_like = st.fixed_dictionaries(
    {},
    optional={
        "execution_id": ids | json_values,
        "task_id": ids | json_values,
        "attempt": st.integers() | json_values,
        "seq": st.integers() | json_values,
        "status": st.sampled_from(["Running", "Passed", "Nope", ""]) | json_values,
        "at": st.sampled_from(["9999-12-31T23:59:59Z", "0001-01-01T00:00:00", "x"]) | json_values,
        "duration_seconds": st.floats() | json_values,
        "result": json_values,
        "max_attempts": st.integers() | json_values,
    },
)


def envelope_of(data: str) -> bytes:
    return json.dumps({"message": {"data": data, "messageId": "1"}}).encode()


def pushed(update: dict[str, Any]) -> bytes:
    return envelope_of(base64.b64encode(json.dumps(update).encode()).decode())


def decodes_or_is_a_400(body: bytes) -> None:
    try:
        decoded: Update | int = parse_envelope(body)
    except HTTPException as exc:
        decoded = exc.status_code
    assert isinstance(decoded, Update) or decoded == 400


# The push route


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_pushed_decode_or_are_a_400(body: bytes) -> None:
    decodes_or_is_a_400(body)


@FUZZ
@given(json_values)
def test_random_json_pushed_decodes_or_is_a_400(value: Any) -> None:
    decodes_or_is_a_400(json.dumps(value).encode())


@FUZZ
@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode()))
def test_random_data_in_a_well_formed_envelope_decodes_or_is_a_400(data: str) -> None:
    decodes_or_is_a_400(envelope_of(data))


@FUZZ
@given(update_like)
def test_update_shaped_objects_in_an_envelope_decode_or_are_a_400(update: dict[str, Any]) -> None:
    decodes_or_is_a_400(pushed(update))


@FUZZ
@given(update_like)
def test_a_decoded_update_always_names_ulids(update: dict[str, Any]) -> None:
    try:
        decoded = decode_update(json.dumps(update).encode())
    except InvalidInput:
        return
    assert inbound.update(decoded) is decoded


# The gRPC codec: messages built field by field from the descriptors, then random bytes


def field_values(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    kinds: dict[int, st.SearchStrategy[Any]] = {
        FieldDescriptor.TYPE_INT64: st.integers(-(2**63), 2**63 - 1),
        FieldDescriptor.TYPE_INT32: st.integers(-(2**31), 2**31 - 1),
        FieldDescriptor.TYPE_DOUBLE: st.floats(),
        FieldDescriptor.TYPE_BOOL: st.booleans(),
        FieldDescriptor.TYPE_STRING: ids,
        FieldDescriptor.TYPE_BYTES: st.binary(max_size=20)
        | json_values.map(lambda v: json.dumps(v).encode()),
        FieldDescriptor.TYPE_ENUM: st.integers(-1, 16),
    }
    if field.message_type is not None:
        return messages(field.message_type, depth + 1)
    return kinds[field.type]


def messages(descriptor: Any, depth: int = 0) -> st.SearchStrategy[Message]:
    """Messages of `descriptor`'s type, each field set or not, nested a few levels deep."""
    cls = _class_of(descriptor)
    if depth > 2:
        return st.just(cls())
    fields = {f.name: _field(f, depth) for f in descriptor.fields}
    return st.fixed_dictionaries({}, optional=fields).map(lambda kw: _built(cls, kw))


def _field(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        key, value = (
            field.message_type.fields_by_name["key"],
            field.message_type.fields_by_name["value"],
        )
        return st.dictionaries(field_values(key, depth), field_values(value, depth), max_size=3)
    if field.is_repeated:
        return st.lists(field_values(field, depth), max_size=2)
    return field_values(field, depth)


def _class_of(descriptor: Descriptor) -> type[Message]:
    cls: type[Message] = getattr(pb, descriptor.name)
    return cls


def _built(cls: type[Message], fields: dict[str, Any]) -> Message:
    message = cls()
    for name, value in fields.items():
        _set(message, name, value)
    return message


def _set(message: Message, name: str, value: Any) -> None:
    target = getattr(message, name)
    if isinstance(value, Message):
        target.CopyFrom(value)
    elif isinstance(value, dict):
        target.update(value)
    elif isinstance(value, list):
        for item in value:
            target.add().CopyFrom(item) if isinstance(item, Message) else target.append(item)
    else:
        setattr(message, name, value)


DECODERS: dict[str, tuple[type[Message], Callable[[Any], Any]]] = {
    "task": (pb.Task, lambda m: inbound.task(codec.task_from_pb(m))),
    "task_patch": (pb.TaskPatch, codec.patch_from_pb),
    "task_query": (pb.TaskQuery, lambda m: inbound.task_query(codec.task_query_from_pb(m))),
    "task_page": (pb.TaskPage, codec.task_page_from_pb),
    "execution": (pb.Execution, lambda m: inbound.execution(codec.execution_from_pb(m))),
    "executions": (pb.Executions, codec.executions_from_pb),
    "execution_query": (
        pb.ExecutionQuery,
        lambda m: inbound.execution_query(codec.execution_query_from_pb(m)),
    ),
    "execution_page": (pb.ExecutionPage, codec.execution_page_from_pb),
    "update": (pb.Update, lambda m: inbound.update(codec.update_from_pb(m))),
    "modifier": (pb.Modifier, lambda m: inbound.modifier(codec.modifier_from_pb(m))),
    "changes": (pb.Changes, codec.changes_from_pb),
    "compare_and_write": (pb.CompareAndWriteRequest, codec.steps_from_pb),
    "stats": (pb.StoreStats, codec.stats_from_pb),
}


def decodes_or_raises_the_documented_error(decode: Callable[[Any], Any], message: Any) -> None:
    with contextlib.suppress(*DOCUMENTED):
        decode(message)


@pytest.mark.parametrize("kind", DECODERS)
def test_built_messages_decode_or_raise_the_documented_error(kind: str) -> None:
    cls, decode = DECODERS[kind]

    @FUZZ_EACH
    @given(messages(cls.DESCRIPTOR))
    def check(message: Message) -> None:
        wire = cls.FromString(message.SerializeToString())
        decodes_or_raises_the_documented_error(decode, wire)

    check()


@pytest.mark.parametrize("kind", DECODERS)
def test_random_bytes_decode_or_raise_the_documented_error(kind: str) -> None:
    cls, decode = DECODERS[kind]

    @FUZZ_EACH
    @given(st.binary(max_size=200))
    def check(data: bytes) -> None:
        try:
            message = cls.FromString(data)
        except DecodeError:
            return  # refused by protobuf itself, before any of our code runs
        decodes_or_raises_the_documented_error(decode, message)

    check()


def test_a_time_beyond_what_datetime_holds_is_invalid_input_not_an_overflow() -> None:
    """What the fuzzer found first: an int64 of microseconds overflowed `datetime` (a gRPC
    INTERNAL with a traceback in the datastore's log)."""
    message = pb.Execution(
        id=new_ulid(), task_id=new_ulid(), topic="T", status=pb.RUNNING, created_at_us=2**63 - 1
    )
    with pytest.raises(InvalidInput, match="out of range"):
        codec.execution_from_pb(message)
