"""The PostgreSQL broker: `postgresql://USER@HOST:PORT/DATABASE` (extra `sublim[postgres]`).

Messages are rows of `broker_messages`, one per subscription of the topic they were published
on. A pull claims up to N due rows in one statement,
`UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED LIMIT n) RETURNING …`, so concurrent
consumers (any process, any machine) skip each other's rows instead of waiting: claiming sets
`available_at` to the end of the lease and a fresh `lease_token`, which the receipt carries; a
receipt whose token was replaced is stale, and acks, nacks and extensions match on it.

Wake-ups: a publish or a nack sends `NOTIFY` on the subscription's channel in its own
transaction (delivered at commit). Each broker keeps one connection that `LISTEN`s on the
channels of the subscriptions it waits on; a waiting pull sleeps until notified, until the
earliest leased or delayed message comes due, or until a slow safety-net poll. When that
connection breaks (engine restart), it reconnects with backoff and wakes every waiter.

Times are the database's clock (`now()`), so consumers on machines with skewed clocks agree.

Publishing is de-duplicated by key (`?dedupe_window=SECONDS` in the URL, taken out before
the DSN reaches the driver): `broker_dedupe` holds (topic, key, published_at), the primary key
on (topic, key). A keyed publish is still one statement: it upserts its keys
(`ON CONFLICT DO UPDATE … WHERE published_at <= now() - window`, so a row older than the
window counts as new) and inserts only the messages whose key it recorded. The same-database
outbox writes its keys with the same statement. Rows record when a key was published, not
until when: the window is the publisher's, which the outbox's store does not know. Rows older
than the window are deleted in bounded batches, at most every `PRUNE_INTERVAL` seconds, by a
statement of its own before a publish.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Sequence

import asyncpg

from sublim.broker import _shared as shared
from sublim.broker._base import BaseBroker
from sublim.broker._shared import Claim, Signals, make_receipt
from sublim.broker.base import (
    DEFAULT_DEDUPE_WINDOW_SECONDS,
    EMBEDDED_MAX_MESSAGE_BYTES,
    Delivery,
    Message,
)
from sublim.engines import postgres as pg_db
from sublim.errors import BrokerError

log = logging.getLogger("sublim.broker.postgres")

POOL_SIZE = 10
#: Seconds between safety-net polls of a waiting pull (notifications do the real work).
POLL_INTERVAL = 2.0
#: Seconds between two prunes of `broker_dedupe` by one broker (sooner when one was full) ...
PRUNE_INTERVAL = 5.0
#: ... and the rows one prune deletes at most.
PRUNE_LIMIT = 5000

MIGRATIONS: list[pg_db.Migration] = [
    (
        "CREATE TABLE broker_subscriptions (name text PRIMARY KEY, topic text NOT NULL)",
        "CREATE INDEX broker_subscriptions_by_topic ON broker_subscriptions (topic)",
        """CREATE TABLE broker_messages (
            id bigserial PRIMARY KEY,
            subscription text NOT NULL,
            data bytea NOT NULL,
            attributes jsonb NOT NULL,
            available_at timestamptz NOT NULL,
            lease_token text,
            deliveries integer NOT NULL DEFAULT 0,
            published_at timestamptz NOT NULL DEFAULT now()
        )""",
        # Claims walk a subscription in id order (first in, first out) ...
        "CREATE INDEX broker_messages_by_subscription ON broker_messages (subscription, id)",
        # ... and a waiting pull asks when the next leased or delayed message comes due.
        "CREATE INDEX broker_messages_due ON broker_messages (subscription, available_at)",
    ),
    (
        # The keys published within the dedupe window (the publisher's: a row says when);
        # compared bytewise ("C"), which is all a key needs and the cheapest.
        """CREATE TABLE broker_dedupe (
            topic text COLLATE "C" NOT NULL,
            key text COLLATE "C" NOT NULL,
            published_at timestamptz NOT NULL,
            PRIMARY KEY (topic, key)
        )""",
        "CREATE INDEX broker_dedupe_by_age ON broker_dedupe (published_at)",
    ),
]

#: Deletes up to $2 keys older than $1 seconds, skipping rows a publish is upserting.
_PRUNE_KEYS = """
DELETE FROM broker_dedupe WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM broker_dedupe WHERE published_at <= now() - make_interval(secs => $1)
    LIMIT $2 FOR UPDATE SKIP LOCKED
))
"""
_DROP_SUBSCRIPTION = """
WITH dropped AS (DELETE FROM broker_messages WHERE subscription = $1)
DELETE FROM broker_subscriptions WHERE name = $1
"""
_CLAIM = """
UPDATE broker_messages
SET available_at = now() + make_interval(secs => $2), lease_token = $3,
    deliveries = deliveries + 1
WHERE id IN (
    SELECT id FROM broker_messages
    WHERE subscription = $1 AND available_at <= now()
    ORDER BY id LIMIT $4
    FOR UPDATE SKIP LOCKED
)
RETURNING id, data, attributes, deliveries
"""
_NEXT_DUE = """
SELECT
    EXISTS (SELECT 1 FROM broker_subscriptions WHERE name = $1),
    EXTRACT(EPOCH FROM (SELECT MIN(available_at) FROM broker_messages WHERE subscription = $1)
        - now())
"""
#: A batch of receipts as a table, and the messages still held under their leases.
_RECEIPTS = "unnest($2::bigint[], $3::text[]) AS r (id, token)"
_STILL_HELD = "m.id = r.id AND m.lease_token = r.token AND m.subscription = $1"
_ACK = f"DELETE FROM broker_messages m USING {_RECEIPTS} WHERE {_STILL_HELD}"
_NACK = f"""
WITH released AS (
    UPDATE broker_messages m SET available_at = now() + make_interval(secs => $4),
        lease_token = NULL
    FROM {_RECEIPTS} WHERE {_STILL_HELD}
    RETURNING m.id
)
SELECT pg_notify({pg_db.CHANNEL_SQL.format("$1::text")}, '') WHERE EXISTS (SELECT 1 FROM released)
"""
_EXTEND = f"""
UPDATE broker_messages m SET available_at = now() + make_interval(secs => $4)
FROM {_RECEIPTS} WHERE {_STILL_HELD}
RETURNING m.id, m.lease_token
"""


def channel_of(subscription: str) -> str:
    """The NOTIFY channel of a subscription (what `pg_db.CHANNEL_SQL` computes in the database)."""
    return "sublim_" + hashlib.md5(subscription.encode()).hexdigest()[:24]


async def _ensure_subscription(conn: asyncpg.Connection, topic: str, subscription: str) -> str:
    """The topic of the subscription, which existed already or was just created."""
    await conn.execute(
        "INSERT INTO broker_subscriptions (name, topic) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        subscription,
        topic,
    )
    existing: str = await conn.fetchval(
        "SELECT topic FROM broker_subscriptions WHERE name = $1", subscription
    )
    return existing


def _receipt_arrays(receipts: Sequence[str]) -> tuple[list[int], list[str]]:
    parsed = [shared.parse_numeric_receipt(receipt) for receipt in receipts]
    return [message_id for message_id, _ in parsed], [token for _, token in parsed]


class _Listener:
    """One connection that LISTENs on the channels of the subscriptions this broker waits on,
    reconnecting with backoff when it breaks."""

    def __init__(self, dsn: str, signals: Signals) -> None:
        self._dsn = dsn
        self._signals = signals
        self._channels: dict[str, str] = {}  # channel -> subscription
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()
        self._reconnecting = pg_db.Reconnecting("broker listener", dsn)
        self._reconnect_task: asyncio.Task[None] | None = None
        self._closed = False

    async def listen(self, subscription: str) -> None:
        """LISTEN on the subscription's channel from now on (a no-op when already done)."""
        channel = channel_of(subscription)
        if channel in self._channels and self._conn is not None:
            return
        async with self._lock:
            self._channels[channel] = subscription
            conn = await self._connection()
            await conn.add_listener(channel, self._on_notification)

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await self._reconnecting.run(self._connect)
        return self._conn

    async def _connect(self) -> asyncpg.Connection:
        conn = await asyncpg.connect(self._dsn)
        conn.add_termination_listener(self._on_termination)
        for channel in self._channels:
            await conn.add_listener(channel, self._on_notification)
        return conn

    def _on_notification(self, _conn: object, _pid: int, channel: str, _payload: str) -> None:
        subscription = self._channels.get(channel)
        if subscription is not None:
            self._signals.notify([subscription])

    def _on_termination(self, _conn: object) -> None:
        if self._closed:
            return
        log.warning("the broker's LISTEN connection broke; reconnecting")
        self._conn = None
        self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        """Listen again, then wake every waiter: a notification may have been missed."""
        try:
            async with self._lock:
                await self._connection()
        except Exception as exc:
            log.warning("the broker's LISTEN connection is still down (%s); pulls poll", exc)
        self._signals.notify_all()

    async def close(self) -> None:
        self._closed = True
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            await conn.close()


class PostgresBroker(BaseBroker, pg_db.BrokerTables):
    """A durable broker in a PostgreSQL database, which it may share with the store."""

    dedupes_publish = True
    max_message_bytes = EMBEDDED_MAX_MESSAGE_BYTES

    def __init__(
        self,
        dsn: str,
        *,
        pool_size: int = POOL_SIZE,
        poll_interval: float = POLL_INTERVAL,
        dedupe_window: float = DEFAULT_DEDUPE_WINDOW_SECONDS,
    ) -> None:
        self.dsn = dsn
        self.dedupe_window = shared.check_dedupe_window(dedupe_window)
        self._poll_interval = poll_interval
        self._prune_due_at = 0.0
        self._db = pg_db.PooledDatabase(
            dsn, "broker", MIGRATIONS, pool_size=pool_size, error=BrokerError
        )
        self._signals = Signals()
        self._listener = _Listener(dsn, self._signals)

    @classmethod
    def from_url(cls, url: str) -> PostgresBroker:
        """`postgresql://…`, optionally with `dedupe_window=SECONDS` in its query; the other
        options go to libpq."""
        options = shared.UrlOptions(url, "postgresql")
        dedupe_window = shared.take_dedupe_window(options)
        return cls(pg_db.dsn_from_url(options.for_driver()), dedupe_window=dedupe_window)

    async def _open(self) -> None:
        await self._db.open()

    async def _close(self) -> None:
        await self._db.close()
        self._signals.notify_all()  # waiting pulls wake up to find the broker closed
        await self._listener.close()

    async def _ensure_subscription(self, topic: str, subscription: str, ephemeral: bool) -> str:
        return await self._db.run(lambda conn: _ensure_subscription(conn, topic, subscription))

    async def _drop_subscription(self, subscription: str) -> None:
        await self._db.run(lambda conn: conn.execute(_DROP_SUBSCRIPTION, subscription))

    async def _publish(self, topic: str, messages: Sequence[Message]) -> set[str]:
        if time.monotonic() >= self._prune_due_at:
            await self._prune_keys()
        window = self.dedupe_window
        return await self._db.run(
            lambda conn: pg_db.insert_messages(conn, topic, messages, dedupe_window=window)
        )

    async def _prune_keys(self) -> None:
        """Delete keys older than the window, a bounded batch (and soon another one if it
        was full). Any publish does it, keyed or not: the outbox records keys but never
        prunes. A failure is only logged: the publish goes on, the next one prunes again."""
        self._prune_due_at = time.monotonic() + PRUNE_INTERVAL
        try:
            status = await self._db.run(
                lambda conn: conn.execute(_PRUNE_KEYS, self.dedupe_window, PRUNE_LIMIT)
            )
        except BrokerError as exc:
            log.warning("cannot delete old dedupe keys (%s); a later publish tries again", exc)
            return
        if status == f"DELETE {PRUNE_LIMIT}":
            self._prune_due_at = 0.0

    async def _pull(
        self, subscription: str, max_messages: int, lease: float, wait: float
    ) -> list[Delivery]:
        if wait > 0:
            await self._listen(subscription)

        async def claim() -> Claim:
            return await self._claim(subscription, max_messages, lease)

        signal = self._signals.of(subscription)
        poll_interval = self._poll_interval if wait > 0 else math.inf
        return await shared.pull_waiting(signal, claim, wait=wait, poll_interval=poll_interval)

    async def _listen(self, subscription: str) -> None:
        try:
            await self._listener.listen(subscription)
        except Exception as exc:  # the safety-net poll still serves this pull
            log.warning("cannot LISTEN for %s (%s); polling", subscription, exc)

    async def _claim(self, subscription: str, max_messages: int, lease: float) -> Claim:
        token = shared.new_lease_token()

        async def claim(conn: asyncpg.Connection) -> Claim:
            rows = await conn.fetch(_CLAIM, subscription, lease, token, max_messages)
            if rows:
                deliveries = sorted(rows, key=lambda r: r[0])
                return Claim([shared.row_delivery(row, token) for row in deliveries])
            exists, next_due = await conn.fetchrow(_NEXT_DUE, subscription)
            if not exists:
                raise BrokerError(f"no subscription named {subscription!r}")
            return Claim([], None if next_due is None else float(next_due))

        return await self._db.run(claim)

    async def _ack(self, subscription: str, receipts: Sequence[str]) -> None:
        ids, tokens = _receipt_arrays(receipts)
        await self._db.run(lambda conn: conn.execute(_ACK, subscription, ids, tokens))

    async def _nack(self, subscription: str, receipts: Sequence[str], delay: float) -> None:
        ids, tokens = _receipt_arrays(receipts)
        await self._db.run(lambda conn: conn.execute(_NACK, subscription, ids, tokens, delay))

    async def _extend(self, subscription: str, receipts: Sequence[str], lease: float) -> set[str]:
        ids, tokens = _receipt_arrays(receipts)
        rows = await self._db.run(
            lambda conn: conn.fetch(_EXTEND, subscription, ids, tokens, lease)
        )
        held = {make_receipt(str(row[0]), row[1]) for row in rows}
        return set(receipts) - held
