#!/usr/bin/env bash
# scripts/accuracy_table.sh — regenerates docs/accuracy.md: `heterokv eval ppl` for every registered
# policy (as `heterokv eval ppl --help` lists them) at the budgets of issue 4, on
#   stories260K:     2 books + its own generated text, 512-token windows (256 context + 256 scored),
#                    budgets 32 64 128 256
#                    and stream mode (--stream) on the generated text
#   retrieval-1.4M:  2 books, 2048-token windows (1024 context + 1024 scored), budgets 64 .. 1024
# Each (model, text) is one eval run, so all policies share the full baseline of each window.
#
# usage: scripts/accuracy_table.sh [BUILD_DIR]      (default build; needs BUILD_DIR/bin/heterokv)
# env:   SHARED (../shared), OUT (docs/accuracy.md), THREADS (1: the models are tiny, one thread is
#        fastest), STORIES_WINDOWS (32), RETRIEVAL_WINDOWS (8): windows per text, spread evenly.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
BIN=$BUILD/bin/heterokv
SHARED=${SHARED:-../shared}
OUT=${OUT:-docs/accuracy.md}
THREADS=${THREADS:-1}
STORIES_WINDOWS=${STORIES_WINDOWS:-32}
RETRIEVAL_WINDOWS=${RETRIEVAL_WINDOWS:-8}
TEXT=$SHARED/data/text
BOOKS="austen-emma.txt melville-moby_dick.txt"

[ -x "$BIN" ] || { echo "accuracy_table: $BIN not found (build first: cmake --build $BUILD)" >&2; exit 1; }
[ -d "$SHARED/models" ] || { echo "accuracy_table: $SHARED/models not found (set SHARED)" >&2; exit 1; }

# Registered policies other than full (the baseline row), from the --policy help text.
POLICIES=$("$BIN" eval ppl --help | tr '\n' ' ' | sed -n 's/.*(policies: \([^)]*\)).*/\1/p' | tr -d ' ' | tr ',' ' ')
POLICIES=$(for p in $POLICIES; do [ "$p" = full ] || echo "$p"; done | tr '\n' ' ')
[ -n "$POLICIES" ] || { echo "accuracy_table: could not read the policy list from '$BIN eval ppl --help'" >&2; exit 1; }

# The spec of policy $1 at budget $2: name:budget=B with the paper's defaults. Where the default
# observation window (32) does not fit under the budget (SnapKV family at budget 32), window=B/2.
# A spec is checked with `run -n 0` (parses the spec and prefills BOS only).
spec_for() {
    local model=$1 p=$2 b=$3 s
    for s in "$p:budget=$b" "$p:budget=$b,window=$((b / 2))"; do
        if "$BIN" run -m "$model" -p "" -n 0 --no-echo -c 64 -t 1 --policy "$s" >/dev/null 2>&1; then
            echo "$s"
            return
        fi
    done
    echo "accuracy_table: no valid spec for $p at budget $b: $("$BIN" run -m "$model" -p "" -n 0 --no-echo \
        -c 64 -t 1 --policy "$p:budget=$b" 2>&1 >/dev/null)" >&2
}

# table MODEL_FILE CTX WINDOW CONTEXT WINDOWS TEXT_FILE BUDGETS...   (CONTEXT "stream": --stream)
table() {
    local model=$1 ctx=$2 window=$3 context=$4 windows=$5 file=$6
    shift 6
    local args=() p b s mode=(--context "$context")
    [ "$context" = stream ] && mode=(--stream)
    for p in $POLICIES; do
        for b in "$@"; do
            s=$(spec_for "$model" "$p" "$b")
            [ -n "$s" ] && args+=(--policy "$s")
        done
    done
    echo "##### $(basename "$file")"
    echo
    echo '```'
    echo "heterokv eval ppl -m $model -f $file -c $ctx --window $window ${mode[*]} --max-windows $windows -t $THREADS \\"
    echo "    ${args[*]}"
    echo '```'
    echo
    "$BIN" eval ppl -m "$model" -f "$file" -c "$ctx" --window "$window" "${mode[@]}" \
        --max-windows "$windows" -t "$THREADS" "${args[@]}"
    echo
}

# Pivot of the detail tables (read back from the body): per model, per policy x budget, the mean
# over the books of KLD / top-1 / KV after context (context mode only).
SUMMARY_AWK=$(cat <<'AWK'
# Pivot of the detail tables: per model, per policy x budget, KLD / top-1 / KV after context averaged
# over the books (context mode only).
BEGIN { n = split(books, b, " "); for (i = 1; i <= n; i++) isbook[b[i]] = 1 }
/^### / { model = $2; mode = "context"; if (!(model in seen)) { seen[model] = 1; models[++nm] = model }; next }
/^#### / { mode = "stream"; next }
/^##### / { file = $2; next }
/^\| / {
    if (mode != "context" || !(file in isbook) || $0 ~ /^\| policy/ || $0 ~ /baseline/) next
    split($0, f, "|")
    pol = f[2]; gsub(/^ +| +$/, "", pol)
    name = pol; sub(/:.*/, "", name)
    bud = pol; sub(/.*budget=/, "", bud); sub(/,.*/, "", bud)
    if (!((model, name) in seen_n)) { seen_n[model, name] = 1; names[model, ++nn[model]] = name }
    if (!((model, bud) in seen_b)) { seen_b[model, bud] = 1; buds[model, ++nb[model]] = bud }
    k = model SUBSEP name SUBSEP bud
    kld[k] += f[4]; top[k] += f[6]; kv[k] += f[7]; cnt[k]++
}
END {
    for (m = 1; m <= nm; m++) {
        mo = models[m]
        if (!nn[mo]) continue
        printf "### %s: mean KLD / top-1 / KV KiB after context (mean over %s)\n\n| policy |", mo, books
        for (j = 1; j <= nb[mo]; j++) printf " budget %s |", buds[mo, j]
        printf "\n|---|"
        for (j = 1; j <= nb[mo]; j++) printf "---:|"
        printf "\n"
        for (i = 1; i <= nn[mo]; i++) {
            printf "| %s |", names[mo, i]
            for (j = 1; j <= nb[mo]; j++) {
                k = mo SUBSEP names[mo, i] SUBSEP buds[mo, j]
                if (cnt[k]) printf " %.4f / %.3f / %.0f |", kld[k] / cnt[k], top[k] / cnt[k], kv[k] / cnt[k]
                else printf " n/a |"
            }
            printf "\n"
        }
        printf "\n"
    }
}
AWK
)

START=$(date +%s)
{
    cat <<EOF
# Accuracy under KV compression

Generated by \`scripts/accuracy_table.sh\` (do not edit by hand; rerun it). Policies registered at
generation: full, $(echo $POLICIES | sed 's/ /, /g'). Every number comes from \`heterokv eval ppl\` (README, \`eval ppl\`):
each window of the text is BOS + text tokens; its first C tokens are prefilled in one chunk and
compressed by the policy as it does at the end of a prompt, then the remaining tokens are fed one
at a time (decode steps, where the policy's decode behaviour applies) and each prediction is scored.
The \`full\` baseline runs the same schedule, so \`full\` against it is exact (KLD 0, top-1 1).

- **PPL**: perplexity over the scored tokens. **KLD**: KL(full || policy) of the next-token
  distributions, nats per scored token, mean and 99th percentile. **top-1**: fraction of scored
  tokens whose most likely next token is full's.
- **KV after context**: KV bytes in use after the context was prefilled and compressed (mean over
  windows; pages of 64 slots, positions included); **KV at end**: after the window's last token.
  The difference is decode growth, which depends on the policy's decode behaviour: policies that
  evict during decoding (streaming, h2o) stay near budget + their eviction slack, policies that
  compress once at the end of the prompt (snapkv, pyramidkv, adakv, chunkkv) keep every decoded
  token, and \`quest\` keeps all KV (its budget is the tokens attended per step, rounded to
  max(3, budget/64) pages + the last page, so budgets 32, 64 and 128 are the same setting here).
- Budgets are tokens per (layer, KV head) (pyramidkv and adakv: the mean). Since budgets also
  hold during decoding, an evicting policy at a budget equal to the context is not \`full\`. Where
  the SnapKV family's default observation window (32) does not fit under a budget of 32, the spec
  says window=16.
- stories260K is a TinyStories model: on the books its perplexity is high (out of domain), on its
  own generated stories it is low; both are reported. Peak RSS is the process's high-water mark,
  reset before each run; several policies in one process share the allocator's memory, so it is
  an upper bound per policy. Times are wall-clock on a shared 2-core machine.
- KV bytes are page-granular (64 slots per page, per head, K and V), so budgets 32 and 64 hold the
  same pages; pyramidkv and adakv spread budgets unevenly, so more heads need a second page.

## Summary

EOF
} > "$OUT.head"
{
    echo "### stories260K (context 512, windows of 512 tokens: 256 context + 256 scored; $STORIES_WINDOWS windows per text)"
    echo
    for f in $BOOKS stories260K-generated.txt; do
        table "$SHARED/models/stories260K.gguf" 512 512 256 "$STORIES_WINDOWS" "$TEXT/$f" 32 64 128 256
    done
    echo "#### stories260K, stream mode (--stream: BOS prefilled alone, 511 tokens scored by decode steps with the"
    echo "cache held at the budget where the policy evicts during decoding; $STORIES_WINDOWS windows)"
    echo
    table "$SHARED/models/stories260K.gguf" 512 512 stream "$STORIES_WINDOWS" "$TEXT/stories260K-generated.txt" 32 64 128 256
    echo "### retrieval-1.4M (context 2048, windows of 2048 tokens: 1024 context + 1024 scored; $RETRIEVAL_WINDOWS windows per book)"
    echo
    for f in $BOOKS; do
        table "$SHARED/models/retrieval-1.4M.gguf" 2048 2048 1024 "$RETRIEVAL_WINDOWS" "$TEXT/$f" 64 128 256 512 1024
    done
    echo "Generated in $(( $(date +%s) - START )) s with \`scripts/accuracy_table.sh\`; model files: $(cd "$SHARED/models" && sha256sum stories260K.gguf retrieval-1.4M.gguf | awk '{printf "%s%s sha256 %s", (NR > 1 ? ", " : ""), $2, substr($1, 1, 12)}')."
} > "$OUT.body"
awk -v books="$BOOKS" "$SUMMARY_AWK" "$OUT.body" > "$OUT.sum"
printf '## Details\n\n' > "$OUT.details"
# Sections made by other scripts (e.g. scripts/dynsplit_table.sh) after the marker line are kept.
MARK='<!-- kept-sections: accuracy_table.sh keeps what follows -->'
KEEP=""; [ -f "$OUT" ] && KEEP=$(sed -n "/^$MARK\$/,\$p" "$OUT")
cat "$OUT.head" "$OUT.sum" "$OUT.details" "$OUT.body" > "$OUT"
[ -n "$KEEP" ] && printf '\n%s\n' "$KEEP" >> "$OUT"
rm -f "$OUT.head" "$OUT.sum" "$OUT.details" "$OUT.body"
echo "accuracy_table: wrote $OUT" >&2
