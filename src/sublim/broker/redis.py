"""The Redis broker: `redis://host:port/db?prefix=sublim` (Redis Streams + consumer groups).

Each subscription is a stream read through one consumer group; a topic is a set naming its
subscriptions, and publishing appends to all of their streams in one Lua script, so fan-out
is atomic. Leases live next to the stream: a ZSET of deadlines and a HASH of lease tokens per
entry, so each delivery has its own lease length, and a receipt (entry id + token) goes stale
as soon as the entry is handed out again. Claims, acks, nacks and extensions are Lua scripts
(`sublim.broker._redis_lua`); waiting pullers block in `XREAD` on the stream and on a small
wake stream that nacks write to, so the engine wakes them. Publishing is de-duplicated by key
in the same script: `SET <prefix>:dedupe:<topic>:<key> 1 NX PX <dedupe_window>` per keyed
message, which is appended only if that set the key. See docs/engines/redis.md.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript

from sublim.broker import _redis_lua as lua
from sublim.broker import _shared as shared
from sublim.broker._base import BaseBroker, not_open
from sublim.broker._shared import Claim, make_receipt, parse_receipt
from sublim.broker.base import DEFAULT_DEDUPE_WINDOW_SECONDS, Delivery, Message
from sublim.errors import BrokerError, InvalidInput

log = logging.getLogger("sublim.broker.redis")

T = TypeVar("T")

GROUP = "sublim"
#: One consumer name for everyone: leases are tracked by the broker's own keys, not by owner.
CONSUMER = "sublim"
DEFAULT_PREFIX = "sublim"
#: A stream this long holds that much unacknowledged work: worth a warning.
DEFAULT_BACKLOG_WARNING = 1_000_000
#: Messages per publish script, receipts per ack script: a script blocks the server meanwhile.
SCRIPT_BATCH = 500
#: A blocked XREAD returns at least this often, so a dead connection is noticed.
MAX_BLOCK_SECONDS = 10.0
SOCKET_TIMEOUT = MAX_BLOCK_SECONDS + 20.0
BACKLOG_WARNING_INTERVAL = 60.0

_PREFIX = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_CONNECTION_ERRORS = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)


@dataclass(frozen=True, slots=True)
class RedisOptions:
    """The broker's own options, taken out of the URL's query before redis-py sees it."""

    url: str
    prefix: str = DEFAULT_PREFIX
    backlog_warning: int = DEFAULT_BACKLOG_WARNING
    #: Seconds a published key is remembered (`dedupe_window`).
    dedupe_window: float = DEFAULT_DEDUPE_WINDOW_SECONDS

    def __post_init__(self) -> None:
        shared.check_dedupe_window(self.dedupe_window)


def parse_url(url: str) -> RedisOptions:
    """`prefix`, `backlog_warning` and `dedupe_window`; the other options go to redis-py."""
    options = shared.UrlOptions(url, "redis")
    prefix = options.take("prefix", _prefix, DEFAULT_PREFIX)
    backlog_warning = options.take("backlog_warning", int, DEFAULT_BACKLOG_WARNING)
    dedupe_window = shared.take_dedupe_window(options)
    return RedisOptions(options.for_driver(), prefix, backlog_warning, dedupe_window)


def _prefix(prefix: str) -> str:
    if not _PREFIX.match(prefix):
        raise InvalidInput(f"invalid redis key prefix {prefix!r}: letters, digits, '_.-'")
    return prefix


@dataclass(frozen=True, slots=True)
class Keys:
    """The Redis keys of one subscription."""

    stream: str
    leases: str
    tokens: str
    wake: str


@dataclass(frozen=True, slots=True)
class Scripts:
    """The Lua scripts, registered with the client (redis-py loads them again after a
    restart of Redis emptied its script cache)."""

    ensure: AsyncScript
    drop: AsyncScript
    publish: AsyncScript
    pull: AsyncScript
    ack: AsyncScript
    nack: AsyncScript
    extend: AsyncScript


@dataclass(frozen=True, slots=True)
class Claimed(Claim):
    """What one run of the pull script found (`retry_in`: until the earliest lease passes),
    and the last ids of the stream and its wake stream, to block in `XREAD` after them."""

    last_stream_id: bytes = b"0"
    last_wake_id: bytes = b"0"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entry_order(delivery: Delivery) -> tuple[int, ...]:
    return tuple(int(part) for part in delivery.message_id.split("-"))


def _deliveries(flat: list[Any], token: str) -> list[Delivery]:
    """Deliveries from the script's flat (id, data, attributes, deliveries) quadruples."""
    deliveries = [
        Delivery(
            receipt=make_receipt(_text(flat[i]), token),
            message_id=_text(flat[i]),
            data=bytes(flat[i + 1]),
            attributes=json.loads(flat[i + 2] or b"{}"),
            deliveries=int(flat[i + 3]),
        )
        for i in range(0, len(flat), 4)
    ]
    return sorted(deliveries, key=_entry_order)


def _claimed(reply: list[Any], token: str) -> Claimed:
    retry_in_ms = int(reply[1])
    return Claimed(
        deliveries=_deliveries(reply[4:], token),
        retry_in=None if retry_in_ms < 0 else retry_in_ms / 1000,
        last_stream_id=reply[2],
        last_wake_id=reply[3],
    )


def _receipt_pairs(receipts: Sequence[str]) -> list[str]:
    """(entry id, token) pairs, flattened, as the scripts take them."""
    return [part for receipt in receipts for part in parse_receipt(receipt)]


def _publish_arguments(messages: Sequence[Message], options: RedisOptions) -> list[Any]:
    """The publish script's arguments after prefix and topic: the dedupe window (ms) and
    (key, data, attributes) triples, or, when no message has a key, 0 and (data, attributes)
    pairs, the cheaper call of the hot unkeyed path (updates)."""
    if all(message.key is None for message in messages):
        pairs = [(bytes(m.data), json.dumps(dict(m.attributes))) for m in messages]
        return [0, *(value for pair in pairs for value in pair)]
    triples = [
        ("" if m.key is None else "#" + m.key, bytes(m.data), json.dumps(dict(m.attributes)))
        for m in messages
    ]
    window = max(_milliseconds(options.dedupe_window), 1)
    return [window, *(value for triple in triples for value in triple)]


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def _milliseconds(seconds: float) -> int:
    return max(0, round(seconds * 1000))


#: Redis takes no string (nor command argument) longer than `proto-max-bulk-len`, 512 MB by
#: default; a message's data is one argument.
MAX_MESSAGE_BYTES = 512 * 1024 * 1024


class RedisBroker(BaseBroker):
    """Topics and subscriptions in Redis Streams; see the module's documentation."""

    dedupes_publish = True
    max_message_bytes = MAX_MESSAGE_BYTES

    def __init__(self, options: RedisOptions) -> None:
        self._options = options
        self._prefix = options.prefix
        self._client: Redis | None = None
        self._scripts: Scripts
        self._unreachable = False
        self._backlog_warned_at = 0.0

    @classmethod
    def from_url(cls, url: str) -> RedisBroker:
        return cls(parse_url(url))

    async def _open(self) -> None:
        if self._client is not None:
            return
        self._client = Redis.from_url(self._options.url, **_connection_settings())
        self._register_scripts(self._client)
        await self._call(self._client.ping())

    def _register_scripts(self, client: Redis) -> None:
        self._scripts = Scripts(
            ensure=client.register_script(lua.ENSURE_SUBSCRIPTION),
            drop=client.register_script(lua.DROP_SUBSCRIPTION),
            publish=client.register_script(lua.PUBLISH),
            pull=client.register_script(lua.PULL),
            ack=client.register_script(lua.ACK),
            nack=client.register_script(lua.NACK),
            extend=client.register_script(lua.EXTEND),
        )

    def _open_scripts(self) -> Scripts:
        self._connected()
        return self._scripts

    async def _close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    # -- keys ------------------------------------------------------------------------------

    def _subscriptions_key(self) -> str:
        return f"{self._prefix}:subscriptions"

    def _topic_key(self, topic: str) -> str:
        return f"{self._prefix}:topic:{topic}"

    def _keys(self, subscription: str) -> Keys:
        base = f"{self._prefix}:sub:{subscription}"
        return Keys(f"{base}:stream", f"{base}:leases", f"{base}:tokens", f"{base}:wake")

    # -- the protocol ----------------------------------------------------------------------

    async def _ensure_subscription(self, topic: str, subscription: str, ephemeral: bool) -> str:
        keys = [self._subscriptions_key(), self._topic_key(topic), self._keys(subscription).stream]
        script = self._open_scripts().ensure
        return _text(await self._run(script, keys, [subscription, topic, GROUP]))

    async def _drop_subscription(self, subscription: str) -> None:
        script = self._open_scripts().drop
        await self._run(script, [self._subscriptions_key()], [self._prefix, subscription])

    async def _publish(self, topic: str, messages: Sequence[Message]) -> set[str]:
        dropped: set[str] = set()
        for chunk in _chunks(messages, SCRIPT_BATCH):
            arguments = [self._prefix, topic, *_publish_arguments(chunk, self._options)]
            script = self._open_scripts().publish
            reply = await self._run(script, [self._topic_key(topic)], arguments)
            self._warn_of_backlog(topic, int(reply[1]))
            dropped.update(_text(key) for key in reply[2:])
        return dropped

    def _warn_of_backlog(self, topic: str, longest: int) -> None:
        now = time.monotonic()
        if longest < self._options.backlog_warning:
            return
        if now - self._backlog_warned_at >= BACKLOG_WARNING_INTERVAL:
            self._backlog_warned_at = now
            log.warning(
                "a subscription of topic %s holds %d unacknowledged messages: Redis keeps them "
                "all in memory (consumers down or too slow?)",
                topic,
                longest,
            )

    async def _pull(
        self, subscription: str, max_messages: int, lease: float, wait: float
    ) -> list[Delivery]:
        async def claim(_remaining: float) -> Claimed:
            return await self._claim(subscription, max_messages, lease)

        async def wait_for_news(claimed: Claimed, remaining: float) -> None:
            await self._wait_for_news(subscription, claimed, remaining)

        return await shared.pull_loop(claim, wait_for_news, wait=wait)

    async def _claim(self, subscription: str, max_messages: int, lease: float) -> Claimed:
        keys = self._keys(subscription)
        token = shared.new_lease_token()
        reply = await self._run(
            self._open_scripts().pull,
            [self._subscriptions_key(), keys.stream, keys.leases, keys.tokens, keys.wake],
            [subscription, GROUP, CONSUMER, max_messages, _milliseconds(lease), token],
        )
        if int(reply[0]) == 0:
            raise BrokerError(f"no subscription named {subscription!r}")
        return _claimed(reply, token)

    async def _wait_for_news(self, subscription: str, claimed: Claimed, remaining: float) -> None:
        """Block until the stream or its wake stream gets an entry, or until the earliest
        lease passes, or `remaining` seconds: whichever comes first."""
        seconds = min(remaining, MAX_BLOCK_SECONDS)
        if claimed.retry_in is not None:
            seconds = min(seconds, claimed.retry_in)
        block = _milliseconds(seconds)
        if block == 0:
            return
        keys = self._keys(subscription)
        streams = {keys.stream: claimed.last_stream_id, keys.wake: claimed.last_wake_id}
        client = self._connected()
        await self._call(client.xread(streams, count=1, block=block))  # type: ignore[arg-type]

    async def _ack(self, subscription: str, receipts: Sequence[str]) -> None:
        keys = self._keys(subscription)
        for chunk in _chunks(_receipt_pairs(receipts), 2 * SCRIPT_BATCH):
            script = self._open_scripts().ack
            await self._run(script, [keys.stream, keys.leases, keys.tokens], [GROUP, *chunk])

    async def _nack(self, subscription: str, receipts: Sequence[str], delay: float) -> None:
        keys = self._keys(subscription)
        for chunk in _chunks(_receipt_pairs(receipts), 2 * SCRIPT_BATCH):
            arguments = [_milliseconds(delay), *chunk]
            script = self._open_scripts().nack
            await self._run(script, [keys.leases, keys.tokens, keys.wake], arguments)

    async def _extend(self, subscription: str, receipts: Sequence[str], lease: float) -> set[str]:
        keys = self._keys(subscription)
        held: list[int] = []
        for chunk in _chunks(_receipt_pairs(receipts), 2 * SCRIPT_BATCH):
            arguments = [GROUP, CONSUMER, _milliseconds(lease), *chunk]
            script = self._open_scripts().extend
            held.extend(await self._run(script, [keys.stream, keys.leases, keys.tokens], arguments))
        return {receipt for receipt, kept in zip(receipts, held, strict=True) if not kept}

    # -- calls -----------------------------------------------------------------------------

    async def _run(self, script: AsyncScript, keys: list[str], arguments: list[Any]) -> Any:
        return await self._call(script(keys, arguments))

    def _connected(self) -> Redis:
        if self._client is None:
            raise not_open()
        return self._client

    async def _call(self, call: Awaitable[T]) -> T:
        """Await a Redis call (already retried with backoff by redis-py), translating errors
        and logging once when Redis becomes unreachable and once when it is back."""
        self._connected()
        try:
            result = await call
        except _CONNECTION_ERRORS as exc:
            self._report_unreachable(exc)
            raise BrokerError(f"redis broker unreachable: {exc}") from exc
        except redis_errors.RedisError as exc:
            raise BrokerError(f"redis broker: {exc}") from exc
        self._report_reachable()
        return result

    def _report_unreachable(self, exc: BaseException) -> None:
        if not self._unreachable:
            self._unreachable = True
            log.warning(
                "redis broker %s unreachable (%s): callers retry, reconnecting with backoff",
                _safe_address(self._options.url),
                exc,
            )

    def _report_reachable(self) -> None:
        if self._unreachable:
            self._unreachable = False
            log.warning("redis broker %s reachable again", _safe_address(self._options.url))


def _safe_address(url: str) -> str:
    """host:port/db of a URL, without credentials, for log lines."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}{parts.path}"


def _connection_settings() -> dict[str, Any]:
    """Reconnect with exponential backoff on connection errors; notice dead peers."""
    return {
        "retry": Retry(ExponentialBackoff(cap=2.0, base=0.05), retries=6),
        "retry_on_error": [redis_errors.ConnectionError, redis_errors.TimeoutError],
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": 5.0,
        "socket_keepalive": True,
        "socket_keepalive_options": _keepalive_options(),
        "health_check_interval": 30,
    }


def _keepalive_options() -> dict[int, int]:
    names = ("TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT")
    values = (30, 10, 3)
    return {
        getattr(socket, name): value
        for name, value in zip(names, values, strict=True)
        if hasattr(socket, name)
    }
