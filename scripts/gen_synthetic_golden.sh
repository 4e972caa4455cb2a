#!/usr/bin/env bash
# Regenerates the synthetic-model goldens in tests/data/golden/: builds the tiny synthetic models with
# heterokv make-model (deterministic: same seed, same bytes), then records llama.cpp's next-token
# log-probabilities on them:
#   <preset>_q8_0_probs.json       q8_0 weights, llama-server defaults (f16 cache)
#   <preset>_f16_f32kv_probs.json  f16 weights, llama-server -fa off -ctk f32 -ctv f32
# Needs build/bin/heterokv and ../shared/tools/llamacpp-ref set up.
set -euo pipefail
cd "$(dirname "$0")/.."
TOK=../shared/models/smollm2-135m-tokenizer/tokenizer.json
PROMPT="tests/data/golden/synthetic_prompt.txt"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# tiny-qwen3, -gemma2, -gemma3, -phi3 (issue 20): QK norm with head_dim != n_embd / n_head; soft-caps,
# post-norms, GeGLU, 32-position windows (the prompt has 86 tokens), gemma3's local RoPE base and
# linear x8 on global layers; fused QKV and gate/up, LongRoPE's long factors, partial RoPE
for preset in tiny-llama tiny-qwen2 tiny-qwen3 tiny-gemma2 tiny-gemma3 tiny-phi3; do
  build/bin/heterokv make-model --preset $preset --type q8_0 --seed 1 --tokenizer $TOK -o "$TMP/$preset-q8_0.gguf" 2>/dev/null
  python3 scripts/golden_probs.py "$TMP/$preset-q8_0.gguf" "tests/data/golden/${preset}_q8_0_probs.json" \
    --prompt-file "$PROMPT" --n-predict 16 --ctx 2048
  build/bin/heterokv make-model --preset $preset --type f16 --seed 1 --tokenizer $TOK -o "$TMP/$preset-f16.gguf" 2>/dev/null
  python3 scripts/golden_probs.py "$TMP/$preset-f16.gguf" "tests/data/golden/${preset}_f16_f32kv_probs.json" \
    --prompt-file "$PROMPT" --n-predict 16 --ctx 2048 --server-args="-fa off -ctk f32 -ctv f32"
done
# Llama-3 rope frequency factors and an untied output matrix
build/bin/heterokv make-model --preset tiny-llama3 --type f16 --seed 1 --tokenizer $TOK -o "$TMP/tiny-llama3-f16.gguf" 2>/dev/null
python3 scripts/golden_probs.py "$TMP/tiny-llama3-f16.gguf" "tests/data/golden/tiny-llama3_f16_f32kv_probs.json" \
  --prompt-file "$PROMPT" --n-predict 16 --ctx 2048 --server-args="-fa off -ctk f32 -ctv f32"
