"""Reaching the real engines tests need: skip with a reason when absent, fail under CI=true."""

from __future__ import annotations

import os
import socket

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_engine(name: str, host: str, port: int) -> None:
    """Skip the test when the engine does not answer; under CI=true, fail instead."""
    if port_open(host, port):
        return
    reason = f"{name} is not reachable at {host}:{port}"
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: .ci/run must start it)")
    pytest.skip(reason)
