"""Fresh Redis and NATS brokers for tests: a unique key prefix (Redis) or stream prefix (NATS)
per test on the shared engines, everything under it deleted afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from tests.engines import require_engine

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
NATS_HOST, NATS_PORT = "127.0.0.1", 4222


def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


def redis_url(prefix: str, host: str = REDIS_HOST, port: int = REDIS_PORT) -> str:
    return f"redis://{host}:{port}/0?prefix={prefix}"


def nats_url(prefix: str, host: str = NATS_HOST, port: int = NATS_PORT) -> str:
    return f"nats://{host}:{port}?prefix={prefix}"


async def delete_redis_prefix(url: str, prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url.split("?")[0])
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def delete_nats_prefix(url: str, prefix: str) -> None:
    import nats

    connection = await nats.connect(url.split("?")[0])
    try:
        jetstream = connection.jetstream()
        for name in await jetstream.streams_info():
            if name.config.name and name.config.name.startswith((f"{prefix}_", f"KV_{prefix}_")):
                await jetstream.delete_stream(name.config.name)
    finally:
        await connection.close()


@asynccontextmanager
async def fresh_redis_url() -> AsyncIterator[str]:
    require_engine("Redis", REDIS_HOST, REDIS_PORT)
    prefix = unique_prefix()
    url = redis_url(prefix)
    try:
        yield url
    finally:
        await delete_redis_prefix(url, prefix)


@asynccontextmanager
async def fresh_nats_url() -> AsyncIterator[str]:
    require_engine("NATS", NATS_HOST, NATS_PORT)
    prefix = unique_prefix()
    url = nats_url(prefix)
    try:
        yield url
    finally:
        await delete_nats_prefix(url, prefix)


@contextmanager
def engine_url(scheme: str) -> Iterator[str]:
    """A fresh URL for synchronous fixtures (e2e deployments), cleaned afterwards."""
    import asyncio

    prefix = unique_prefix()
    if scheme == "redis":
        require_engine("Redis", REDIS_HOST, REDIS_PORT)
        url, delete = redis_url(prefix), delete_redis_prefix
    else:
        require_engine("NATS", NATS_HOST, NATS_PORT)
        url, delete = nats_url(prefix), delete_nats_prefix
    try:
        yield url
    finally:
        asyncio.run(delete(url, prefix))
