#!/usr/bin/env bash
# Subliminal against an older commit of itself on the shared peer harness, interleaved:
#   bash bench/before_after.sh OLD_COMMIT CONFIG [N=2000] [REPEATS=3]
# Runs `run.py --system sublim` REPEATS times for OLD_COMMIT's sources (git archive, through
# SUBLIM_BENCH_SRC) and for this tree, alternating, then prints the medians of each: enqueue-only,
# backlog drain and end-to-end rates, and CPU µs per job (workers = api + executor, engine,
# driver) in the concurrent phase. Needs the harness's Redis on BENCH_REDIS_PORT (default 6390;
# see bench/README.md) and the shared folder at ../shared/bench/peers (or HARNESS).
set -euo pipefail
OLD=$1 CONFIG=$2 N=${3:-2000} REPEATS=${4:-3}
cd "$(dirname "$0")/.."
HARNESS=${HARNESS:-../shared/bench/peers}
PY=${PYTHON:-.venv/bin/python}
export BENCH_REDIS_PORT=${BENCH_REDIS_PORT:-6390}
export BENCH_REC_URL=${BENCH_REC_URL:-redis://127.0.0.1:$BENCH_REDIS_PORT/15}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/before"
git archive "$OLD" src | tar -x -C "$WORK/before"
run() {  # label, then extra environment
  local label=$1; shift
  env "$@" timeout 900 "$PY" "$HARNESS/run.py" --system sublim --flavour results \
    --mode throughput --n "$N" --repeats 1 --config "$CONFIG" --out "$WORK/$label.jsonl" >/dev/null
}
for _ in $(seq "$REPEATS"); do
  run before SUBLIM_BENCH_SRC="$WORK/before/src" PYTHONPATH="$WORK/before/src:bench/peers"
  run after PYTHONPATH=bench/peers
done
"$PY" - "$WORK" "$OLD" "$CONFIG" <<'PY'
import json, statistics, sys
work, old, config = sys.argv[1:]
print(f"config {config}: medians of the runs (before = {old}, after = this tree)")
print("| | enqueue-only/s | drain/s | end to end/s | CPU µs/job workers (api + executor) | engine | driver |")
print("|---|---|---|---|---|---|---|")
for label in ("before", "after"):
    runs = [r for line in open(f"{work}/{label}.jsonl") for r in json.loads(line)["runs"]]
    med = lambda get: statistics.median(get(r) for r in runs)
    cpu = lambda part: med(lambda r: r["concurrent"]["cpu_us_per_job"].get(part, 0))
    engine = {"redis": "redis_port", "postgres": "postgres_run_db"}.get(config)
    print(f"| {label} | {med(lambda r: r['enqueue_only']['rate']):,.0f} "
          f"| {med(lambda r: r['backlog']['rate']):,.0f} "
          f"| {med(lambda r: r['concurrent']['e2e_rate']):,.0f} "
          f"| {cpu('workers'):,.0f} ({cpu('sublim_api'):,.0f} + {cpu('sublim_executor'):,.0f}) "
          f"| {cpu(engine) if engine else 0:,.0f} | {cpu('driver'):,.0f} |")
PY
