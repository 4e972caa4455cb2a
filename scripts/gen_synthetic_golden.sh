#!/usr/bin/env bash
# Regenerates tests/data/golden/tiny-{llama,qwen2}_q8_0_probs.json: builds the tiny synthetic models
# with heterokv make-model (deterministic), then records llama.cpp's next-token log-probabilities.
# Needs build/bin/heterokv and ../shared/tools/llamacpp-ref set up.
set -euo pipefail
cd "$(dirname "$0")/.."
TOK=../shared/models/smollm2-135m-tokenizer/tokenizer.json
PROMPT="tests/data/golden/synthetic_prompt.txt"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for preset in tiny-llama tiny-qwen2; do
  build/bin/heterokv make-model --preset $preset --type q8_0 --seed 1 --tokenizer $TOK -o "$TMP/$preset.gguf"
  python3 scripts/golden_probs.py "$TMP/$preset.gguf" "tests/data/golden/${preset}_q8_0_probs.json" \
    --prompt-file "$PROMPT" --n-predict 16 --ctx 2048
done
