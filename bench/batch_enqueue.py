"""Batch enqueue: executions per second into store + broker with `Service.create_tasks`.

Each run creates `--batches` batches of `--size` tasks (default 20 x 1,000), every one with
`execute=True`, from `--callers` concurrent callers, and times it from the first call to the
last answer: every execution is then committed in the store and its request on the broker,
recorded Dispatched (the same path, and outbox, as every enqueue). After the run the script
checks the store's count of Dispatched executions. Median of `--runs` runs (default 3), each
on fresh state, removed afterwards:

- `sqlite`: `Service` in this process, store and broker in one new SQLite file (the embedded
  default: the same-file outbox);
- `sqlite-redis`: `Service` in this process, SQLite store (a new file) + Redis broker
  (`redis://127.0.0.1:6379/0?prefix=<new>`, its keys deleted afterwards);
- `postgres`: `Service` in this process, PostgreSQL store and broker in a new database (the
  same-database outbox: executions and their messages in one transaction), dropped afterwards;
- `http`: a `sublim api` subprocess (SQLite store + Redis broker, as `sqlite-redis`), fed
  `POST /v1/tasks:batch` by `sublim.AsyncClient.create_tasks`.

    .venv/bin/python bench/batch_enqueue.py [--configs sqlite,sqlite-redis,postgres,http]
        [--batches 20] [--size 1000] [--callers 2] [--runs 3]
        [--redis redis://127.0.0.1:6379/0] [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Prints one JSON line per run and one per config (the median). No timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

import sublim
from sublim.config import Settings
from sublim.core.model import TaskStatus
from sublim.core.service import Service, TaskSpec

TOPIC = "BenchBatch"


def specs(size: int, batch: int) -> list[TaskSpec]:
    return [TaskSpec(TOPIC, {"batch": batch, "i": i}, execute=True) for i in range(size)]


async def timed(batches: int, callers: int, call: Callable[[int], Awaitable[None]]) -> float:
    """Seconds for `batches` calls of `call(batch)`, `callers` at a time."""
    queue = iter(range(batches))

    async def caller() -> None:
        for batch in queue:
            await call(batch)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return time.perf_counter() - started


async def dispatched(service: Service) -> int:
    return (await service.store.stats()).executions.get(TaskStatus.DISPATCHED, 0)


async def run_service(settings: Settings, args: argparse.Namespace) -> float:
    async with Service.from_settings(settings) as service:
        await service.create_tasks(specs(args.size, -1))  # warm-up: connections, topic

        async def call(batch: int) -> None:
            await service.create_tasks(specs(args.size, batch))

        seconds = await timed(args.batches, args.callers, call)
        expected = (args.batches + 1) * args.size
        found = await dispatched(service)
        if found != expected:
            raise SystemExit(f"{found} executions Dispatched, expected {expected}")
    return seconds


@contextlib.asynccontextmanager
async def redis_prefix(url: str) -> AsyncIterator[str]:
    """A new key prefix on the Redis at `url`; its keys are deleted afterwards."""
    import redis.asyncio as aioredis

    prefix = f"bench-batch-{uuid.uuid4().hex[:10]}"
    try:
        yield prefix
    finally:
        client = aioredis.from_url(url)
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@contextlib.asynccontextmanager
async def postgres_database(admin_url: str) -> AsyncIterator[str]:
    """A new database on the engine of `admin_url`, dropped afterwards."""
    import asyncpg

    name = f"sublim_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield admin_url.rsplit("/", 1)[0] + f"/{name}"
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def sqlite_redis(args: argparse.Namespace) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as folder:
        async with redis_prefix(args.redis) as prefix:
            settings = Settings(
                store_url=f"sqlite:///{Path(folder) / 'store.db'}",
                broker_url=f"{args.redis}?prefix={prefix}",
            )
            return await run_service(settings, args)


async def sqlite(args: argparse.Namespace) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as folder:
        url = f"sqlite:///{Path(folder) / 'sublim.db'}"
        return await run_service(Settings(store_url=url, broker_url=url), args)


async def postgres(args: argparse.Namespace) -> float:
    async with postgres_database(args.postgres) as url:
        return await run_service(Settings(store_url=url, broker_url=url), args)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def started_api(folder: Path, store: str, broker: str) -> tuple[subprocess.Popen[bytes], str]:
    """`sublim api` on a free port, once it answers (before any timing starts)."""
    port = free_port()
    urls = ["--store", store, "--broker", broker]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUBLIM_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sublim.cli", "api", "--port", str(port), *urls],
        cwd=folder,
        env=env,
        stdout=(folder / "api.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"sublim api exited: {(folder / 'api.log').read_text()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("sublim api did not start")


async def http(args: argparse.Namespace) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as name:
        folder = Path(name)
        store = f"sqlite:///{folder / 'store.db'}"
        async with redis_prefix(args.redis) as prefix:
            proc, url = started_api(folder, store, f"{args.redis}?prefix={prefix}")
            try:
                return await feed_api(url, store, args)
            finally:
                proc.terminate()
                proc.wait(timeout=15)


def bodies(size: int, batch: int) -> list[dict[str, Any]]:
    return [
        {"topic": TOPIC, "payload": {"batch": batch, "i": i}, "execute": True} for i in range(size)
    ]


async def feed_api(url: str, store: str, args: argparse.Namespace) -> float:
    async with sublim.AsyncClient(url, timeout=120) as client:
        await client.create_tasks(bodies(args.size, -1))

        async def call(batch: int) -> None:
            await client.create_tasks(bodies(args.size, batch))

        seconds = await timed(args.batches, args.callers, call)
    from sublim.store.sqlite import SqliteStore

    check = SqliteStore.from_url(store)
    await check.open()
    try:
        found = (await check.stats()).executions.get(TaskStatus.DISPATCHED, 0)
    finally:
        await check.close()
    expected = (args.batches + 1) * args.size
    if found != expected:
        raise SystemExit(f"{found} executions Dispatched, expected {expected}")
    return seconds


CONFIGS: dict[str, Callable[[argparse.Namespace], Awaitable[float]]] = {
    "sqlite": sqlite,
    "sqlite-redis": sqlite_redis,
    "postgres": postgres,
    "http": http,
}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--callers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    executions = args.batches * args.size
    for config in args.configs.split(","):
        rates = []
        for run in range(args.runs):
            seconds = await CONFIGS[config](args)
            rates.append(executions / seconds)
            print(
                json.dumps(
                    {
                        "config": config,
                        "run": run,
                        "seconds": round(seconds, 3),
                        "executions_per_second": round(rates[-1]),
                    }
                ),
                flush=True,
            )
        print(
            json.dumps(
                {
                    "config": config,
                    "batch": args.size,
                    "callers": args.callers,
                    "executions": executions,
                    "median_per_second": round(statistics.median(rates)),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    asyncio.run(main())
