#!/usr/bin/env bash
# Requests/s of a real `sublim api` (SQLite store and broker) for GET /v1/executions/{id} and
# POST /v1/tasks with execute: true (as the Performance issue asks), with wrk (apt-get install
# wrk): 3 runs each, the median printed. PYTHONPATH=OTHER/src measures another tree.
#   bash bench/api_load.sh [seconds per run, default 10] [connections, default 32]
set -euo pipefail
SECONDS_PER_RUN=${1:-10}
CONNECTIONS=${2:-32}
PORT=${PORT_FOR_BENCH:-18181}
DIR=$(mktemp -d)
PY=${PYTHON:-.venv/bin/python}
URL="http://127.0.0.1:$PORT"
trap 'kill "$API_PID" 2>/dev/null || true; wait "$API_PID" 2>/dev/null || true; rm -rf "$DIR"' EXIT

"$PY" -m sublim.cli api --port "$PORT" --store "sqlite:///$DIR/b.db" --broker "sqlite:///$DIR/b.db" \
  >"$DIR/api.log" 2>&1 &
API_PID=$!
for _ in $(seq 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done

EXECUTION=$(curl -sf -XPOST "$URL/v1/tasks" -H 'Content-Type: application/json' \
  -d '{"topic": "Bench", "execute": true}' | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["execution"]["id"])')
cat >"$DIR/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"topic": "Bench", "payload": {"n": 1}, "labels": {"bench": "yes"}, "execute": true}'
wrk.headers["Content-Type"] = "application/json"
LUA

median_rps() {  # args: wrk arguments
  for _ in 1 2 3; do
    wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" "$@" | awk '/Requests\/sec/ {print $2}'
  done | sort -n | sed -n 2p
}
echo "GET  /v1/executions/{id}: $(median_rps "$URL/v1/executions/$EXECUTION") req/s (median of 3)"
echo "POST /v1/tasks (execute): $(median_rps -s "$DIR/post.lua" "$URL/v1/tasks") req/s (median of 3)"
