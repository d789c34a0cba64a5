"""The PostgreSQL store and broker as contract-suite factories: each test gets a fresh
schema on the shared engine, dropped afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sublim.broker.base import Broker
from sublim.store.base import Store
from tests.pg_databases import fresh_schema

#: A safety-net poll this long cannot pass a timing test: only notifications can.
CONTRACT_POLL_INTERVAL = 60.0


@asynccontextmanager
async def postgres_store(tmp_path: Path) -> AsyncIterator[Store]:
    from sublim.store.postgres import PostgresStore

    async with fresh_schema() as url:
        store = PostgresStore.from_url(url)
        await store.open()
        try:
            yield store
        finally:
            await store.close()


@asynccontextmanager
async def postgres_broker(tmp_path: Path) -> AsyncIterator[Broker]:
    from sublim.broker.postgres import PostgresBroker
    from sublim.engines.postgres import dsn_from_url

    async with fresh_schema() as url:
        broker = PostgresBroker(dsn_from_url(url), poll_interval=CONTRACT_POLL_INTERVAL)
        await broker.open()
        try:
            yield broker
        finally:
            await broker.close()


@asynccontextmanager
async def postgres_broker_with_window(tmp_path: Path, window: float) -> AsyncIterator[Broker]:
    """A broker whose URL sets `dedupe_window` (the option is not the driver's)."""
    from sublim.broker.postgres import PostgresBroker

    async with fresh_schema() as url:
        broker = PostgresBroker.from_url(f"{url}&dedupe_window={window}")
        await broker.open()
        try:
            yield broker
        finally:
            await broker.close()
