"""Issue 10, item 4: the Idempotency-Key cache is bounded by bytes, not by entries.

Before: 10,000 entries of any size; 12 requests of 1 MB with fresh keys grew the API by
280 MB. Now `idempotency_cache_bytes` bounds the JSON bodies kept."""

from __future__ import annotations

import uuid
from pathlib import Path

from sublim.api.idempotency import IdempotencyCache
from tests.api.conftest import start_api

MIB = 1024 * 1024


def _megabyte_response(n: int) -> dict[str, object]:
    return {"n": n, "payload": "x" * MIB}


async def test_many_one_megabyte_responses_with_fresh_keys_stay_within_the_byte_budget() -> None:
    cache = IdempotencyCache(max_bytes=4 * MIB)
    for n in range(40):

        async def produce(n: int = n) -> tuple[int, object]:
            return 201, _megabyte_response(n)

        await cache.run(f"key-{n}", "f", produce)
        assert cache.size_bytes <= 4 * MIB
    assert len(cache) == 3  # three bodies of a little over 1 MiB fit in 4 MiB


async def test_the_least_recently_stored_responses_are_the_ones_forgotten() -> None:
    cache = IdempotencyCache(max_bytes=3 * MIB)
    for n in range(5):

        async def produce(n: int = n) -> tuple[int, object]:
            return 201, _megabyte_response(n)

        await cache.run(f"key-{n}", "f", produce)

    async def again() -> tuple[int, object]:
        return 201, {"n": "again"}

    assert (await cache.run("key-4", "f", again)).replayed is True
    assert (await cache.run("key-0", "f", again)).replayed is False


async def test_a_response_larger_than_the_whole_budget_is_not_kept() -> None:
    cache = IdempotencyCache(max_bytes=MIB // 2)

    async def produce() -> tuple[int, object]:
        return 201, _megabyte_response(0)

    await cache.run("big", "f", produce)
    assert len(cache) == 0
    assert cache.size_bytes == 0
    assert (await cache.run("big", "f", produce)).replayed is False


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_the_api_process_grows_by_far_less_than_the_requests_it_kept(tmp_path: Path) -> None:
    """60 requests of 0.9 MB with fresh keys (54 MB of bodies, each echoed in its response)
    against a 4 MiB budget: the API's resident memory grows by less than the responses."""
    env = {"SUBLIM_IDEMPOTENCY_CACHE_BYTES": str(4 * MIB)}
    api = start_api(tmp_path, env)
    try:
        payload = {"blob": "y" * 900_000}
        with api.client() as http:
            http.post("/v1/tasks", json={"topic": "Warm", "payload": payload})
            before = _rss_bytes(api.proc.pid)
            for _ in range(60):
                headers = {"Idempotency-Key": str(uuid.uuid4())}
                response = http.post(
                    "/v1/tasks", json={"topic": "Big", "payload": payload}, headers=headers
                )
                assert response.status_code == 201, response.text
            growth = _rss_bytes(api.proc.pid) - before
    finally:
        api.stop()
    print(f"API RSS growth after 60 x 0.9 MB idempotent requests: {growth / MIB:.1f} MiB")
    assert growth < 40 * MIB
