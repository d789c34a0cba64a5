"""Fixtures that run each protocol's contract suite against every backend.

A backend joins a suite as one more factory entry: an async context manager that yields an
opened backend with fresh state and closes it afterwards. A factory that needs a real engine
calls `tests.engines.require_engine(...)` first, so that its tests skip (or fail under CI).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from sublim.store.base import Store
from sublim.store.memory import MemoryStore
from sublim.store.sqlite import SqliteStore
from tests.contract.firestore_backends import firestore_store, grpc_firestore_store
from tests.contract.postgres_backends import postgres_store
from tests.datastore_process import grpc_store_in

# Stores

StoreFactory = Callable[[Path], AbstractAsyncContextManager[Store]]


@asynccontextmanager
async def opened_store(store: Store) -> AsyncIterator[Store]:
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def memory_store(tmp_path: Path) -> AbstractAsyncContextManager[Store]:
    return opened_store(MemoryStore.from_url("memory://"))


def sqlite_store(tmp_path: Path) -> AbstractAsyncContextManager[Store]:
    return opened_store(SqliteStore.from_url(f"sqlite:///{tmp_path / 'store.db'}"))


STORE_FACTORIES: dict[str, StoreFactory] = {
    "memory": memory_store,
    "sqlite": sqlite_store,
    "postgresql": postgres_store,  # a fresh schema on the shared engine per test
    "grpc": grpc_store_in,  # a real `sublim datastore` process over SQLite
    "firestore": firestore_store,  # the emulator, a project of its own per test
    "grpc-firestore": grpc_firestore_store,  # `sublim datastore --store firestore://…`
}


@pytest.fixture(params=list(STORE_FACTORIES))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh, opened store of each backend in turn."""
    async with STORE_FACTORIES[request.param](tmp_path) as opened:
        yield opened
