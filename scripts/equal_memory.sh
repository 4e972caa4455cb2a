#!/bin/sh
# The equal-memory comparison of docs/accuracy.md ("Equal-memory comparison", issue 18): each seed
# method at two memory points per model against every baseline at the same KV bytes after the
# context (heterokv eval equal). Heavy (tens of minutes on one core): not part of CI.
#   scripts/equal_memory.sh [BIN] [OUT_DIR] [HAY=tune|val] [MODEL=retrieval|stories|all|heldout|hc_tau|dynsplit_heads]
# heldout (not in all): EMS and DynSplit-KV, KLD only, on two books no choice was made on
set -eu
BIN=${1:-build/bin/heterokv}
OUT=${2:-docs/equal}
HAY=${3:-tune}
WHICH=${4:-all}
S=${HKV_SHARED:-../shared}
E=$S/data/haystack/essays
T=$S/data/text
mkdir -p "$OUT"
if [ "$HAY" = tune ]; then   # chosen on these: the first 12 essays in name order
    ESSAYS="addiction aord apple avg before bias boss copy corpdev desres diff ecw"
else                         # checked on these
    ESSAYS="philosophy popular pow rootsoflisp rss siliconvalley startuplessons submarine sun superangels todo unions"
fi
HAYARGS=""
for e in $ESSAYS; do HAYARGS="$HAYARGS --haystack $E/$e.txt"; done
RUN="nice -n 10 $BIN eval equal -t 1 --probe-windows 1"

if [ "$WHICH" = all ] || [ "$WHICH" = retrieval ]; then
    TAX=tests/data/heterocache/retrieval-1.4M_topk0.2.json
    R="-m $S/models/retrieval-1.4M.gguf -c 2048 --window 2048 --context 1024 --max-windows 2 \
       -f $T/austen-emma.txt -f $T/melville-moby_dick.txt $HAYARGS --length 2048 --depths 0.1,0.3,0.5,0.7,0.9 --trials 4"
    # two processes (one thread each): EMS then DynSplit-KV at budgets 128 and 256 (one file each, so
    # a stopped run keeps what finished); HeteroCache at two ratios (7 of its 12 KV heads are full, so
    # the ratio must exceed 7/12)
    # shellcheck disable=SC2086
    { $RUN $R --method ems:budget=128,decode=0 --method ems:budget=256,decode=0 -o "$OUT/retrieval_${HAY}_ems" &&
      $RUN $R --method dynsplit:budget=128 --method dynsplit:budget=256 -o "$OUT/retrieval_${HAY}_dynsplit"; } &
    # shellcheck disable=SC2086
    $RUN $R --method heterocache:taxonomy=$TAX,ratio=0.65 --method heterocache:taxonomy=$TAX,ratio=0.75 \
        -o "$OUT/retrieval_${HAY}_hc" &
    wait
fi
if [ "$WHICH" = all ] || [ "$WHICH" = stories ]; then
    TAX=tests/data/heterocache/stories260K_topk0.2.json
    # KLD only: stories260K (a TinyStories model) retrieves no needle even with the full cache
    $RUN -m $S/models/stories260K.gguf -c 512 --window 512 --context 256 --max-windows 16 \
        -f $T/austen-emma.txt -f $T/melville-moby_dick.txt \
        --method ems:budget=64,decode=0 --method ems:budget=128,decode=0 \
        --method dynsplit:budget=64 --method dynsplit:budget=128 \
        --method heterocache:taxonomy=$TAX,ratio=0.5 --method heterocache:taxonomy=$TAX,ratio=0.75 \
        --method dynsplit:budget=64,split=fixed,interval=16 --method dynsplit:budget=64,kernel=15 \
        --method dynsplit:budget=64,block_score=max \
        -o "$OUT/stories"
fi
if [ "$WHICH" = all ] || [ "$WHICH" = dynsplit ]; then
    # DynSplit-KV ablation (stories260K, budget 64): block length from 1 (token-level, one selection per
    # layer) to 16, against the three best baselines
    $RUN -m $S/models/stories260K.gguf -c 512 --window 512 --context 256 --max-windows 16 \
        -f $T/austen-emma.txt -f $T/melville-moby_dick.txt --baselines snapkv,adakv,chunkkv \
        --method dynsplit:budget=64,split=fixed,interval=1 --method dynsplit:budget=64,split=fixed,interval=2 \
        --method dynsplit:budget=64,split=fixed,interval=4 --method dynsplit:budget=64,split=fixed,interval=8 \
        --method dynsplit:budget=64,target=8,min_len=2 --method dynsplit:budget=64,split=punct \
        -o "$OUT/stories_dynsplit_ablation"
fi
if [ "$WHICH" = all ] || [ "$WHICH" = dynsplit_retrieval ]; then
    # DynSplit-KV's shorter blocks on retrieval-1.4M at budget 256, against the three best baselines
    # shellcheck disable=SC2086
    $RUN -m $S/models/retrieval-1.4M.gguf -c 2048 --window 2048 --context 1024 --max-windows 2 \
        -f $T/austen-emma.txt -f $T/melville-moby_dick.txt $HAYARGS --length 2048 --depths 0.1,0.3,0.5,0.7,0.9 \
        --trials 4 --baselines snapkv,adakv,chunkkv \
        --method dynsplit:budget=256,target=8,min_len=2 --method dynsplit:budget=256,split=punct \
        -o "$OUT/retrieval_${HAY}_dynsplit_variants"
fi
if [ "$WHICH" = heldout ]; then
    # KLD only (NIAH does not depend on the text): austen-persuasion and chesterton-brown were never
    # used to choose an option; same windows and memory points as the runs above
    H="-f $T/austen-persuasion.txt -f $T/chesterton-brown.txt"
    # shellcheck disable=SC2086
    $RUN -m $S/models/retrieval-1.4M.gguf -c 2048 --window 2048 --context 1024 --max-windows 2 $H \
        --method ems:budget=128,decode=0 --method ems:budget=256,decode=0 \
        --method dynsplit:budget=128 --method dynsplit:budget=256 -o "$OUT/retrieval_heldout"
    # shellcheck disable=SC2086
    $RUN -m $S/models/stories260K.gguf -c 512 --window 512 --context 256 --max-windows 16 $H \
        --method ems:budget=64,decode=0 --method ems:budget=128,decode=0 \
        --method dynsplit:budget=64 --method dynsplit:budget=128 -o "$OUT/stories_heldout"
fi
if [ "$WHICH" = dynsplit_heads ]; then
    # DynSplit-KV per KV head (heads=adaptive) on stories260K: the best stories260K setting of the
    # ablation (scripts/dynsplit_ablation.sh) and heads=adaptive with the default blocks, against the
    # four best baselines, on the tuning books, then the held-out ones
    DS="--method dynsplit:budget=64,heads=adaptive,split=fixed,interval=4,sinks=0 \
        --method dynsplit:budget=128,heads=adaptive,split=fixed,interval=4,sinks=0"
    # shellcheck disable=SC2086
    $RUN -m $S/models/stories260K.gguf -c 512 --window 512 --context 256 --max-windows 16 \
        -f $T/austen-emma.txt -f $T/melville-moby_dick.txt --baselines snapkv,adakv,chunkkv,pyramidkv $DS \
        --method dynsplit:budget=64,heads=adaptive --method dynsplit:budget=128,heads=adaptive \
        -o "$OUT/stories_dynsplit_heads_tune"
    # shellcheck disable=SC2086
    $RUN -m $S/models/stories260K.gguf -c 512 --window 512 --context 256 --max-windows 16 \
        -f $T/austen-persuasion.txt -f $T/chesterton-brown.txt --baselines snapkv,adakv,chunkkv,pyramidkv $DS \
        -o "$OUT/stories_dynsplit_heads_heldout"
fi
if [ "$WHICH" = hc_tau ]; then
    # HeteroCache with retrieval-1.4M taxonomies calibrated at lower tau_stable (fewer full heads):
    # 0.45 (6 full heads) and 0.4 (4 full) with pool=31, at the two ratios of the runs above
    D=tests/data/heterocache
    R="-m $S/models/retrieval-1.4M.gguf -c 2048 --window 2048 --context 1024 --max-windows 2 \
       -f $T/austen-emma.txt -f $T/melville-moby_dick.txt $HAYARGS --length 2048 --depths 0.1,0.3,0.5,0.7,0.9 --trials 4"
    # shellcheck disable=SC2086
    $RUN $R --method heterocache:taxonomy=$D/retrieval-1.4M_topk0.2_stable0.45.json,ratio=0.65 \
        --method heterocache:taxonomy=$D/retrieval-1.4M_topk0.2_stable0.45.json,ratio=0.75 \
        -o "$OUT/retrieval_${HAY}_hc_stable045" &
    # shellcheck disable=SC2086
    $RUN $R --method heterocache:taxonomy=$D/retrieval-1.4M_topk0.2_stable0.4.json,ratio=0.65,pool=31 \
        --method heterocache:taxonomy=$D/retrieval-1.4M_topk0.2_stable0.4.json,ratio=0.75,pool=31 \
        -o "$OUT/retrieval_${HAY}_hc_stable040" &
    wait
fi
