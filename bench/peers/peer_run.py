"""The shared harness's run.py for a peer, with the engine's CPU counted as sys_sublim counts it.

    cd /path/to/shared/bench/peers && BENCH_PEERS_DIR=$PWD \
        /tmp/peers-venv/bin/python /path/to/project/bench/peers/peer_run.py --system huey ...

Run by bench/performance.py with the peers' Python (stdlib only here). It runs run.py as it is
(same arguments, same JSON line), after replacing `common.cpu_snapshot` with one that keeps the
harness's keys ("workers", "redis", "postgres", "driver": "redis" and "postgres" count every
such process on the machine, other users' included) and adds the two sys_sublim adds:
"redis_port" (only the redis-server on BENCH_REDIS_PORT) and "postgres_run_db" (only the
postgres backends serving the peer's database, its module's `DB`). So Subliminal and its peers
are charged the same engine processes on a machine that others share.
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path
from typing import Any


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("latin-1")
    except OSError:
        return ""


def _patch(common: Any, system: str) -> None:
    port = f":{common.REDIS_PORT}"

    def run_db() -> str | None:
        db = getattr(sys.modules.get(f"sys_{system}"), "DB", None)
        return db if isinstance(db, str) else None

    def cpu_snapshot(worker_pgids: list[int]) -> dict[str, float]:
        out = {"workers": 0.0, "redis": 0.0, "postgres": 0.0, "redis_port": 0.0}
        out["postgres_run_db"] = 0.0
        groups, db = set(worker_pgids), run_db()
        for pid, comm, pgrp, t in common._proc_stats():
            if pgrp in groups:
                out["workers"] += t
            elif comm.startswith("redis-server"):
                out["redis"] += t
                if port in _cmdline(pid):
                    out["redis_port"] += t
            elif comm.startswith("postgres"):
                out["postgres"] += t
                if db and f" {db} " in _cmdline(pid):
                    out["postgres_run_db"] += t
        ru = os.times()
        out["driver"] = ru.user + ru.system
        return out

    common.cpu_snapshot = cpu_snapshot  # run.py calls common.cpu_snapshot(...) at run time


def _arg(name: str, default: str) -> str:
    argv = sys.argv[1:]
    return argv[argv.index(name) + 1] if name in argv[:-1] else default


def main() -> None:
    harness = Path(os.environ.get("BENCH_PEERS_DIR", os.getcwd())).resolve()
    sys.path.insert(0, str(harness))
    # common reads BENCH_FLAVOUR when first imported: set it as run.py would
    os.environ["BENCH_FLAVOUR"] = _arg("--flavour", "bare")
    import common  # type: ignore[import-not-found]

    _patch(common, _arg("--system", ""))
    sys.argv = [str(harness / "run.py"), *sys.argv[1:]]
    runpy.run_path(str(harness / "run.py"), run_name="__main__")


if __name__ == "__main__":
    main()
