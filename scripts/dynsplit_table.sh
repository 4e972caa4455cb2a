#!/usr/bin/env bash
# scripts/dynsplit_table.sh — the DynSplit-KV comparison of docs/accuracy.md ("DynSplit-KV"):
# DD-Select against the rigid splits of the same policy (fixed intervals 8/16/32/64, fixed
# punctuation delimiters) and against ChunkKV, SnapKV and Quest at equal budgets, with
# `heterokv eval ppl` (every policy of one (model, text) in one run: they share the full baseline)
# and `heterokv eval niah` on retrieval-1.4M. Prints markdown to stdout; modest sizes (minutes).
# (scripts/accuracy_table.sh picks dynsplit up by itself with its default spec, like every policy.)
#
# usage: scripts/dynsplit_table.sh [BUILD_DIR] > out/dynsplit.md
# env:   SHARED (../shared), THREADS (1), STORIES_WINDOWS (16), RETRIEVAL_WINDOWS (4), NIAH (1: run it)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
BIN=$BUILD/bin/heterokv
SHARED=${SHARED:-../shared}
THREADS=${THREADS:-1}
STORIES_WINDOWS=${STORIES_WINDOWS:-16}
RETRIEVAL_WINDOWS=${RETRIEVAL_WINDOWS:-4}
NIAH=${NIAH:-1}
[ -x "$BIN" ] || { echo "dynsplit_table: $BIN not found (build first)" >&2; exit 1; }

# specs at budget $1 with window $2 (the SnapKV family's observation window)
specs() {
    local b=$1 w=$2 i
    echo "--policy dynsplit:budget=$b,window=$w"
    echo "--policy dynsplit:budget=$b,window=$w,accept=adaptive"
    for i in 8 16 32 64; do
        [ $((b - w - 4)) -ge $i ] && echo "--policy dynsplit:budget=$b,window=$w,split=fixed,interval=$i"
    done
    echo "--policy dynsplit:budget=$b,window=$w,split=punct"
    echo "--policy chunkkv:budget=$b,window=$w"
    echo "--policy snapkv:budget=$b,window=$w"
    echo "--policy dynsplit:budget=$b,mode=select"
    echo "--policy dynsplit:budget=$b,mode=select,split=fixed,interval=16"
    echo "--policy dynsplit:budget=$b,mode=select,split=punct"
    echo "--policy quest:budget=$b"
}

ppl() {  # MODEL CTX WINDOW CONTEXT WINDOWS FILE BUDGET WINDOW_SLOTS
    local args
    args=$(specs "$7" "$8" | tr '\n' ' ')
    echo "##### $(basename "$1") on $(basename "$6"), budget $7"
    echo
    echo '```'
    echo "heterokv eval ppl -m $1 -f $6 -c $2 --window $3 --context $4 --max-windows $5 -t $THREADS --kv-page-size 16 $args"
    echo '```'
    echo
    # shellcheck disable=SC2086
    "$BIN" eval ppl -m "$1" -f "$6" -c "$2" --window "$3" --context "$4" --max-windows "$5" -t "$THREADS" \
        --kv-page-size 16 $args 2>/dev/null
    echo
}

S=$SHARED/models/stories260K.gguf
R=$SHARED/models/retrieval-1.4M.gguf
for f in austen-emma.txt stories260K-generated.txt; do
    for b in 64 128; do ppl "$S" 512 512 256 "$STORIES_WINDOWS" "$SHARED/data/text/$f" $b 16; done
done
for b in 128 256; do ppl "$R" 2048 2048 1024 "$RETRIEVAL_WINDOWS" "$SHARED/data/text/melville-moby_dick.txt" $b 32; done
if [ "$NIAH" = 1 ]; then
    args=$(specs 256 32 | tr '\n' ' ')
    echo "##### needle in a haystack, retrieval-1.4M, budget 256, query-agnostic protocol"
    echo
    echo '```'
    echo "heterokv eval niah -m $R --haystack $SHARED/data/haystack/essays --lengths 1024,2048 --depths 0.1,0.3,0.5,0.7,0.9 --trials 2 --policy full $args -o out/dynsplit_niah"
    echo '```'
    echo
    mkdir -p out
    # shellcheck disable=SC2086
    "$BIN" eval niah -m "$R" --haystack "$SHARED/data/haystack/essays" --lengths 1024,2048 \
        --depths 0.1,0.3,0.5,0.7,0.9 --trials 2 -t "$THREADS" --policy full $args -o out/dynsplit_niah 2>&1 |
        grep -v '^\s*$' | grep -iv 'progress\|\[#' || true
fi
