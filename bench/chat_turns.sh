#!/usr/bin/env bash
# A scripted conversation of TURNS turns through `heterokv chat` (a pipe, /stats after every turn)
# with a policy that evicts while decoding: per turn, the process RSS and the decode time per token
# (from /stats' cumulative timings). Compares the last 20 turns with turns 20-40: both must be
# within 10% (memory and latency stay flat). The model is a synthetic SmolLM2-135M with a ChatML
# template (8192-token context), written once.
#   bench/chat_turns.sh [BUILD_DIR] [TURNS] [POLICY] [REPLY_TOKENS]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}; TURNS=${2:-200}; POLICY=${3:-streaming:budget=256}; NREP=${4:-16}
MODEL=${MODEL:-/tmp/hkv_smollm2_chatml.gguf}
if [ ! -f "$MODEL" ]; then
  "$BUILD/bin/heterokv" make-model --preset smollm2-135m \
    --tokenizer ../shared/models/smollm2-135m-tokenizer/tokenizer.json \
    --chat-template tests/data/chat_templates/chatml.jinja -o "$MODEL" >/dev/null 2>&1
fi
ERR=${ERR:-$(mktemp)}  # the chat's stderr (/stats after every turn); ERR=FILE keeps it
echo "load before: $(uptime)"
python3 -c "
for t in range($TURNS):
    print(f'Turn {t}: and then?')
    print('/stats')
" | "$BUILD/bin/heterokv" chat -m "$MODEL" -c 8192 -t 2 -n "$NREP" --temp 0 --policy "$POLICY" \
    2>"$ERR" >/dev/null
echo "load after:  $(uptime)"
python3 - "$ERR" "$TURNS" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
if "the context is full" in text:
    print("the context filled up before the last turn"); sys.exit(1)
rss = [float(x) for x in re.findall(r"process RSS ([0-9.]+) MiB", text)]
dec = [(int(n), float(ms)) for n, ms in re.findall(r"; decode (\d+) tokens in ([0-9.]+) ms", text)]
kv = [float(x) for x in re.findall(r"KV cache: ([0-9.]+) MiB in use", text)]
pos = [int(x) for x in re.findall(r"slots over .*?, (\d+) of \d+ positions", text)]
turns = int(sys.argv[2])
assert len(rss) == turns and len(dec) == turns, (len(rss), len(dec))
pre = [(int(n), float(ms)) for n, ms in re.findall(r"; prefill (\d+) tokens in ([0-9.]+) ms", text)]
def per_turn(cum):  # ms per token in each turn, from cumulative (tokens, ms)
    out, prev = [], (0, 0.0)
    for n, ms in cum:
        out.append((ms - prev[1]) / max(1, n - prev[0]))
        prev = (n, ms)
    return out
per_tok, per_pre = per_turn(dec), per_turn(pre)
def mean(v): return sum(v) / len(v)
a, b = slice(20, 40), slice(turns - 20, turns)
r_rss, r_tok = mean(rss[b]) / mean(rss[a]), mean(per_tok[b]) / mean(per_tok[a])
print(f"{turns} turns, {pos[-1]} positions at the end; KV in use: turn 20 {kv[19]:.2f} MiB, last {kv[-1]:.2f} MiB")
print(f"RSS MiB: turns 20-40 {mean(rss[a]):.1f}, last 20 {mean(rss[b]):.1f} (ratio {r_rss:.3f})")
print(f"decode ms/token: turns 20-40 {mean(per_tok[a]):.2f}, last 20 {mean(per_tok[b]):.2f} (ratio {r_tok:.3f})")
# On a shared machine the load moves every figure: the turn's prefill ms/token (a fixed amount of work
# per token, the cache being bounded) is the yardstick measured in the same turns.
r_norm = (mean(per_tok[b]) / mean(per_pre[b])) / (mean(per_tok[a]) / mean(per_pre[a]))
print(f"prefill ms/token: turns 20-40 {mean(per_pre[a]):.2f}, last 20 {mean(per_pre[b]):.2f}; "
      f"decode/prefill ratio, last 20 vs turns 20-40: {r_norm:.3f}")
ok = abs(r_rss - 1) <= 0.10 and abs(r_tok - 1) <= 0.10
print("PASS" if ok else "FAIL", "(both within 10%)")
sys.exit(0 if ok else 1)
PY
