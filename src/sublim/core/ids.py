"""ULID identifiers: 128 bits, time-ordered, Crockford base32, 26 characters.

Identifiers made by one process are strictly increasing, even within one millisecond, so that
ordering by id is ordering by creation (cursor pagination relies on it).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterable

from sublim.errors import InvalidInput

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_BITS = 80
_lock = threading.Lock()
_last = 0


def _encode(value: int) -> str:
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_ulid() -> str:
    """Return a new ULID, greater than every ULID this process returned before."""
    global _last
    millis = time.time_ns() // 1_000_000
    candidate = (millis << _RANDOM_BITS) | int.from_bytes(os.urandom(10), "big")
    with _lock:
        if candidate <= _last:
            candidate = _last + 1
        _last = candidate
    return _encode(candidate)


#: A ULID as this system writes it: 26 characters of upper-case Crockford base32 (no I, L, O
#: or U), the first one 0-7 (128 bits). For OpenAPI documents and other regex dialects.
ULID_PATTERN = r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$"
_ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")


def is_ulid(value: str) -> bool:
    return _ULID.fullmatch(value) is not None


def check_ulid(kind: str, value: str) -> str:
    """`value` itself if it is a ULID, else `InvalidInput` naming `kind` (e.g. "task id").

    Every boundary (HTTP, the push route, gRPC, stores that address documents by id) checks
    ids with this one rule, so that an id never carries '/', '..' or a newline inward."""
    if not is_ulid(value):
        raise InvalidInput(f"invalid {kind} {_shown(value)}: expected a ULID (26 characters)")
    return value


def check_ulids(kind: str, values: Iterable[str]) -> list[str]:
    return [check_ulid(kind, value) for value in values]


def _shown(value: object) -> str:
    """`value` for a message: its repr, cut short (an attacker picks its length)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
