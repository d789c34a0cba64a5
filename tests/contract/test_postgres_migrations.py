"""PostgreSQL migrations: several processes may open one database at once; a newer schema
is refused; the URL's search_path schema is created."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from sublim.broker.postgres import MIGRATIONS as BROKER_MIGRATIONS
from sublim.broker.postgres import PostgresBroker
from sublim.errors import ConfigError
from sublim.pg_db import dsn_from_url
from sublim.store.postgres import MIGRATIONS, PostgresStore
from tests.pg_databases import fresh_schema


async def versions(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn_from_url(url))
    try:
        rows = await conn.fetch("SELECT component, version FROM sublim_schema")
    finally:
        await conn.close()
    return {row[0]: row[1] for row in rows}


async def test_stores_and_brokers_opening_one_database_at_once_all_migrate_it_once() -> None:
    async with fresh_schema() as url:
        opened = [PostgresStore.from_url(url) for _ in range(4)]
        opened += [PostgresBroker.from_url(url) for _ in range(4)]

        await asyncio.gather(*(backend.open() for backend in opened))

        assert await versions(url) == {"store": len(MIGRATIONS), "broker": len(BROKER_MIGRATIONS)}
        await asyncio.gather(*(backend.close() for backend in opened))


async def test_a_schema_newer_than_this_sublim_is_refused() -> None:
    async with fresh_schema() as url:
        store = PostgresStore.from_url(url)
        await store.open()
        await store.close()
        conn = await asyncpg.connect(dsn_from_url(url))
        await conn.execute("UPDATE sublim_schema SET version = 99 WHERE component = 'store'")
        await conn.close()

        with pytest.raises(ConfigError, match="upgrade sublim"):
            await PostgresStore.from_url(url).open()


async def test_the_schema_the_url_names_is_created_when_missing() -> None:
    async with fresh_schema() as url:
        nested = url.replace("search_path=", "search_path=inner_")
        store = PostgresStore.from_url(nested)
        await store.open()
        await store.close()

        assert await versions(nested) == {"store": len(MIGRATIONS)}
        conn = await asyncpg.connect(dsn_from_url(nested))
        await conn.execute(f"DROP SCHEMA {nested.rsplit('=', 1)[1]} CASCADE")
        await conn.close()
