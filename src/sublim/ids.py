"""ULID identifiers: 128 bits, time-ordered, Crockford base32, 26 characters.

Identifiers made by one process are strictly increasing, even within one millisecond, so that
ordering by id is ordering by creation (cursor pagination relies on it).
"""

from __future__ import annotations

import os
import threading
import time

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
