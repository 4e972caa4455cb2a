#!/usr/bin/env bash
# Regenerates the measurements behind docs/ruler.md (RULER, LongBench, sweep) on the models in
# ../shared/models: tables and images under docs/ruler and docs/sweep, logs in OUT (default
# out/ruler_docs). About half an hour on two loaded cores (some parts run two at a time, -t 1 each).
set -euo pipefail
cd "$(dirname "$0")/.."
HKV=${HKV:-build/bin/heterokv}
OUT=${OUT:-out/ruler_docs}
M=../shared/models
mkdir -p "$OUT" docs/ruler docs/sweep
NEEDLE=' The special magic {type_v} for {key} is: {value}. '
QUESTION='\nWhat is the special magic {type_v} for {query}? The special magic {type_v} for {query} is:'
NIAH=niah_single_1,niah_single_2,niah_single_3,niah_multikey_1,niah_multikey_2,niah_multikey_3,niah_multivalue,niah_multiquery
PHRASE=(--niah-needle "$NEEDLE" --niah-question "$QUESTION")
run() { local name=$1; shift; $HKV "$@" > "$OUT/$name.md" 2> "$OUT/$name.err"; }
part=${1:-all}
if [ "$part" = all ] || [ "$part" = verbatim ]; then
  # RULER's own templates, full cache, every task the budget holds (cwe needs 2048 with this tokenizer).
  run verbatim_retrieval eval ruler -m $M/retrieval-1.4M.gguf --tasks $NIAH,vt,fwe --lengths 1024,2048 --samples 5 \
    -t 1 -o docs/ruler/verbatim_retrieval
  run verbatim_retrieval_cwe eval ruler -m $M/retrieval-1.4M.gguf --tasks cwe --lengths 2048 --samples 5 -t 1 \
    -o docs/ruler/verbatim_retrieval_cwe
  run verbatim_stories eval ruler -m $M/stories260K.gguf --tasks niah_single_1,niah_single_2,niah_single_3,niah_multikey_2 \
    --lengths 512 --samples 5 -t 1 -o docs/ruler/verbatim_stories
fi
if [ "$part" = all ] || [ "$part" = phrased ]; then
  # RULER niah in the retrieval model's trained phrasing, full cache: which tasks it can do.
  run phrased_full eval ruler -m $M/retrieval-1.4M.gguf --tasks $NIAH --lengths 1024 --samples 5 -t 1 \
    "${PHRASE[@]}" -o docs/ruler/phrased_full
fi
if [ "$part" = all ] || [ "$part" = policies ]; then
  # full + three baselines at two budgets on the tasks it can do, at 1024 and 2048 tokens.
  for len in 1024 2048; do
    run policies_$len eval ruler -m $M/retrieval-1.4M.gguf --tasks ${TASKS:-niah_single_1,niah_single_2,niah_multikey_1} \
      --lengths $len --samples 10 -t 1 "${PHRASE[@]}" --policy full \
      --policy snapkv:budget=128 --policy snapkv:budget=256 --policy streaming:budget=128 --policy streaming:budget=256 \
      --policy quest:budget=128 --policy quest:budget=256 -o docs/ruler/policies_$len &
  done
  wait
fi
if [ "$part" = all ] || [ "$part" = sweep ]; then
  # budget-accuracy sweeps (RULER niah_single_2 at 1024 and 2048 tokens, NIAH) and LongBench multi_news.
  for len in 1024 2048; do
    run sweep_ruler_$len eval sweep -m $M/retrieval-1.4M.gguf --task ruler --ruler-tasks niah_single_2 --length $len \
      --samples 5 "${PHRASE[@]}" --policies snapkv,streaming,quest --budgets 64,128,256,512 -t 1 \
      -o docs/sweep/ruler_niah_single_2_$len &
  done
  wait
  run sweep_niah eval sweep -m $M/retrieval-1.4M.gguf --task niah --lengths 1024,2048 --depths 0,0.25,0.5,0.75,1 --trials 1 \
    --policies snapkv,streaming,quest --budgets 64,128,256,512 -t 1 -o docs/sweep/niah_1024_2048 &
  run longbench eval longbench -m $M/retrieval-1.4M.gguf -f ../shared/data/longbench/multi_news.jsonl --rows 3 -t 1 \
    --policy full --policy snapkv:budget=256 --policy streaming:budget=256 -o docs/ruler/longbench_multi_news &
  wait
fi
