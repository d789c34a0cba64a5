"""Fresh PostgreSQL state for tests, on the shared engine (which tests never restart):
a fresh database (end-to-end tests, whose processes share it), or, cheaper, a fresh schema
in the database `sublim_tests`, named by the URL's `search_path` (contract tests).

`SUBLIM_TEST_POSTGRES` names another engine (default: postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import threading
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.engines import IN_CI, require_engine

T = TypeVar("T")

ADMIN_URL = os.environ.get("SUBLIM_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def require_postgres(admin_url: str = ADMIN_URL) -> None:
    """The engine and the driver (`sublim[postgres]`): skip without them, fail under CI."""
    parts = urlsplit(admin_url)
    require_engine("PostgreSQL", parts.hostname or "127.0.0.1", parts.port or 5432)
    require_driver()


def require_driver() -> None:
    if importlib.util.find_spec("asyncpg") is None:
        reason = "asyncpg is not installed (pip install 'sublim[postgres]')"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true)")
        pytest.skip(reason)


def database_url(admin_url: str, name: str) -> str:
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))


async def _admin(admin_url: str, statement: str) -> None:
    await fetch(admin_url, statement)


async def fetch(url: str, statement: str) -> list[tuple[Any, ...]]:
    """Run one statement on a connection of its own; its rows as tuples."""
    import asyncpg

    from sublim.engines.postgres import dsn_from_url

    conn = await asyncpg.connect(dsn_from_url(url))
    try:
        return [tuple(row) for row in await conn.fetch(statement)]
    finally:
        await conn.close()


async def create_database(admin_url: str = ADMIN_URL) -> str:
    """A new empty database's URL."""
    name = f"sublim_t_{uuid.uuid4().hex[:12]}"
    await _admin(admin_url, f'CREATE DATABASE "{name}"')
    return database_url(admin_url, name)


async def drop_database(url: str, admin_url: str = ADMIN_URL) -> None:
    name = urlsplit(url).path.lstrip("/")
    await _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


SCHEMAS_DATABASE = "sublim_tests"


async def _ensure_schemas_database(admin_url: str) -> str:
    import asyncpg

    # Made earlier, or just now by a concurrent test run: either way it is there.
    with contextlib.suppress(asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
        await _admin(admin_url, f'CREATE DATABASE "{SCHEMAS_DATABASE}"')
    return database_url(admin_url, SCHEMAS_DATABASE)


@asynccontextmanager
async def fresh_schema(admin_url: str = ADMIN_URL) -> AsyncIterator[str]:
    """The URL of a new empty schema (a database of its own costs ~0.5 s to create)."""
    require_postgres(admin_url)
    database = await _ensure_schemas_database(admin_url)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    await _admin(database, f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{database}?search_path={schema}"
    finally:
        await _admin(database, f'DROP SCHEMA "{schema}" CASCADE')


@asynccontextmanager
async def fresh_database(admin_url: str = ADMIN_URL) -> AsyncIterator[str]:
    require_postgres(admin_url)
    url = await create_database(admin_url)
    try:
        yield url
    finally:
        await drop_database(url, admin_url)


def run_in_own_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a private thread and loop (for sync fixtures, which
    must not touch the loop pytest-asyncio gives the test)."""
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(asyncio.run(coroutine))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]


@contextmanager
def fresh_database_sync(admin_url: str = ADMIN_URL) -> Iterator[str]:
    require_postgres(admin_url)
    url = run_in_own_loop(create_database(admin_url))
    try:
        yield url
    finally:
        run_in_own_loop(drop_database(url, admin_url))
