"""How sublim's errors cross the wire: a gRPC status code, plus trailing metadata naming the
error class (`sublim-error`) and, for a missing object, its id (`sublim-id`).

The server turns an exception into `(code, details, metadata)`; the client turns a failed
call back into the same class of the sublim error tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from pydantic import ValidationError

from sublim.errors import (
    AlreadyExists,
    BackendError,
    Conflict,
    ExecutionNotFound,
    IllegalTransition,
    InvalidInput,
    NotFound,
    StoreError,
    SublimError,
    TaskNotFound,
)

ERROR_KEY = "sublim-error"
ID_KEY = "sublim-id"
Metadata = tuple[tuple[str, str], ...]


class StaleRead(Conflict):
    """The executions changed between a client's read and its compare-and-write."""


#: The gRPC status of each error class; the first class an exception is an instance of wins.
_CODES: Sequence[tuple[type[Exception], Any]] = (
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (StaleRead, grpc.StatusCode.ABORTED),
    (Conflict, grpc.StatusCode.FAILED_PRECONDITION),
    (InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (ValidationError, grpc.StatusCode.INVALID_ARGUMENT),
    (BackendError, grpc.StatusCode.UNAVAILABLE),
)


def status_of(exc: Exception) -> tuple[Any, str, Metadata]:
    """The gRPC code, details and trailing metadata that report `exc` (INTERNAL if unknown)."""
    code = next((code for cls, code in _CODES if isinstance(exc, cls)), grpc.StatusCode.INTERNAL)
    return code, str(exc) or type(exc).__name__, _metadata_of(exc)


def _metadata_of(exc: Exception) -> Metadata:
    kind = ((ERROR_KEY, type(exc).__name__),)
    if isinstance(exc, TaskNotFound):
        return (*kind, (ID_KEY, exc.task_id))
    if isinstance(exc, ExecutionNotFound):
        return (*kind, (ID_KEY, exc.execution_id))
    return kind


def error_of(exc: grpc.aio.AioRpcError, target: str) -> SublimError:
    """The sublim error that a failed call to the datastore at `target` reports."""
    code, details = exc.code(), exc.details() or ""
    metadata = dict(exc.trailing_metadata() or ())
    kind, ident = str(metadata.get(ERROR_KEY, "")), str(metadata.get(ID_KEY, ""))
    if code == grpc.StatusCode.NOT_FOUND:
        return ExecutionNotFound(ident) if kind == "ExecutionNotFound" else TaskNotFound(ident)
    return _simple_error(code, kind, details) or StoreError(
        f"datastore at {target}: {code.name}: {details}"
    )


def _simple_error(code: Any, kind: str, details: str) -> SublimError | None:
    if code == grpc.StatusCode.ALREADY_EXISTS:
        return AlreadyExists(details)
    if code == grpc.StatusCode.ABORTED:
        return StaleRead(details)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return IllegalTransition(details) if kind == "IllegalTransition" else Conflict(details)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidInput(details)
    return None
