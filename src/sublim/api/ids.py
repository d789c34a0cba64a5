"""Ids in paths, queries and bodies: ULIDs, checked by the core's rule (`sublim.core.ids`).

A malformed id is a 422 whose `errors` name the field (`["path", "task_id"]`), never a 404:
"no such task" is for well-formed ids that name nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator, Field

from sublim.core.ids import ULID_PATTERN, check_ulid
from sublim.errors import InvalidInput

ULID_EXAMPLE = "01J9ZQ8M4T4B0F7W3X2Y1V6N5K"


def _valid_ulid(value: str) -> str:
    try:
        return check_ulid("id", value)
    except InvalidInput as exc:
        raise ValueError(str(exc)) from exc


#: A ULID in a body or a query.
Ulid = Annotated[
    str,
    Field(pattern=ULID_PATTERN, examples=[ULID_EXAMPLE], description="a ULID"),
    AfterValidator(_valid_ulid),
]
TaskIdPath = Annotated[
    str,
    Path(pattern=ULID_PATTERN, description="the task's id, a ULID"),
    AfterValidator(_valid_ulid),
]
ExecutionIdPath = Annotated[
    str,
    Path(pattern=ULID_PATTERN, description="the execution's id, a ULID"),
    AfterValidator(_valid_ulid),
]
