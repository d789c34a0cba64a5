"""PostgreSQL migrations: several processes may open one database at once; a newer schema
is refused; the URL's search_path schema is created."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sublim.errors import ConfigError
from tests.pg_databases import fetch, fresh_schema


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async with fresh_schema() as made:  # skips (or fails under CI) without engine or driver
        yield made


def store_of(url: str) -> Any:
    from sublim.store.postgres import PostgresStore

    return PostgresStore.from_url(url)


def broker_of(url: str) -> Any:
    from sublim.broker.postgres import PostgresBroker

    return PostgresBroker.from_url(url)


def latest_versions() -> dict[str, int]:
    from sublim.broker import postgres as broker
    from sublim.store import postgres as store

    return {"store": len(store.MIGRATIONS), "broker": len(broker.MIGRATIONS)}


async def versions(url: str) -> dict[str, int]:
    rows = await fetch(url, "SELECT component, version FROM sublim_schema")
    return {component: version for component, version in rows}


async def test_stores_and_brokers_opening_one_database_at_once_all_migrate_it_once(
    url: str,
) -> None:
    opened = [store_of(url) for _ in range(4)] + [broker_of(url) for _ in range(4)]

    await asyncio.gather(*(backend.open() for backend in opened))

    assert await versions(url) == latest_versions()
    await asyncio.gather(*(backend.close() for backend in opened))


async def test_a_schema_newer_than_this_sublim_is_refused(url: str) -> None:
    store = store_of(url)
    await store.open()
    await store.close()
    await fetch(url, "UPDATE sublim_schema SET version = 99 WHERE component = 'store'")

    with pytest.raises(ConfigError, match="upgrade sublim"):
        await store_of(url).open()


async def test_the_schema_the_url_names_is_created_when_missing(url: str) -> None:
    nested = url.replace("search_path=", "search_path=inner_")
    store = store_of(nested)
    await store.open()
    await store.close()

    assert await versions(nested) == {"store": latest_versions()["store"]}
    await fetch(nested, f"DROP SCHEMA {nested.rsplit('=', 1)[1]} CASCADE")
