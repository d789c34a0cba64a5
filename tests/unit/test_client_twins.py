"""`Client` and `AsyncClient` are twins: the same public methods, parameters, defaults, types
(an awaited or async-iterated answer read as its sync form) and docstrings, so that they cannot
drift apart. See docs/decisions/026-client-twins.md."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from sublim.client import aio, sync

#: The async twin's names for what the sync twin calls otherwise.
RENAMED = {"aclose": "close", "__aenter__": "__enter__", "__aexit__": "__exit__"}
#: Methods with a leading underscore that belong to the public surface all the same.
DUNDERS = {"__init__", "__enter__", "__exit__", "__aenter__", "__aexit__"}


def sync_form(annotation: str) -> str:
    """The annotation as the sync twin writes it: `Awaitable[X]` is `X`, `AsyncIterator` is
    `Iterator`, `AsyncClient` is `Client`."""
    text = re.sub(r"\bAsyncIterator\b", "Iterator", annotation)
    text = re.sub(r"\bAsyncClient\b", "Client", text)
    while (found := re.search(r"\bAwaitable\[", text)) is not None:
        text = _unwrapped(text, found.start(), found.end())
    return text


def _unwrapped(text: str, start: int, inner: int) -> str:
    depth, end = 1, inner
    while depth:
        depth += {"[": 1, "]": -1}.get(text[end], 0)
        end += 1
    return text[:start] + text[inner : end - 1] + text[end:]


def public_members(owner: type | ModuleType) -> dict[str, Callable[..., Any]]:
    """The public functions, methods and properties `owner` defines itself, by sync name."""
    members: dict[str, Callable[..., Any]] = {}
    for name, member in vars(owner).items():
        if name.startswith("_") and name not in DUNDERS:
            continue
        if isinstance(owner, ModuleType) and getattr(member, "__module__", None) != owner.__name__:
            continue
        function = member.fget if isinstance(member, property) else member
        if callable(function) and not isinstance(function, type):
            members[RENAMED.get(name, name)] = function
    return members


def outline(function: Callable[..., Any]) -> dict[str, Any]:
    """What a caller sees of `function`, in the sync twin's words."""
    signature = inspect.signature(function, eval_str=False)
    parameters = [
        (p.name, p.kind, repr(p.default), sync_form(str(p.annotation)))
        for p in signature.parameters.values()
    ]
    answer = sync_form(str(signature.return_annotation))
    return {"parameters": parameters, "returns": answer, "doc": inspect.getdoc(function)}


def drift(sync_side: type | ModuleType, async_side: type | ModuleType) -> list[str]:
    """Every way in which the async twin differs from the sync twin (empty: none)."""
    ours, theirs = public_members(sync_side), public_members(async_side)
    found = [f"only in {sync_side.__name__}: {name}" for name in sorted(ours.keys() - theirs)]
    found += [f"only in {async_side.__name__}: {name}" for name in sorted(theirs.keys() - ours)]
    for name in sorted(ours.keys() & theirs):
        mine, other = outline(ours[name]), outline(theirs[name])
        found += [f"{name}: {key} differs" for key in mine if mine[key] != other[key]]
    return found


def awaitable(function: Callable[..., Any]) -> bool:
    returns = str(inspect.signature(function, eval_str=False).return_annotation)
    return (
        inspect.iscoroutinefunction(function)
        or inspect.isasyncgenfunction(function)
        or returns.startswith("AsyncIterator")
    )


def test_the_two_clients_have_the_same_methods_parameters_types_and_docstrings() -> None:
    assert drift(sync.Client, aio.AsyncClient) == []


def test_the_two_client_modules_have_the_same_public_helpers() -> None:
    assert drift(sync, aio) == []
    assert "follow_pages" in public_members(sync)


def test_every_public_method_of_the_clients_says_what_it_does() -> None:
    undocumented = [
        f"{owner.__name__}.{name}"
        for owner in (sync.Client, aio.AsyncClient)
        for name, function in public_members(owner).items()
        if name not in DUNDERS and not inspect.getdoc(function)
    ]
    assert undocumented == []


def test_every_call_of_the_async_client_is_awaited_and_none_of_the_sync_client_is() -> None:
    calls = set(public_members(aio.AsyncClient)) - {"url", "__init__"}
    members = public_members(aio.AsyncClient)
    assert [name for name in sorted(calls) if not awaitable(members[name])] == []
    assert [name for name, f in public_members(sync.Client).items() if awaitable(f)] == []


def test_an_awaited_annotation_reads_as_its_sync_form() -> None:
    nested = "Callable[[str | None], Awaitable[Page[T]]]"
    assert sync_form(nested) == "Callable[[str | None], Page[T]]"
    assert sync_form("AsyncIterator[AsyncClient]") == "Iterator[Client]"


class _Twin:
    def fetch(self, key: str, *, limit: int = 50) -> list[str]:
        """The items."""
        return []


class _AsyncTwin:
    async def fetch(self, key: str, *, limit: int = 50) -> list[str]:
        """The items."""
        return []


class _DriftedDoc:
    async def fetch(self, key: str, *, limit: int = 50) -> list[str]:
        """The items, awaited."""
        return []


class _DriftedDefault:
    async def fetch(self, key: str, *, limit: int = 10) -> list[str]:
        """The items."""
        return []

    async def extra(self) -> None:
        """Only here."""


def test_twins_that_match_show_no_drift() -> None:
    assert drift(_Twin, _AsyncTwin) == []


@pytest.mark.parametrize(
    ("drifted", "expected"),
    [
        (_DriftedDoc, ["fetch: doc differs"]),
        (_DriftedDefault, ["only in _DriftedDefault: extra", "fetch: parameters differs"]),
    ],
)
def test_a_twin_that_drifted_is_caught(drifted: type, expected: list[str]) -> None:
    assert drift(_Twin, drifted) == expected
