#!/usr/bin/env bash
# Prompt reuse in `heterokv serve`: two chat-style completions sharing a PREFIX-token prefix (a long
# system prompt), then the second again with "cache_prompt": false. Prints the cached tokens and the
# time to first token (the server's heterokv.ttft_ms) of each, and the ratio second / first.
# The model is a synthetic SmolLM2-135M with a ChatML template (8192-token context), written once.
#   bench/server_reuse.sh [BUILD_DIR] [PREFIX_TOKENS]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}; PREFIX=${2:-2000}
MODEL=${MODEL:-/tmp/hkv_smollm2_chatml.gguf}
PORT=${PORT:-18183}
if [ ! -f "$MODEL" ]; then
  "$BUILD/bin/heterokv" make-model --preset smollm2-135m \
    --tokenizer ../shared/models/smollm2-135m-tokenizer/tokenizer.json \
    --chat-template tests/data/chat_templates/chatml.jinja -o "$MODEL" >/dev/null 2>&1
fi
"$BUILD/bin/heterokv" serve -m "$MODEL" --host 127.0.0.1 --port "$PORT" -c 4096 -t 2 2>/tmp/hkv_server_reuse.log &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.2; done
python3 - "$PORT" "$PREFIX" <<'PY'
import json, sys, urllib.request
port, prefix = int(sys.argv[1]), int(sys.argv[2])
def ask(prompt, **extra):
    body = {"prompt": prompt, "max_tokens": 8, "temperature": 0, **extra}
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    j = json.load(urllib.request.urlopen(req, timeout=600))
    return j["usage"]["prompt_tokens_details"]["cached_tokens"], j["heterokv"]["ttft_ms"], j["usage"]["prompt_tokens"]
shared = [1] + [(7 * i) % 40000 + 100 for i in range(prefix - 1)]   # token ids: BOS + a long prefix
q1, q2 = [500 + i for i in range(40)], [900 + i for i in range(40)]
c1, t1, n1 = ask(shared + q1)
c2, t2, n2 = ask(shared + q2)
c3, t3, n3 = ask(shared + q2, cache_prompt=False)
print(f"first:  prompt {n1} tokens, cached {c1}, ttft {t1:.0f} ms")
print(f"second: prompt {n2} tokens, cached {c2}, ttft {t2:.0f} ms  (ratio to first {t2 / t1:.3f})")
print(f"second, cache_prompt false: cached {c3}, ttft {t3:.0f} ms")
ok = c2 >= prefix and t2 <= 0.3 * t1
print("PASS" if ok else "FAIL", f"(cached >= {prefix} and ttft ratio <= 0.3)")
sys.exit(0 if ok else 1)
PY
