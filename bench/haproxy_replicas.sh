#!/usr/bin/env bash
# Two `heterokv serve` replicas behind HAProxy (Debian package haproxy, installed if missing) with
# affinity on a session key (the X-Session-Id header, consistent hashing), and a bounded load through
# it: SESSIONS conversations of TURNS turns each, CONCURRENCY at a time, every turn's prompt extending
# the previous one. Passes when every request succeeds, both replicas served requests, and every
# turn after a session's first reused the previous prompt (cached_tokens >= its tokens - 2: the same
# replica got it). Each replica has more slots than sessions it sees, so no kept context is evicted.
#   bench/haproxy_replicas.sh [BUILD_DIR] [SESSIONS] [TURNS] [CONCURRENCY]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}; SESSIONS=${2:-12}; TURNS=${3:-4}; CONC=${4:-4}
MODEL=${MODEL:-../shared/models/stories260K.gguf}
P0=${PORT:-18190}; P1=$((P0 + 1)); P2=$((P0 + 2))
command -v haproxy >/dev/null || sudo_apt=1
if [ "${sudo_apt:-0}" = 1 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends haproxy >/dev/null
fi
T=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
for p in $P1 $P2; do
  "$BUILD/bin/heterokv" serve -m "$MODEL" --host 127.0.0.1 --port "$p" -c 512 -t 1 --parallel 8 --queue 16 \
    2>"$T/replica_$p.log" &
  PIDS+=($!)
done
cat >"$T/haproxy.cfg" <<CFG
global
    maxconn 256
defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s
frontend heterokv
    bind 127.0.0.1:$P0
    default_backend replicas
backend replicas
    # affinity: the same session key always reaches the same replica (its slots keep the prefix)
    balance hdr(X-Session-Id)
    hash-type consistent
    option httpchk GET /health
    http-check expect status 200
    server r1 127.0.0.1:$P1 check inter 1s
    server r2 127.0.0.1:$P2 check inter 1s
CFG
haproxy -f "$T/haproxy.cfg" -db >"$T/haproxy.log" 2>&1 &
PIDS+=($!)
for p in $P1 $P2 $P0; do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$p/health" >/dev/null && break; sleep 0.1; done
done
sleep 1.5  # the first health checks mark both servers up
python3 - "$P0" "$P1" "$P2" "$SESSIONS" "$TURNS" "$CONC" <<'PY'
import json, sys, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
p0, p1, p2, sessions, turns, conc = map(int, sys.argv[1:])
def post(session, prompt):
    body = {"prompt": prompt, "max_tokens": 16, "temperature": 0}
    req = urllib.request.Request(f"http://127.0.0.1:{p0}/v1/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", "X-Session-Id": f"s{session}"})
    t = time.time()
    j = json.load(urllib.request.urlopen(req, timeout=300))
    return j, time.time() - t
def conversation(s):
    prompt, out = f"Session {s}. Once upon a time", []
    for t in range(turns):
        j, secs = post(s, prompt)
        out.append((j["usage"]["prompt_tokens"], j["usage"]["prompt_tokens_details"]["cached_tokens"], secs))
        prompt += j["choices"][0]["text"] + f" Then, in part {t + 2},"
    return out
t0 = time.time()
with ThreadPoolExecutor(conc) as ex:
    results = list(ex.map(conversation, range(sessions)))
wall = time.time() - t0
def served(port):
    m = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    return sum(float(l.split()[-1]) for l in m.splitlines()
               if l.startswith('heterokv_requests_total{path="/v1/completions",status="200"}'))
n1, n2 = served(p1), served(p2)
later = [(c, r[i][0]) for r in results for i, (_, c, _) in enumerate(r[1:])]
hits = sum(1 for c, prev in later if c >= prev - 2)  # the text boundary may tokenize differently
prompt_tok = sum(n for r in results for (n, _, _) in r)
cached_tok = sum(c for r in results for (_, c, _) in r)
lat = sorted(s for r in results for (_, _, s) in r)
print(f"{sessions} sessions x {turns} turns, {conc} at a time: {len(lat)} requests in {wall:.1f} s, "
      f"latency p50 {lat[len(lat) // 2]:.2f} s, max {lat[-1]:.2f} s")
print(f"replica 1 served {n1:.0f}, replica 2 served {n2:.0f}")
print(f"turns after the first that reused the whole previous prompt: {hits}/{len(later)}; "
      f"prompt tokens {prompt_tok}, of which cached {cached_tok} ({100.0 * cached_tok / prompt_tok:.0f}%)")
print("per session (prompt tokens, cached):", [[(n, c) for (n, c, _) in r] for r in results])
ok = n1 > 0 and n2 > 0 and hits == len(later) and n1 + n2 == len(lat)
print("PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
