"""Choosing an embedded store by URL."""

from __future__ import annotations

import pytest

from sublim.core.backends import store_from_url
from sublim.errors import ConfigError
from sublim.store.memory import MemoryStore
from sublim.store.sqlite import SqliteStore


def test_a_memory_url_gives_a_memory_store() -> None:
    assert isinstance(store_from_url("memory://"), MemoryStore)


def test_each_memory_store_has_its_own_state() -> None:
    assert store_from_url("memory://") is not store_from_url("memory://")


def test_a_memory_url_with_a_location_is_refused() -> None:
    with pytest.raises(ConfigError):
        MemoryStore.from_url("memory://somewhere")


@pytest.mark.parametrize(
    ("url", "path"),
    [("sqlite:///relative/store.db", "relative/store.db"), ("sqlite:////abs/s.db", "/abs/s.db")],
)
def test_a_sqlite_url_gives_a_sqlite_store_on_that_path(url: str, path: str) -> None:
    store = store_from_url(url)
    assert isinstance(store, SqliteStore)
    assert store.path == path
