#!/usr/bin/env bash
# tools/reference/fidelity.sh — the comparison in docs/fidelity.md: heterokv's policies against
# NVIDIA kvpress 0.5.4 and the HeteroCache reference code, on the same windows of the same models.
# For each model: gguf_to_hf.py converts it; `heterokv eval ppl --dump` runs every policy spec below
# (KV f32, one thread) and records the windows, kept positions and logits; run_reference.py runs
# the references on those windows; compare.py prints the table. Nothing here is part of the build,
# the tests or CI (they check the goldens made with --goldens).
#
# usage: tools/reference/fidelity.sh [--goldens] [BUILD_DIR]          (default build)
#   --goldens: instead of the table, regenerate the CI goldens tests/data/fidelity/<model>.json
#   (a few windows and policies; golden.py packs them; tests/model/test_fidelity.cpp checks them)
# env:   KVPRESS      kvpress 0.5.4 source tree (the folder holding kvpress/), required
#        HETEROCACHE  HeteroCache reference tree (holding heterocache/ and tools/), required
#        OUT          work folder for models, dumps and tables (default /tmp/hkv-fidelity)
#        SHARED       ../shared;  REF  the reference stack (default $SHARED/tools/llamacpp-ref)
#        MODELS       "stories retrieval" (default) or one of them
#        EXTRA        extra policy specs for both models (space-separated)
# The reference stack: $REF setup; $REF setup-python; $REF apt-install python3-pandas
# python3-cachetools python3-accelerate python3-fire (see README.md here).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
GOLDENS=0
[ "${1:-}" = --goldens ] && { GOLDENS=1; shift; }
BUILD=${1:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
BIN=$BUILD/bin/heterokv
SHARED=$(cd "${SHARED:-$ROOT/../shared}" && pwd)
REF=${REF:-$SHARED/tools/llamacpp-ref}
OUT=${OUT:-/tmp/hkv-fidelity}
MODELS=${MODELS:-stories retrieval}
: "${KVPRESS:?set KVPRESS to a kvpress 0.5.4 source tree}" "${HETEROCACHE:?set HETEROCACHE to a HeteroCache tree}"
[ -x "$BIN" ] || { echo "fidelity: $BIN not found (build first)" >&2; exit 1; }
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
HERE=$ROOT/tools/reference

# The reference stack sees the folder above its working directory's repository; run it from
# ../shared (not a repository), whose parent holds the project, so every absolute path works.
py() { (cd "$SHARED" && "$REF" python3 "$@"); }

# specs MODEL BUDGETS... : the policy specs compared for a model (hyperparameters kvpress accepts:
# avg pooling; the SnapKV family's window is 32, or budget/2 where 32 does not fit)
specs() {
    local b w
    for b in "$@"; do
        w=32; [ "$b" -le 32 ] && w=$((b / 2))
        echo "streaming:budget=$b"
        echo "snapkv:budget=$b,window=$w,pool=avg"
        echo "pyramidkv:budget=$b,window=$w,pool=avg"
        echo "adakv:budget=$b,window=$w,pool=avg"
        echo "chunkkv:budget=$b,window=$w,pool=avg"
        echo "h2o:budget=$b"
        echo "knorm:budget=$b"
        echo "tova:budget=$b"
    done
}

# valid MODEL SPEC: the spec parses for this build (policies added later are skipped, not errors)
valid() { "$BIN" run -m "$1" -p "" -n 0 --no-echo -c 64 -t 1 --policy "$2" >/dev/null 2>&1; }

run_model() {  # NAME GGUF TEXT CTX WINDOW CONTEXT WINDOWS "BUDGETS" TAXONOMY "RATIOS" [--max-positions N]
    local name=$1 gguf=$2 text=$3 ctx=$4 window=$5 context=$6 windows=$7 budgets=$8 tax=$9 ratios=${10}
    shift 10
    local hf=$OUT/hf/$name args=() s r
    [ -f "$hf/model.safetensors" ] || py "$HERE/gguf_to_hf.py" "$gguf" "$hf" "$@"
    while read -r s; do
        valid "$gguf" "$s" && args+=(--policy "$s")
    done < <(specs $budgets; for r in $ratios; do echo "heterocache:taxonomy=$tax,ratio=$r,select=reference,obs=1,weights=taxonomy"; done
             for s in ${EXTRA:-}; do echo "$s"; done)
    echo "### $name: $(basename "$gguf") on $(basename "$text"), $windows windows of $window tokens ($context context + $((window - context)) scored)"
    echo
    echo '```'
    echo "heterokv eval ppl -m $gguf -f $text -c $ctx --window $window --context $context --max-windows $windows -t 1 --kv-type f32 --dump $OUT/$name ${args[*]}"
    echo "run_reference.py $OUT/$name.json --hf $hf --kvpress KVPRESS --heterocache HETEROCACHE --root ROOT -o $OUT/$name.ref.json"
    echo "compare.py $OUT/$name.json $OUT/$name.ref.json"
    echo '```'
    echo
    "$BIN" eval ppl -m "$gguf" -f "$text" -c "$ctx" --window "$window" --context "$context" --max-windows "$windows" \
        -t 1 --kv-type f32 --dump "$OUT/$name" "${args[@]}" >"$OUT/$name.md"
    py "$HERE/run_reference.py" "$OUT/$name.json" --hf "$hf" --kvpress "$KVPRESS" --heterocache "$HETEROCACHE" \
        --root "$ROOT" -o "$OUT/$name.ref.json" >&2
    python3 "$HERE/compare.py" "$OUT/$name.json" "$OUT/$name.ref.json" --json "$OUT/$name.table.json"
    echo
}

# golden MODEL GGUF TEXT(rel. to ../shared) CTX WINDOW CONTEXT WINDOWS SPEC... : tests/data/fidelity/MODEL.json
golden() {
    local name=$1 gguf=$2 text=$3 ctx=$4 window=$5 context=$6 windows=$7 hf=$OUT/hf/$1 s args=()
    shift 7
    [ -f "$hf/model.safetensors" ] || py "$HERE/gguf_to_hf.py" "$gguf" "$hf" --max-positions "$ctx"
    for s in "$@"; do valid "$gguf" "$s" && args+=(--policy "$s"); done
    local cmd1="heterokv eval ppl -m ../shared/models/$(basename "$gguf") -f ../shared/$text -c $ctx --window $window --context $context --max-windows $windows -t 1 --kv-type f32 --dump D ${args[*]}"
    "$BIN" eval ppl -m "$gguf" -f "$SHARED/$text" -c "$ctx" --window "$window" --context "$context" \
        --max-windows "$windows" -t 1 --kv-type f32 --dump "$OUT/golden-$name" "${args[@]}" >/dev/null
    py "$HERE/run_reference.py" "$OUT/golden-$name.json" --hf "$hf" --kvpress "$KVPRESS" --heterocache "$HETEROCACHE" \
        --root "$ROOT" -o "$OUT/golden-$name.ref.json" >&2
    local versions
    versions=$(py -c 'import torch, transformers; print(f"torch {torch.__version__}, transformers {transformers.__version__}")')
    mkdir -p "$ROOT/tests/data/fidelity"
    python3 "$HERE/golden.py" "$OUT/golden-$name.json" "$OUT/golden-$name.ref.json" --text "$text" --ctx "$ctx" \
        --versions "kvpress 0.5.4 (6d96555), HeteroCache 01dc7fe, $versions" \
        --command "$cmd1" --command "tools/reference/run_reference.py D.json --hf HF --kvpress KVPRESS --heterocache HETEROCACHE -o R.json" \
        --command "tools/reference/golden.py D.json R.json --text $text --ctx $ctx -o tests/data/fidelity/$name.json" \
        -o "$ROOT/tests/data/fidelity/$name.json"
}

cd "$ROOT"
if [ "$GOLDENS" = 1 ]; then
    golden stories260K "$SHARED/models/stories260K.gguf" data/text/stories260K-generated.txt 512 320 256 2 \
        streaming:budget=64 snapkv:budget=64,pool=avg chunkkv:budget=64,pool=avg adakv:budget=64,pool=avg \
        knorm:budget=64 tova:budget=64 heterocache:taxonomy=tests/data/heterocache/stories260K_topk0.2.json,ratio=0.5,select=reference,obs=1,weights=taxonomy
    golden retrieval-1.4M "$SHARED/models/retrieval-1.4M.gguf" data/text/austen-emma.txt 2048 1088 1024 1 \
        streaming:budget=128 snapkv:budget=128,pool=avg chunkkv:budget=128,pool=avg adakv:budget=128,pool=avg \
        knorm:budget=128 tova:budget=128 heterocache:taxonomy=tests/data/heterocache/retrieval-1.4M_topk0.2.json,ratio=0.7,select=reference,obs=1,weights=taxonomy
    exit 0
fi
for m in $MODELS; do
    case $m in
    stories) run_model stories "$SHARED/models/stories260K.gguf" "$SHARED/data/text/stories260K-generated.txt" 512 320 256 16 \
        "32 64 128" tests/data/heterocache/stories260K_topk0.2.json "0.3 0.5 0.7" --max-positions 512 ;;
    retrieval) run_model retrieval "$SHARED/models/retrieval-1.4M.gguf" "$SHARED/data/text/austen-emma.txt" 2048 1088 1024 8 \
        "64 128 256 512" tests/data/heterocache/retrieval-1.4M_topk0.2.json "0.7 0.9" ;;
    *) echo "fidelity: unknown model '$m' (stories, retrieval)" >&2; exit 1 ;;
    esac
done
