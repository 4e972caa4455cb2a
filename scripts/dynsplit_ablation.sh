#!/bin/sh
# DynSplit-KV on stories260K: why it loses at equal bytes (docs/accuracy.md, "DynSplit-KV on
# stories260K: why it loses", issue 18). `heterokv eval ppl` of each setting on the two tuning books
# and the two held-out books (one file each), and the best settings on retrieval-1.4M. Light for
# stories260K (seconds per policy and book), a few minutes for retrieval-1.4M; not part of CI.
#   scripts/dynsplit_ablation.sh [BIN] [OUT_DIR] [WINDOWS=16]
set -eu
BIN=${1:-build/bin/heterokv}
OUT=${2:-/tmp/dynsplit_ablation}
NW=${3:-16}
S=${HKV_SHARED:-../shared}
T=$S/data/text
BOOKS="austen-emma melville-moby_dick austen-persuasion chesterton-brown"
mkdir -p "$OUT"
D=dynsplit:budget
AF=heads=adaptive,split=fixed,interval=4
# stories260K, budgets 64 and 128 (42.5 and 85 KiB), against the best baselines at the same bytes
P64="snapkv:budget=64 adakv:budget=61 snapkv:budget=64,sinks=4 $D=64 $D=64,sinks=0 $D=64,sinks=1 $D=64,page=8
     $D=64,kernel=1 $D=64,kernel=3 $D=64,window=16 $D=64,block_score=sqrt $D=64,split=punct $D=64,target=8,min_len=2
     $D=64,target=4,min_len=1 $D=64,candidates=all,target=4,min_len=2 $D=64,split=fixed,interval=1
     $D=64,split=fixed,interval=4 $D=64,heads=each $D=64,heads=adaptive $D=64,heads=each,target=8,min_len=2
     $D=64,heads=each,candidates=all,target=4,min_len=2 $D=64,heads=each,split=fixed,interval=1
     $D=64,heads=each,split=fixed,interval=2 $D=64,heads=each,split=fixed,interval=4 $D=64,heads=each,split=fixed,interval=8
     $D=64,$AF $D=64,$AF,sinks=0 $D=64,$AF,sinks=0,window=16"
P128="snapkv:budget=128 adakv:budget=124 $D=128 $D=128,kernel=1 $D=128,window=16 $D=128,block_score=sqrt
     $D=128,target=4,min_len=1 $D=128,split=fixed,interval=1 $D=128,split=fixed,interval=4 $D=128,heads=each
     $D=128,heads=adaptive $D=128,heads=each,candidates=all,target=4,min_len=2 $D=128,heads=each,split=fixed,interval=1
     $D=128,heads=each,split=fixed,interval=2 $D=128,heads=each,split=fixed,interval=4 $D=128,$AF $D=128,$AF,sinks=0"
for b in $BOOKS; do
    ARGS=""
    for p in $P64 $P128; do ARGS="$ARGS --policy $p"; done
    # shellcheck disable=SC2086
    nice -n 10 "$BIN" eval ppl -m $S/models/stories260K.gguf -c 512 --window 512 --context 256 \
        --max-windows "$NW" -t 1 -f $T/$b.txt $ARGS -o "$OUT/stories_$b.md"
done
# retrieval-1.4M, budgets 128 and 256 (195 and 390 KiB): the per-head and short-block settings
R="$D=128 $D=128,heads=each $D=128,heads=adaptive $D=128,split=fixed,interval=4 $D=128,heads=each,split=fixed,interval=4
   $D=128,$AF,sinks=0 $D=256 $D=256,heads=each $D=256,heads=adaptive $D=256,split=fixed,interval=4
   $D=256,heads=each,split=fixed,interval=4 $D=256,$AF,sinks=0"
for b in $BOOKS; do
    ARGS=""
    for p in $R; do ARGS="$ARGS --policy $p"; done
    # shellcheck disable=SC2086
    nice -n 10 "$BIN" eval ppl -m $S/models/retrieval-1.4M.gguf -c 2048 --window 2048 --context 1024 \
        --max-windows 2 -t 1 -f $T/$b.txt $ARGS -o "$OUT/retrieval_$b.md"
done
