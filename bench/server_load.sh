#!/usr/bin/env bash
# Load test of `heterokv serve` on loopback: starts the server on stories260K, runs
# bench/server_load.py (32 keep-alive connections by default, 300 s), stops the server.
#   bench/server_load.sh [BUILD_DIR] [SECONDS] [CONNECTIONS] [OUT_JSON]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}; SECONDS_RUN=${2:-300}; CONN=${3:-32}; OUT=${4:-bench/out/server_load.json}
MODEL=${MODEL:-../shared/models/stories260K.gguf}
PORT=${PORT:-18181}
mkdir -p "$(dirname "$OUT")"
"$BUILD/bin/heterokv" serve -m "$MODEL" --host 127.0.0.1 --port "$PORT" -c 512 --parallel 2 --queue 8 \
  --kv-budget-mb 2 --queue-timeout 10000 2> "${OUT%.json}.server.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
rc=0
python3 bench/server_load.py --port "$PORT" --pid "$PID" --seconds "$SECONDS_RUN" --connections "$CONN" --out "$OUT" || rc=$?
curl -s "http://127.0.0.1:$PORT/metrics" > "${OUT%.json}.metrics.txt"
kill "$PID"; wait "$PID" 2>/dev/null || true
trap - EXIT
exit $rc
