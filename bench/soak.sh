#!/usr/bin/env bash
# Soak of `heterokv serve` on loopback (issue 24): starts the server on stories260K at --parallel 2,
# runs bench/soak.py (valid, malformed and slow clients; /health probes; RSS every 10 s) for SECONDS,
# then stops the server with SIGTERM (it must drain and exit 0) and looks for sanitizer reports in
# its log. Exit 0 only if soak.py passed (documented statuses only, /health p99 < 100 ms, RSS within
# 10% after the warm-up), the server exited 0, and its log holds no AddressSanitizer/UBSan report.
#   bench/soak.sh [BUILD_DIR=build] [SECONDS=600] [OUT_JSON=bench/out/soak.json]
#   NICE=10 bench/soak.sh build-asan 120 bench/out/soak_asan.json   # load clients at nice 10 (not the probe)
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}; SECS=${2:-600}; OUT=${3:-bench/out/soak.json}
MODEL=${MODEL:-../shared/models/stories260K.gguf}
PORT=${PORT:-18191}
LOG="${OUT%.json}.server.log"
mkdir -p "$(dirname "$OUT")"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
"$BUILD/bin/heterokv" serve -m "$MODEL" --host 127.0.0.1 --port "$PORT" -c 512 --parallel 2 --queue 4 \
  --kv-budget-mb 2 --queue-timeout 5000 --max-body-kb 64 --request-timeout 5 --drain-timeout 10 \
  --chat-template chatml -t 1 2> "$LOG" &
PID=$!
trap 'kill -9 $PID 2>/dev/null || true' EXIT
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
WARMUP=$(( SECS >= 300 ? 60 : SECS / 5 ))
python3 bench/soak.py --port "$PORT" --pid "$PID" --seconds "$SECS" --warmup "$WARMUP" --nice "${NICE:-0}" \
  --out "$OUT"
soak=$?
curl -s "http://127.0.0.1:$PORT/metrics" > "${OUT%.json}.metrics.txt"
kill -TERM "$PID"
wait "$PID"
server=$?
trap - EXIT
reports=$(grep -cE "ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:" "$LOG")
echo "soak: soak.py exit $soak, server exit $server after SIGTERM, sanitizer reports $reports (log $LOG)"
[ "$soak" -eq 0 ] && [ "$server" -eq 0 ] && [ "$reports" -eq 0 ]
