"""One chaos run per deployment, outside pytest, printed as a markdown table for notes.

The run is the chaos suite's (`tests/chaos/`): a real `sublim api` and executor processes,
2,000 executions enqueued over HTTP while executors are killed with SIGKILL, the API is killed
and started again, and on Redis the engine too (a redis-server of the run's own on a free
port, append-only file fsynced on every write). Each run's folder keeps its logs, its record
of runs and `chaos-figures.json`.

    .venv/bin/python bench/chaos_report.py                     # sqlite and redis
    .venv/bin/python bench/chaos_report.py --deployment redis --executions 500
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.chaos.audit import Figures, markdown  # noqa: E402
from tests.chaos.deployments import DEPLOYMENTS  # noqa: E402
from tests.chaos.scenario import Setup, run_chaos  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--deployment", choices=sorted(DEPLOYMENTS), action="append", help="default: all"
    )
    parser.add_argument("--executions", type=int, default=Setup.executions)
    parser.add_argument("--seed", type=int, help="of the durations and the chaos schedule")
    parser.add_argument("--folder", type=Path, help="where runs keep their files (default: tmp)")
    return parser.parse_args()


def run_one(name: str, setup: Setup, folder: Path) -> Figures:
    run_folder = folder / name
    run_folder.mkdir(parents=True, exist_ok=True)
    with DEPLOYMENTS[name](run_folder) as deployment:
        return asyncio.run(run_chaos(deployment, run_folder, setup)).figures


def main() -> None:
    args = parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="sublim-chaos-"))
    setup = Setup(executions=args.executions)
    if args.seed is not None:
        setup = Setup(executions=args.executions, seed=args.seed)
    names = args.deployment or sorted(DEPLOYMENTS)
    rows = {name: run_one(name, setup, folder) for name in names}
    print(f"\nChaos runs (seed {setup.seed}; files in {folder}):\n")
    print(markdown(rows))


if __name__ == "__main__":
    main()
