"""What the PostgreSQL store and broker share: the connection URL, a pool, versioned
migrations safe for several processes at once, retrying through engine restarts, and the
statements that publish into the broker's tables (the broker's publish, and the store's
same-database outbox, which publishes in its own transaction).

The driver is asyncpg (see docs/decisions/010-postgres-driver.md): it costs the least CPU
per row of the drivers measured, and CPU per execution is what decides our throughput.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import asyncpg

from sublim.broker.base import DEFAULT_DEDUPE_WINDOW_SECONDS, Message
from sublim.core.redaction import redact
from sublim.errors import AlreadyExists, BackendError, ConfigError, SublimError

log = logging.getLogger("sublim.postgres")

T = TypeVar("T")

#: A migration is a list of SQL statements; migration i brings the schema to version i + 1.
Migration = Sequence[str]

#: The advisory lock every sublim process takes while it migrates a database: several
#: processes starting at once (executors, API replicas) migrate one after the other.
MIGRATION_LOCK = 0x5B11_5C4E

#: Backoff between attempts while the engine is unreachable, and how long to keep trying.
FIRST_RETRY_DELAY = 0.1
MAX_RETRY_DELAY = 2.0
RECONNECT_TIMEOUT = 60.0

_SCHEMES = ("postgresql", "postgres")


def dsn_from_url(url: str) -> str:
    """`postgresql://…` or `postgres://…` (also `postgresql+asyncpg://…`) → a libpq DSN."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0].lower()
    if scheme not in _SCHEMES:
        raise ConfigError(f"expected postgresql://USER@HOST:PORT/DATABASE, got {redact(url)!r}")
    return "postgresql" + url[len(parts.scheme) :]


def address_of(dsn: str) -> str:
    """`host:port/database` of a DSN, for log lines (no user, no password)."""
    parts = urlsplit(dsn)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"


def same_database(first: str, second: str) -> bool:
    """Whether two DSNs name one database (the same-database outbox relies on it)."""
    return _identity(first) == _identity(second)


def _identity(dsn: str) -> tuple[str, int, str, str, str]:
    """Where a DSN's tables are: the query counts too (`?search_path=…` names a schema)."""
    parts = urlsplit(dsn)
    host, port = parts.hostname or "localhost", parts.port or 5432
    return (host, port, parts.path, parts.username or "", parts.query)


async def create_pool(dsn: str, *, max_size: int) -> asyncpg.Pool:
    """A pool that opens connections as needed; broken ones are replaced on next use."""
    return await asyncpg.create_pool(dsn, min_size=1, max_size=max_size, reset=_keep_session)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Give a connection back as it is: our operations leave no session state (no LISTEN,
    no session locks or settings; an open transaction is rolled back by the pool anyway),
    so asyncpg's default reset query would cost one round trip per operation for nothing."""


def schema_of(dsn: str) -> str | None:
    """The schema a DSN's `?search_path=…` names first, if any."""
    search_path = parse_qs(urlsplit(dsn).query).get("search_path", [""])[0]
    first = search_path.split(",")[0].strip().strip('"')
    return first or None


async def migrate(
    conn: asyncpg.Connection,
    component: str,
    migrations: Sequence[Migration],
    *,
    schema: str | None = None,
) -> int:
    """Apply the migrations of `component` not applied yet, in one transaction, holding the
    migration lock. Each component keeps its own version in `sublim_schema`; `schema` (the
    one the URL's search_path names) is created first if it does not exist."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        if schema is not None:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_identifier(schema)}")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS sublim_schema "
            "(component text PRIMARY KEY, version integer NOT NULL)"
        )
        version = await _schema_version(conn, component, len(migrations))
        for statements in migrations[version:]:
            for statement in statements:
                await conn.execute(statement)
        await _set_schema_version(conn, component, len(migrations))
    return len(migrations)


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _schema_version(conn: asyncpg.Connection, component: str, known: int) -> int:
    sql = "SELECT version FROM sublim_schema WHERE component = $1"
    version: int = await conn.fetchval(sql, component) or 0
    if version > known:
        raise ConfigError(
            f"the database's {component} schema is version {version}, newer than this "
            f"sublim knows ({known}): upgrade sublim"
        )
    return version


async def _set_schema_version(conn: asyncpg.Connection, component: str, version: int) -> None:
    await conn.execute(
        "INSERT INTO sublim_schema (component, version) VALUES ($1, $2) "
        "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
        component,
        version,
    )


def is_connection_error(exc: BaseException) -> bool:
    """Whether `exc` means the engine is (for now) out of reach, rather than a refusal."""
    if isinstance(exc, asyncpg.QueryCanceledError):
        return False
    lost = (
        OSError,
        TimeoutError,
        asyncpg.PostgresConnectionError,  # SQLSTATE class 08, and "connection was closed"
        asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting up
    )
    if isinstance(exc, lost):
        return True
    return isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc)


class Reconnecting:
    """Runs operations, retrying them with backoff while the engine is unreachable.

    It logs one warning when an outage starts and one line when the engine answers again.
    An operation retried after a connection broke mid-way may have committed the first time:
    callers make their operations idempotent or tolerate a repeat (see each backend).
    """

    def __init__(self, what: str, dsn: str, *, timeout: float = RECONNECT_TIMEOUT) -> None:
        self.what = what
        self.address = address_of(dsn)
        self.timeout = timeout
        self._down_since: float | None = None

    async def run(self, operation: Callable[[], Awaitable[T]]) -> T:
        delay, deadline = FIRST_RETRY_DELAY, time.monotonic() + self.timeout
        while True:
            try:
                result = await operation()
            except Exception as exc:
                if not is_connection_error(exc) or time.monotonic() + delay > deadline:
                    raise
                self._note_down(exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)
                continue
            self._note_up()
            return result

    def _note_down(self, exc: BaseException, delay: float) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning(
                "%s: PostgreSQL at %s is unreachable (%s: %s); reconnecting with backoff",
                self.what,
                self.address,
                type(exc).__name__,
                exc,
            )
        else:
            log.debug("%s: still unreachable; next attempt in %.1f s", self.what, delay)

    def _note_up(self) -> None:
        if self._down_since is not None:
            down_for = time.monotonic() - self._down_since
            self._down_since = None
            log.warning(
                "%s: PostgreSQL at %s is back after %.1f s", self.what, self.address, down_for
            )


class PooledDatabase:
    """A pool on one database with a component's migrations applied, whose operations retry
    through engine restarts and raise sublim's errors (`error` for the driver's)."""

    def __init__(
        self,
        dsn: str,
        component: str,
        migrations: Sequence[Migration],
        *,
        pool_size: int,
        error: type[BackendError],
    ) -> None:
        self.dsn = dsn
        self._component = component
        self._migrations = migrations
        self._pool_size = pool_size
        self._error = error
        self._pool: asyncpg.Pool | None = None
        self._reconnecting = Reconnecting(component, dsn)

    async def open(self) -> None:
        if self._pool is None:
            self._pool = await self._translating(self._reconnecting.run(self._connect))

    async def _connect(self) -> asyncpg.Pool:
        pool = await create_pool(self.dsn, max_size=self._pool_size)
        try:
            async with pool.acquire() as conn:
                await migrate(conn, self._component, self._migrations, schema=schema_of(self.dsn))
        except BaseException:
            await pool.close()
            raise
        return pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def run(self, operation: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run `operation` on a pooled connection, through engine restarts."""
        pool = self._pool
        if pool is None:
            raise self._error(f"the {self._component} is not open: call open() first")

        async def on_a_connection() -> T:
            async with pool.acquire() as conn:
                return await operation(conn)

        return await self._translating(self._reconnecting.run(on_a_connection))

    async def in_transaction(self, operation: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        async def transaction(conn: asyncpg.Connection) -> T:
            async with conn.transaction():
                return await operation(conn)

        return await self.run(transaction)

    async def _translating(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except asyncpg.UniqueViolationError as exc:
            raise AlreadyExists(f"already exists ({exc.detail or exc})") from exc
        except SublimError:
            raise
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            where = f"postgresql {self._component} at {address_of(self.dsn)}"
            raise self._error(f"{where}: {type(exc).__name__}: {exc}") from exc


def columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows turned into one list per column, to bind each as an array (`unnest($1::t[], …)`)."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width


def unnest(types: Sequence[str], first: int = 1) -> str:
    """`unnest($first::type0[], $first+1::type1[], …)`: a table from one array per column."""
    arrays = ", ".join(f"${first + i}::{kind}[]" for i, kind in enumerate(types))
    return f"unnest({arrays})"


# -- publishing into the broker's tables ---------------------------------------------------


class BrokerTables:
    """Marks a broker whose messages are rows of `broker_messages` in the database at `dsn`:
    a store in the same database publishes there in its own transactions (the outbox)."""

    dsn: str


#: The channel of a subscription: names may be longer than an identifier's 63 bytes.
CHANNEL_SQL = "'sublim_' || left(md5({}), 24)"

PUBLISH = f"""
WITH subscriptions AS (
    SELECT name FROM broker_subscriptions WHERE topic = $1
),
inserted AS (
    INSERT INTO broker_messages (subscription, data, attributes, available_at)
    SELECT s.name, m.data, m.attributes, now()
    FROM subscriptions s
    CROSS JOIN unnest($2::bytea[], $3::jsonb[]) WITH ORDINALITY AS m (data, attributes, n)
    ORDER BY s.name, m.n
)
SELECT pg_notify({CHANNEL_SQL.format("name")}, '') FROM subscriptions
"""
#: Keyed messages: $4 their keys (NULL: none), $5 the window in seconds. The first copy of
#: each key is recorded (in key order, so that concurrent publishes lock rows in one order)
#: unless a row of it is younger than the window; only the unkeyed messages and the recorded
#: copies are inserted. Returns the recorded keys, then one NULL per subscription notified.
PUBLISH_KEYED = f"""
WITH subscriptions AS (
    SELECT name FROM broker_subscriptions WHERE topic = $1
),
sent AS (
    SELECT data, attributes, key COLLATE "C" AS key, n
    FROM unnest($2::bytea[], $3::jsonb[], $4::text[])
        WITH ORDINALITY AS m (data, attributes, key, n)
),
firsts AS (
    SELECT DISTINCT ON (key) key, n FROM sent WHERE key IS NOT NULL ORDER BY key, n
),
recorded AS (
    INSERT INTO broker_dedupe (topic, key, published_at)
    SELECT $1, key, now() FROM firsts ORDER BY key
    ON CONFLICT (topic, key) DO UPDATE SET published_at = excluded.published_at
    WHERE broker_dedupe.published_at <= now() - make_interval(secs => $5)
    RETURNING key
),
kept AS (
    SELECT data, attributes, n FROM sent WHERE key IS NULL
    UNION ALL
    SELECT s.data, s.attributes, s.n
    FROM sent s JOIN firsts f ON f.n = s.n JOIN recorded r ON r.key = f.key
),
inserted AS (
    INSERT INTO broker_messages (subscription, data, attributes, available_at)
    SELECT s.name, k.data, k.attributes, now()
    FROM subscriptions s CROSS JOIN kept k
    ORDER BY s.name, k.n
)
SELECT key FROM recorded
UNION ALL
SELECT NULL FROM subscriptions s, LATERAL (SELECT pg_notify({CHANNEL_SQL.format("s.name")}, '')) n
"""


async def insert_messages(
    conn: asyncpg.Connection,
    topic: str,
    messages: Sequence[Message],
    *,
    dedupe_window: float = DEFAULT_DEDUPE_WINDOW_SECONDS,
) -> set[str]:
    """Publish on `conn`, in its transaction if one is open (the same-database outbox, which
    records its keys too); returns the keys dropped as published within `dedupe_window`."""
    data = [bytes(message.data) for message in messages]
    attributes = [json.dumps(dict(message.attributes)) for message in messages]
    keys = [message.key for message in messages]
    if all(key is None for key in keys):
        await conn.execute(PUBLISH, topic, data, attributes)
        return set()
    rows = await conn.fetch(PUBLISH_KEYED, topic, data, attributes, keys, dedupe_window)
    recorded = {row[0] for row in rows if row[0] is not None}
    copies = Counter(key for key in keys if key is not None)
    return {key for key, count in copies.items() if count > 1 or key not in recorded}
