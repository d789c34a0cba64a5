"""The serving processes run on uvloop where it is installed, on asyncio's loop when asked."""

from __future__ import annotations

import asyncio
import sys

import pytest
import uvloop

from sublim.core import runner
from sublim.errors import ConfigError


async def loop_type() -> type:
    return type(asyncio.get_running_loop())


def test_auto_runs_on_uvloop_when_it_is_installed() -> None:
    assert runner.run(loop_type(), "auto") is uvloop.Loop


def test_asyncio_runs_on_the_standard_loop() -> None:
    assert not issubclass(runner.run(loop_type(), "asyncio"), uvloop.Loop)


def test_auto_runs_on_the_standard_loop_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now fails
    assert not issubclass(runner.run(loop_type(), "auto"), uvloop.Loop)


def test_asking_for_uvloop_without_it_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)
    coroutine = loop_type()
    with pytest.raises(ConfigError, match="uvloop is not installed"):
        runner.run(coroutine, "uvloop")
    coroutine.close()


def test_run_returns_what_the_coroutine_returns() -> None:
    async def answer() -> int:
        return 42

    assert runner.run(answer(), "auto") == 42
