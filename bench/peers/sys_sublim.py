"""Subliminal, as the shared peer harness (shared/bench/peers/run.py) runs a system.

    PYTHONPATH=bench/peers .venv/bin/python /work/shared/bench/peers/run.py --system sublim \
        --flavour results --mode throughput --n 3000 --config sqlite --out /tmp/sublim.jsonl

What runs, per repeat (the harness calls purge, producer, worker_cmds, close_producer):

- purge(): fresh state: a new SQLite file, Redis/NATS prefix, PostgreSQL database or RabbitMQ
  virtual host (the previous one is removed when its repeat ends).
- producer(): starts a real `sublim api` process (HTTP API + updates consumer + sweeper) on a
  free port, waits for /readyz, creates the task type's subscription (what a deployed executor
  does the first time it starts: without it the broker drops what is published on a topic
  nobody subscribes to, and the harness enqueues its first N jobs before any worker runs),
  and returns `enqueue(i, enq)` = one `sublim.Client(url).create_task("BenchNoop",
  {"i": i, "enq": enq}, execute=True)` per call: one HTTP request (keep-alive) to the API,
  which writes the task and execution to the store and publishes the execution, as a user's
  program does. (The peers' producers call their library's enqueue, which writes straight to
  the engine; Subliminal's user-facing enqueue is the HTTP API, so that is what is timed.)
- worker_cmds(): E x `sublim executor sublim_noop:node` (E = SUBLIM_BENCH_EXECUTORS, default 1;
  W = SUBLIM_BENCH_WORKERS async worker slots each, default 16), started by the harness in
  their own process groups.
- count_results() (the "results" flavour is Subliminal's only one: it always records every
  execution): executions recorded Passed in the store, by `Store.stats()` on the store itself
  (one COUNT per status); SUBLIM_BENCH_COUNT=api counts them through the HTTP API instead
  (GET /v1/executions?status=Passed&limit=1000, following next_cursor).

CPU: the harness counts the process groups it started (the executors) as "workers", plus
redis-server, postgres and its own process ("driver"). The API is started by this adapter
(it must be up before the workers, for the enqueue-only phase), so this module replaces
`common.cpu_snapshot` with one that also counts the API's process group in "workers" and
adds the split: "sublim_api", "sublim_executor", and the engines the harness does not know,
"rabbitmq" (the shared node: beam.smp run by user rabbitmq) and "nats" (the nats-server of
SUBLIM_BENCH_NATS's port), plus "redis_port" (only the redis-server on BENCH_REDIS_PORT) and
"postgres_run_db" (only the postgres backends serving this run's database): the harness's
"redis" and "postgres" count every such process on the machine, other users' included.
"workers" = sublim_api + sublim_executor. The enqueue-only phase's CPU, which the harness does
not measure, is noted per repeat on stderr and in LOG_DIR/sublim-enqueue-only.jsonl.

Configs (store + broker): sqlite, redis, postgres, amqp, nats; the engines' addresses follow
the harness (BENCH_REDIS_HOST/PORT, BENCH_PG_HOST/PORT) where it has them;
SUBLIM_BENCH_PG_USER (default postgres), SUBLIM_BENCH_AMQP (default guest:guest@127.0.0.1:5672),
SUBLIM_BENCH_NATS (default 127.0.0.1:4222). Logs: BENCH_LOG_DIR (default /tmp/peer-bench/logs).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import common
from common import BIN, LOG_DIR, PG_HOST, PG_PORT, REDIS_HOST, REDIS_PORT

HERE = Path(__file__).resolve().parent
TOPIC = "BenchNoop"
SUBSCRIPTION = f"{TOPIC}-sub"
EXECUTORS = int(os.environ.get("SUBLIM_BENCH_EXECUTORS", "1"))
WORKERS = int(os.environ.get("SUBLIM_BENCH_WORKERS", "16"))
COUNT = os.environ.get("SUBLIM_BENCH_COUNT", "store")  # "store" | "api"
PG_USER = os.environ.get("SUBLIM_BENCH_PG_USER", "postgres")
AMQP = os.environ.get("SUBLIM_BENCH_AMQP", "guest:guest@127.0.0.1:5672")
NATS = os.environ.get("SUBLIM_BENCH_NATS", "127.0.0.1:4222")
STATE_DIR = Path(os.environ.get("SUBLIM_BENCH_DIR", tempfile.gettempdir())) / "peer-bench-sublim"
READY_TIMEOUT = 60.0

CONFIGS = {
    "sqlite": "SQLite store + SQLite broker (one file, the embedded default)",
    "redis": "SQLite store + Redis Streams broker (redis://…/0?prefix=<fresh>)",
    "postgres": "PostgreSQL store + PostgreSQL broker (one fresh database)",
    "amqp": "SQLite store + RabbitMQ broker (quorum queues, a fresh virtual host)",
    "nats": "SQLite store + NATS JetStream broker (nats://…?prefix=<fresh>)",
}


def _sublim() -> list[str]:
    exe = BIN / "sublim"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "sublim.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------
# CPU: the harness's snapshot, with the API's process group and the split added
# --------------------------------------------------------------------------
_api_pgids: list[int] = []
_run_db: list[str] = []  # the postgres config's database: its backends' titles name it
try:
    import pwd

    _RABBIT_UID: int | None = pwd.getpwnam("rabbitmq").pw_uid
except (ImportError, KeyError):
    _RABBIT_UID = None
_NATS_PORT = NATS.rsplit(":", 1)[-1]


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("latin-1")
    except OSError:
        return ""


def _is_shared_rabbit(pid: int) -> bool:
    """The shared node runs as user rabbitmq; test nodes and rabbitmqctl's VM run as root."""
    try:
        return _RABBIT_UID is not None and os.stat(f"/proc/{pid}").st_uid == _RABBIT_UID
    except OSError:
        return False


def cpu_snapshot(worker_pgids: list[int]) -> dict[str, float]:
    """common.cpu_snapshot's keys (workers, redis, postgres, driver), with "workers" = the
    executors' process groups + the API's, and the split and the other engines added."""
    out = {
        "workers": 0.0,
        "redis": 0.0,
        "postgres": 0.0,
        "sublim_api": 0.0,
        "sublim_executor": 0.0,
        "redis_port": 0.0,
        "rabbitmq": 0.0,
        "nats": 0.0,
        "postgres_run_db": 0.0,
    }
    executors, api = set(worker_pgids), set(_api_pgids)
    for pid, comm, pgrp, t in common._proc_stats():
        if pgrp in executors:
            out["sublim_executor"] += t
        elif pgrp in api:
            out["sublim_api"] += t
        elif comm.startswith("redis-server"):
            out["redis"] += t
            if f":{REDIS_PORT}" in _cmdline(pid):
                out["redis_port"] += t  # the harness's Redis only (BENCH_REDIS_PORT)
        elif comm.startswith("postgres"):
            out["postgres"] += t
            if _run_db and f" {_run_db[0]} " in _cmdline(pid):
                out["postgres_run_db"] += t  # backends of this run's database only
        elif comm.startswith("beam.smp") and _is_shared_rabbit(pid):
            out["rabbitmq"] += t
        elif comm.startswith("nats-server") and f"{_NATS_PORT}" in _cmdline(pid):
            out["nats"] += t
    out["workers"] = out["sublim_api"] + out["sublim_executor"]
    ru = os.times()
    out["driver"] = ru.user + ru.system
    return out


common.cpu_snapshot = cpu_snapshot  # run.py calls common.cpu_snapshot(...) at run time


# --------------------------------------------------------------------------
# fresh state per repeat
# --------------------------------------------------------------------------
def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


class _State:
    """The URLs of one repeat and how to remove what they made."""

    def __init__(self, config: str, loop: asyncio.AbstractEventLoop) -> None:
        self.config, self.loop = config, loop
        self.run = f"sb{int(time.time())}{secrets.token_hex(3)}"
        self.dir = STATE_DIR / self.run
        self.dir.mkdir(parents=True, exist_ok=True)
        sqlite = f"sqlite:///{self.dir}/sublim.db"
        self.store = self.broker = sqlite
        if config == "redis":
            self.broker = f"redis://{REDIS_HOST}:{REDIS_PORT}/0?prefix={self.run}"
        elif config == "postgres":
            loop.run_until_complete(self._pg("CREATE DATABASE {}"))
            _run_db[:] = [self.run]
            self.store = self.broker = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.run}"
        elif config == "amqp":
            _rabbitmqctl("add_vhost", self.run)
            user = AMQP.split(":", 1)[0]
            _rabbitmqctl("set_permissions", "-p", self.run, user, ".*", ".*", ".*")
            self.broker = f"amqp://{AMQP}/{self.run}"
        elif config == "nats":
            self.broker = f"nats://{NATS}?prefix={self.run}"

    async def _pg(self, sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/postgres")
        try:
            await conn.execute(sql.format(self.run))
        finally:
            await conn.close()

    async def _nats_cleanup(self) -> None:
        import nats

        nc = await nats.connect(f"nats://{NATS}")
        try:
            js = nc.jetstream()
            for info in await js.streams_info():
                name = info.config.name
                if name.startswith(f"{self.run}_") or name == f"KV_{self.run}_subscriptions":
                    await js.delete_stream(name)
        finally:
            await nc.close()

    def remove(self) -> None:
        try:
            if self.config == "redis":
                import redis

                r = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=0)
                keys = list(r.scan_iter(match=f"{self.run}:*", count=1000))
                for k in range(0, len(keys), 500):
                    r.delete(*keys[k : k + 500])
            elif self.config == "postgres":
                _run_db.clear()
                self.loop.run_until_complete(self._pg("DROP DATABASE IF EXISTS {} WITH (FORCE)"))
            elif self.config == "amqp":
                _rabbitmqctl("delete_vhost", self.run)
            elif self.config == "nats":
                self.loop.run_until_complete(self._nats_cleanup())
        except Exception as exc:  # leftovers are named after the run: say so, go on
            print(f"sys_sublim: could not remove {self.run}: {exc!r}", file=sys.stderr)
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------
class Bench:
    name = "sublim"
    store = "sqlite"
    is_async = False
    flavours = ("results",)
    configs = {
        k: f"{v}; `sublim api` + {EXECUTORS} x `sublim executor sublim_noop:node` "
        f"({WORKERS} async workers each); producer: sublim.Client.create_task per job"
        for k, v in CONFIGS.items()
    }
    default_config = "sqlite"

    def __init__(self) -> None:
        self.config = os.environ.get("BENCH_CONFIG") or self.default_config
        self.loop = asyncio.new_event_loop()
        self.state: _State | None = None
        self.api: subprocess.Popen[bytes] | None = None
        self.client = None
        self.count_store = None
        self._sent: list[int] = []
        self._cpu0: dict[str, float] | None = None
        atexit.register(self._teardown)  # no API process or engine state left if run.py dies

    def purge(self) -> None:
        self._teardown()
        self.config = os.environ.get("BENCH_CONFIG") or self.default_config
        self.state = _State(self.config, self.loop)

    def worker_env(self, config: str) -> dict[str, str]:
        """The executors' environment; called when the harness starts them, so it also
        notes the API's CPU during the enqueue-only phase, which the harness does not."""
        self._note_enqueue_only()
        return self._env()

    def _env(self) -> dict[str, str]:
        assert self.state is not None
        return {
            # the harness runs workers in its own folder and puts it first on PYTHONPATH;
            # this folder (sublim_noop) must be there too, as an absolute path; and
            # SUBLIM_BENCH_SRC, when set, names another sublim source tree to measure (an
            # older commit's src/, for a before/after figure)
            "PYTHONPATH": os.pathsep.join(
                filter(None, [os.environ.get("SUBLIM_BENCH_SRC"), str(HERE)])
            ),
            "SUBLIM_STORE_URL": self.state.store,
            "SUBLIM_BROKER_URL": self.state.broker,
            "SUBLIM_LOG_LEVEL": "WARNING",
            "SUBLIM_SHUTDOWN_GRACE_SECONDS": "3",
            "SUBLIM_BENCH_WORKERS": str(WORKERS),
        }

    def worker_cmds(self, config: str) -> list[list[str]]:
        return [[*_sublim(), "executor", "sublim_noop:node"] for _ in range(EXECUTORS)]

    # ---- the API process and the producer --------------------------------
    def _start_api(self) -> str:
        assert self.state is not None
        port = _free_port()
        env = dict(os.environ)
        env.update(self._env())
        env["PYTHONUNBUFFERED"] = "1"
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        with open(LOG_DIR / f"sublim-{self.config}-{self.state.run}-api.log", "wb") as log:
            self.api = subprocess.Popen(
                [*_sublim(), "api", "--host", "127.0.0.1", "--port", str(port)],
                cwd=str(self.state.dir),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group, counted by cpu_snapshot
            )
        _api_pgids[:] = [self.api.pid]
        url = f"http://127.0.0.1:{port}"
        import httpx

        deadline = time.time() + READY_TIMEOUT
        while True:
            if self.api.poll() is not None:
                raise RuntimeError(f"sublim api exited with {self.api.returncode}; see {log.name}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"sublim api not ready after {READY_TIMEOUT} s; see {log.name}")
            time.sleep(0.1)

    async def _ensure_subscription(self) -> None:
        assert self.state is not None
        broker = _backends().broker_from_url(self.state.broker)
        await broker.open()
        try:
            await broker.ensure_subscription(TOPIC, SUBSCRIPTION)
        finally:
            await broker.close()

    def producer(self):
        import sublim

        url = self._start_api()
        self.loop.run_until_complete(self._ensure_subscription())
        self.client = client = sublim.Client(url)
        create = client.create_task
        sent = self._sent = [0]
        self._cpu0 = cpu_snapshot([])

        def enqueue(i, enq):
            create(TOPIC, {"i": i, "enq": enq}, execute=True)
            sent[0] += 1

        return enqueue

    def _note_enqueue_only(self) -> None:
        """CPU µs per job of the API and the driver from the producer's start until now
        (the enqueue-only phase, when no executor runs yet): to stderr and to
        LOG_DIR/sublim-enqueue-only.jsonl."""
        n = self._sent[0] if self._sent else 0
        if not n or self._cpu0 is None:
            return
        c1 = cpu_snapshot([])
        per = {
            k: round((c1[k] - self._cpu0[k]) / n * 1e6, 1)
            for k in ("sublim_api", "driver", "redis_port", "postgres_run_db", "rabbitmq", "nats")
        }
        self._cpu0 = None
        line = {
            "config": self.config,
            "run": self.state.run if self.state else None,
            "n": n,
            "enqueue_only_cpu_us_per_job": per,
        }
        print(f"sys_sublim: {json.dumps(line)}", file=sys.stderr, flush=True)
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        with open(LOG_DIR / "sublim-enqueue-only.jsonl", "a") as f:
            f.write(json.dumps(line) + "\n")

    def close_producer(self) -> None:
        self._teardown()

    def _teardown(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.count_store is not None:
            self.loop.run_until_complete(self.count_store.close())
            self.count_store = None
        if self.api is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.api.pid, signal.SIGTERM)
            try:
                self.api.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.api.pid, signal.SIGKILL)
                self.api.wait(5)
            self.api = None
            _api_pgids.clear()
        if self.state is not None:
            self.state.remove()
            self.state = None

    # ---- results ----------------------------------------------------------
    def count_results(self) -> int:
        if COUNT == "api":
            assert self.client is not None
            total, cursor = 0, None
            while True:
                page = self.client.list_executions(status="Passed", limit=1000, cursor=cursor)
                total += len(page.items)
                cursor = page.next_cursor
                if not cursor:
                    return total
        return self.loop.run_until_complete(self._count_store())

    async def _count_store(self) -> int:
        from sublim import TaskStatus

        assert self.state is not None
        if self.count_store is None:
            self.count_store = _backends().store_from_url(self.state.store)
            await self.count_store.open()
        stats = await self.count_store.stats()
        return int(stats.executions.get(TaskStatus.PASSED, 0))


def _backends() -> types.ModuleType:
    """The backend registry of the source tree measured (SUBLIM_BENCH_SRC may name one from
    before `sublim.backends` moved to `sublim.core.backends`)."""
    try:
        return importlib.import_module("sublim.core.backends")
    except ModuleNotFoundError:
        return importlib.import_module("sublim.backends")
