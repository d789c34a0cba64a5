"""The `dedupe_window` URL option of the brokers that dedupe publishes, and what their
remembered keys cost: they go once the window passed."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from sublim.broker.base import DEFAULT_DEDUPE_WINDOW_SECONDS, Message
from sublim.broker.memory import MemoryBroker
from sublim.broker.sqlite import SqliteBroker
from sublim.errors import InvalidInput
from tests.engine_brokers import fresh_redis_url
from tests.pg_databases import fetch, fresh_schema

WINDOW = 0.3


def test_the_dedupe_window_is_the_default_unless_the_url_sets_it() -> None:
    assert MemoryBroker.from_url("memory://").dedupe_window == DEFAULT_DEDUPE_WINDOW_SECONDS
    assert MemoryBroker.from_url("memory://?dedupe_window=60").dedupe_window == 60.0
    assert SqliteBroker.from_url("sqlite:///x.db?dedupe_window=2.5").dedupe_window == 2.5


@pytest.mark.parametrize("value", ["0", "-1", "soon", "inf", "nan"])
def test_a_dedupe_window_that_is_not_a_positive_number_of_seconds_is_refused(value: str) -> None:
    with pytest.raises(InvalidInput, match="dedupe_window"):
        MemoryBroker.from_url(f"memory://?dedupe_window={value}")
    with pytest.raises(InvalidInput, match="dedupe_window"):
        SqliteBroker.from_url(f"sqlite:///x.db?dedupe_window={value}")


def test_the_postgres_dsn_keeps_the_rest_of_the_url_and_loses_the_dedupe_window() -> None:
    from sublim.broker.postgres import PostgresBroker
    from sublim.store.postgres import PostgresStore

    url = "postgresql://u@db:5432/app?search_path=a,b"
    broker = PostgresBroker.from_url(url.replace("?", "?dedupe_window=30&"))

    assert (broker.dsn, broker.dedupe_window) == (url, 30.0)
    assert PostgresStore.from_url(url).shares_transactions_with(broker)


async def test_sqlite_forgets_keys_older_than_the_window_as_it_publishes(tmp_path: Path) -> None:
    path = tmp_path / "broker.db"
    broker = SqliteBroker.from_url(f"sqlite:///{path}?dedupe_window={WINDOW}")
    await broker.open()
    try:
        await broker.publish("work", [Message(b"", key=f"old-{i}") for i in range(50)])
        await asyncio.sleep(WINDOW * 1.5)
        await broker.publish("work", [Message(b"", key="new")])
    finally:
        await broker.close()

    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT key FROM broker_dedupe").fetchall() == [("new",)]


async def test_postgres_forgets_keys_older_than_the_window_as_it_publishes() -> None:
    from sublim.broker.postgres import PostgresBroker

    async with fresh_schema() as url:
        broker = PostgresBroker.from_url(f"{url}&dedupe_window={WINDOW}")
        await broker.open()
        try:
            await broker.publish("work", [Message(b"", key=f"old-{i}") for i in range(50)])
            await asyncio.sleep(WINDOW * 1.5)
            broker._prune_due_at = 0.0  # as if PRUNE_INTERVAL had passed
            await broker.publish("work", [Message(b"", key="new")])
        finally:
            await broker.close()

        assert await fetch(url, "SELECT key FROM broker_dedupe") == [("new",)]


async def test_redis_keys_of_published_keys_expire_with_the_window() -> None:
    from redis.asyncio import Redis

    from sublim.broker.redis import RedisBroker

    async with fresh_redis_url() as url:
        broker = RedisBroker.from_url(f"{url}&dedupe_window=60")
        await broker.open()
        client = Redis.from_url(url.split("?")[0])
        try:
            await broker.publish("work", [Message(b"", key="k1"), Message(b"")])
            prefix = url.split("prefix=")[1]
            ttl = await client.pttl(f"{prefix}:dedupe:work:k1")
            assert 59_000 < ttl <= 60_000
            assert await client.keys(f"{prefix}:dedupe:*") == [f"{prefix}:dedupe:work:k1".encode()]
        finally:
            await client.aclose()
            await broker.close()
