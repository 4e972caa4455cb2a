#!/usr/bin/env bash
# bench/compare_llamacpp.sh — heterokv vs llama.cpp (llama-bench) on the same GGUF files, one run.
#
#   bench/compare_llamacpp.sh [options] -m MODEL.gguf [-m MODEL2.gguf ...]
#
#   -m FILE[@LIST]  model file (repeat for several); required. FILE@0,8k,32k gives this model its own
#                depths instead of -d's
#   -d LIST      context depths, comma-separated, k suffix allowed   (default 0,4096,16384,32768)
#   -p N         prompt length of the pp test                         (default 512)
#   -n N         generation length of the tg test                     (default 64)
#   -r N         repetitions per test (both engines)                  (default 3)
#   -t N         threads (both engines)                               (default 2)
#   --hkv PATH   heterokv binary                                      (default build/bin/heterokv)
#   --ref PATH   llama.cpp wrapper                                    (default ../shared/tools/llamacpp-ref)
#   --raw DIR    keep every raw CSV and log there                     (default: a temp dir, deleted)
#   --policy SPEC  also run heterokv with this KV policy (repeatable), e.g.
#                heterocache:taxonomy=T.json,ratio=0.1; a second table gives each policy's tok/s and KV
#                against heterokv full and llama.cpp (same depth, same run)
#   --table-only print the table from the CSVs already in --raw DIR (no runs), e.g. after an
#                interrupted run
#   -ctk T, -ctv T  KV cache types of K and V for both engines (f16, q8_0, q4_0; default f16): heterokv
#                bench -ctk/-ctv, llama.cpp -ctk/-ctv with flash attention on (-fa on; llama.cpp needs
#                it for a quantized V cache), also when it resumes heterokv's session
#   --ref-from-hkv  llama.cpp resumes heterokv's cache instead of filling each depth itself (its own
#                prefill of 64K takes hours on 2 cores): heterokv full fills all depths in one process
#                and writes each as a llama.cpp session (bench --llamacpp-session), then llama-completion
#                resumes each session -r times for -n tokens and its "eval time" gives llama.cpp's decode
#                rate at that depth; with -p N > 0 it also resumes it from SESSION.pp.txt (bench writes
#                it: the session's tokens as text, then N tokens of another word; that fill is one
#                repeated word, not random tokens) and its "prompt eval time" of those N tokens (and
#                the session's last one, which it evaluates again) gives llama.cpp's prefill rate at
#                that depth. Depth 0 still uses llama-bench. Each policy
#                runs all depths in one process (each depth a fresh prompt).
#                llama-completion runs with LLAMA_ATTN_ROT_DISABLE=1: with a quantized K cache it would
#                otherwise expect the keys Hadamard-rotated (its own rotation) and refuse the session;
#                without the rotation it does slightly less work per token
#
# For every (model, depth) pair both engines run back to back as separate processes, and the engine
# that goes first alternates from one pair to the next, so slow drift of the machine (other jobs,
# thermals) lands on both. Each process fills its depth once (untimed; heterokv rewinds between
# repetitions, llama-bench refills or restores per its own rules), then times pp and tg. Both use the
# same KV cache types (-ctk/-ctv, f16 by default) and default batch sizes; llama-bench keeps its
# defaults (flash attention auto, weight repacking on) unless -ctk/-ctv are given (then -fa on). Prints a markdown table to stdout: tok/s of both engines, the ratio heterokv /
# llama.cpp (> 1 = heterokv faster), and heterokv's decode rate as a fraction of its bandwidth
# roofline (weights + KV bytes per token / measured triad bandwidth). Progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

models=()
depths=0,4096,16384,32768
n_prompt=512
n_gen=64
reps=3
threads=2
hkv=build/bin/heterokv
ref=../shared/tools/llamacpp-ref
raw=""
table_only=0
policies=()
ref_from_hkv=0
ctk=""
ctv=""
while [ $# -gt 0 ]; do
  case "$1" in
    -m) case "$2" in
          *@*) models+=("$(realpath "${2%@*}")@${2##*@}") ;;
          *) models+=("$(realpath "$2")") ;;
        esac; shift 2 ;;
    -d) depths=$2; shift 2 ;;
    -p) n_prompt=$2; shift 2 ;;
    -n) n_gen=$2; shift 2 ;;
    -r) reps=$2; shift 2 ;;
    -t) threads=$2; shift 2 ;;
    --hkv) hkv=$2; shift 2 ;;
    --ref) ref=$2; shift 2 ;;
    --raw) raw=$2; shift 2 ;;
    --table-only) table_only=1; shift ;;
    --policy) policies+=("$2"); shift 2 ;;
    --ref-from-hkv) ref_from_hkv=1; shift ;;
    -ctk|--cache-type-k) ctk=$2; shift 2 ;;
    -ctv|--cache-type-v) ctv=$2; shift 2 ;;
    -h|--help) sed -n '2,38p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare_llamacpp: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ ${#models[@]} -gt 0 ] || { echo "compare_llamacpp: give at least one -m MODEL" >&2; exit 2; }
[ "$table_only" = 1 ] && [ -z "$raw" ] && { echo "compare_llamacpp: --table-only needs --raw DIR" >&2; exit 2; }
[ "$table_only" = 1 ] || [ -x "$hkv" ] || { echo "compare_llamacpp: $hkv not found (build first)" >&2; exit 2; }
if [ -z "$raw" ]; then
  raw=$(mktemp -d); trap 'rm -rf "$raw"' EXIT
else
  mkdir -p "$raw"
fi

expand_depths() {  # "0,4k,32768" -> "0,4096,32768"
  local out=() d
  IFS=, read -r -a ds <<< "$1"
  for d in "${ds[@]}"; do
    case "$d" in *k|*K) d=$(( ${d%[kK]} * 1024 )) ;; esac
    out+=("$d")
  done
  (IFS=,; echo "${out[*]}")
}
depths=$(expand_depths "$depths")
# each model as PATH@DEPTHS (its own depths, or -d's)
for i in "${!models[@]}"; do
  case "${models[$i]}" in
    *@*) models[$i]="${models[$i]%@*}@$(expand_depths "${models[$i]##*@}")" ;;
    *) models[$i]="${models[$i]}@$depths" ;;
  esac
done

# the KV cache types for each engine (none given: each engine's defaults, f16)
hkv_kv=(); ref_kv=()
[ -n "$ctk" ] && { hkv_kv+=(--cache-type-k "$ctk"); ref_kv+=(-ctk "$ctk"); }
[ -n "$ctv" ] && { hkv_kv+=(--cache-type-v "$ctv"); ref_kv+=(-ctv "$ctv"); }
ref_fa=(); [ ${#ref_kv[@]} -gt 0 ] && ref_fa=(-fa on)
run_hkv() {  # model depth out.csv [--policy SPEC]
  "$hkv" bench -m "$1" -p "$n_prompt" -n "$n_gen" -d "$2" -r "$reps" -t "$threads" -o csv "${hkv_kv[@]}" "${@:4}" \
    2> "${3%.csv}.log" > "$3"
}
run_ref() {  # model depth out.csv
  "$ref" llama-bench -m "$1" -p "$n_prompt" -n "$n_gen" -d "$2" -r "$reps" -t "$threads" -o csv "${ref_kv[@]}" "${ref_fa[@]}" \
    2> "${3%.csv}.log" > "$3"
}

run_ref_state() {  # model depth session out.csv: llama-completion resumes the session reps times,
                   # for the tg test with -p "" and for the pp test from SESSION.pp.txt (bench wrote it)
  local log="${4%.csv}.log" i
  : > "$log"
  local ppl="${4%.csv}.pp.log" tgl="${4%.csv}.tg.log"
  : > "$ppl"; : > "$tgl"
  for i in $(seq "$reps"); do
    if [ "$n_prompt" -gt 0 ]; then
      "$ref" env LLAMA_ATTN_ROT_DISABLE=1 llama-completion -m "$1" -f "$3.pp.txt" -n 1 --temp 0 -no-cnv --ignore-eos \
        -c $(( $2 + n_prompt + 8 )) -fa on "${ref_kv[@]}" -t "$threads" --prompt-cache "$3" --prompt-cache-ro \
        > /dev/null 2>> "$ppl" || { cat "$ppl" >> "$log"; return 1; }
    fi
    if [ "$n_gen" -gt 0 ]; then
      "$ref" env LLAMA_ATTN_ROT_DISABLE=1 llama-completion -m "$1" -p "" -n "$n_gen" --temp 0 -no-cnv --ignore-eos \
        -c $(( $2 + n_gen + 8 )) -fa on "${ref_kv[@]}" -t "$threads" --prompt-cache "$3" --prompt-cache-ro \
        > /dev/null 2>> "$tgl" || { cat "$tgl" >> "$log"; return 1; }
    fi
  done
  cat "$ppl" "$tgl" >> "$log"
  # "prompt eval time = 5120.00 ms / 513 tokens" (pp: the -p new words and the session's last token,
  # which llama-completion evaluates again; any other count means the session was not reused) and
  # "eval time = 1279.89 ms / 16 runs" (tg) -> tok/s per repetition (of the tokens it evaluated), then
  # mean and sd as llama-bench prints them
  { echo "n_prompt,n_gen,avg_ts,stddev_ts"
    grep -E 'prompt eval time' "$ppl" | sed -E 's/.*= *([0-9.]+) ms \/ *([0-9]+) tokens.*/\1 \2/' |
      awk -v n="$n_prompt" '$2 != n && $2 != n + 1 { printf "compare_llamacpp: llama.cpp evaluated %d tokens, not %d: the session was not reused\n", $2, n + 1 > "/dev/stderr"; bad = 1 }
        { t[NR] = $2 * 1000.0 / $1; s += t[NR] }
        END { if (NR == 0 || bad) exit; m = s / NR; for (i = 1; i <= NR; i++) q += (t[i] - m) ^ 2
              printf "%d,0,%.6f,%.6f\n", n, m, (NR > 1 ? sqrt(q / (NR - 1)) : 0) }'
    grep -E 'eval time' "$tgl" | grep -v 'prompt eval' | sed -E 's/.*= *([0-9.]+) ms \/ *([0-9]+) runs.*/\1 \2/' |
      awk -v n_gen="$n_gen" '{ t[NR] = $2 * 1000.0 / $1; s += t[NR] }
        END { if (NR == 0) exit; m = s / NR; for (i = 1; i <= NR; i++) q += (t[i] - m) ^ 2
              printf "0,%d,%.6f,%.6f\n", n_gen, m, (NR > 1 ? sqrt(q / (NR - 1)) : 0) }'
  } > "$4"
  [ "$(wc -l < "$4")" -gt 1 ]
}
split_depths() {  # all.csv prefix suffix: one CSV per depth, prefix_d<depth><suffix>
  awk -F, -v pre="$2" -v suf="$3" 'NR == 1 { h = $0; next } { f = pre "_d" $6 suf; if (!(f in seen)) { print h > f; seen[f] = 1 } print >> f }' "$1"
}

echo "compare_llamacpp: $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD 2>/dev/null || echo ?)," \
     "threads $threads, reps $reps, KV ${ctk:-f16}/${ctv:-f16}, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
pair=0
[ "$table_only" = 1 ] && models_to_run=() || models_to_run=("${models[@]}")
step() {  # label command...: runs it with progress lines on stderr; a failure is reported and the
          # run goes on (the table marks what is missing)
  echo "compare_llamacpp: $1 (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  local t0; t0=$(date +%s)
  if "${@:2}"; then
    echo "compare_llamacpp:   done in $(( $(date +%s) - t0 )) s" >&2
  else
    echo "compare_llamacpp:   FAILED after $(( $(date +%s) - t0 )) s; its log ends:" >&2
    tail -n 3 "$raw"/*.log 2>/dev/null | grep -i 'error' | tail -n 2 >&2 || true
  fi
}
if [ "$ref_from_hkv" = 1 ]; then
for md in "${models_to_run[@]}"; do
  m=${md%@*}; IFS=, read -r -a dlist <<< "${md##*@}"
  base="$raw/$(basename "$m" .gguf)"
  all=$(IFS=,; echo "${dlist[*]}")
  step "hkv $(basename "$m") depths $all, writing llama.cpp sessions" \
    run_hkv "$m" "$all" "$base.hkv.all.csv" --llamacpp-session "${base}_d%d.session"
  [ -s "$base.hkv.all.csv" ] && split_depths "$base.hkv.all.csv" "$base" .hkv.csv
  for d in "${dlist[@]}"; do
    if [ "$d" = 0 ]; then
      step "ref $(basename "$m") depth 0 (llama-bench)" run_ref "$m" 0 "${base}_d0.ref.csv"
    else
      step "ref $(basename "$m") depth $d from heterokv's session" \
        run_ref_state "$m" "$d" "${base}_d$d.session" "${base}_d$d.ref.csv"
      rm -f "${base}_d$d.session" "${base}_d$d.session.pp.txt"
    fi
  done
  for i in "${!policies[@]}"; do
    step "heterokv --policy ${policies[$i]} $(basename "$m") depths $all" \
      run_hkv "$m" "$all" "$base.pol$i.all.csv" --policy "${policies[$i]}"
    [ -s "$base.pol$i.all.csv" ] && split_depths "$base.pol$i.all.csv" "$base" ".pol$i.csv"
  done
done
models_to_run=()  # the per-pair loop below has nothing left to do
fi
for md in "${models_to_run[@]}"; do
  m=${md%@*}; IFS=, read -r -a dlist <<< "${md##*@}"
  for d in "${dlist[@]}"; do
    tag="$(basename "$m" .gguf)_d$d"
    if [ $((pair % 2)) -eq 0 ]; then order="hkv ref"; else order="ref hkv"; fi
    for e in $order; do
      step "$e $(basename "$m") depth $d" "run_$e" "$m" "$d" "$raw/$tag.$e.csv"
      if [ "$e" = hkv ]; then  # the policies right after heterokv full
        for i in "${!policies[@]}"; do
          step "heterokv --policy ${policies[$i]} $(basename "$m") depth $d" \
            run_hkv "$m" "$d" "$raw/$tag.pol$i.csv" --policy "${policies[$i]}"
        done
      fi
    done
    pair=$((pair + 1))
  done
done

REF_FROM_HKV=$ref_from_hkv python3 - "$raw" "$n_prompt" "$n_gen" "$threads" "$reps" "${models[@]}" -- -- "${policies[@]}" <<'EOF'
import csv, os, sys
raw, n_prompt, n_gen, threads, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
rest = sys.argv[6:]
sep = rest.index("--")
sep2 = rest.index("--", sep + 1)
# each model as PATH@D1,D2,...
models = [(m.rsplit("@", 1)[0], [int(d) for d in m.rsplit("@", 1)[1].split(",")]) for m in rest[:sep]]
policies = rest[sep2 + 1:]

def hkv_rows(path):  # test -> (mean, sd, roofline, kv_bytes)
    out = {}
    with open(path) as f:
        for r in csv.DictReader(f):
            out[r["test"]] = (float(r["tps_mean"]), float(r["tps_sd"]), float(r["roofline_tps"]), int(r["kv_bytes"]))
    return out

def ref_rows(path):
    out = {}
    with open(path) as f:
        for r in csv.DictReader(f):
            test = "pp%s" % r["n_prompt"] if int(r["n_prompt"]) > 0 else "tg%s" % r["n_gen"]
            out[test] = (float(r["avg_ts"]), float(r["stddev_ts"]))
    return out

def rows_or_empty(fn, path):  # a missing or unreadable CSV reads as no rows
    try:
        return fn(path)
    except (OSError, KeyError, ValueError):
        return {}

def model_base(m):
    return os.path.basename(m)[:-len(".gguf")] if m.endswith(".gguf") else os.path.basename(m)

def cell(v):
    return "%.2f ± %.2f" % (v[0], v[1]) if v else "n/a"

pp, tg = "pp%d" % n_prompt, "tg%d" % n_gen
print("| model | depth | test | heterokv t/s | llama.cpp t/s | ratio | of roofline |")
print("|---|---:|---|---:|---:|---:|---:|")
for m, depths in models:
    base = model_base(m)
    for d in depths:
        tag = "%s_d%d" % (base, d)
        try:
            h = hkv_rows(os.path.join(raw, tag + ".hkv.csv"))
            r = ref_rows(os.path.join(raw, tag + ".ref.csv"))
        except (OSError, KeyError, ValueError) as e:
            print("| %s | %d | - | missing (%s) | | | |" % (base, d, e))
            continue
        for test in (pp, tg):
            if test in ("pp0", "tg0"):
                continue
            hv, rv = h.get(test), r.get(test)
            ratio = "%.2fx" % (hv[0] / rv[0]) if hv and rv and rv[0] > 0 else "n/a"
            roof = ""
            if test == tg and hv and hv[2] > 0:
                roof = "%.0f%%" % (100.0 * hv[0] / hv[2])
            print("| %s | %d | %s | %s | %s | %s | %s |" % (base, d, test, cell(hv), cell(rv), ratio, roof))
print()
print("threads %s, repetitions %s; ratio = heterokv / llama.cpp; of roofline = heterokv decode / "
      "(measured bandwidth / bytes read per token)" % (threads, reps))
if os.environ.get("REF_FROM_HKV") == "1":
    print("llama.cpp at depth > 0: llama-completion resuming heterokv full's cache of that depth, written as a "
          "llama.cpp session (--ref-from-hkv); t/s from its eval time (tg) and its prompt eval time (pp: the -p "
          "words after the session's tokens)")
if policies:
    print()
    print("| model | depth | test | policy | t/s | KV MiB (full) | vs heterokv full | vs llama.cpp |")
    print("|---|---:|---|---|---:|---:|---:|---:|")
    for m, depths in models:
        base = model_base(m)
        for d in depths:
            tag = "%s_d%d" % (base, d)
            h = rows_or_empty(hkv_rows, os.path.join(raw, tag + ".hkv.csv"))
            r = rows_or_empty(ref_rows, os.path.join(raw, tag + ".ref.csv"))
            for i, spec in enumerate(policies):
                try:
                    pv = hkv_rows(os.path.join(raw, "%s.pol%d.csv" % (tag, i)))
                except (OSError, KeyError, ValueError) as e:
                    print("| %s | %d | - | %s | missing (%s) | | | |" % (base, d, spec, e))
                    continue
                for test in (pp, tg):
                    if test in ("pp0", "tg0") or test not in pv:
                        continue
                    v, hv, rv = pv[test], h.get(test), r.get(test)
                    kv = "%.1f (%s)" % (v[3] / 1048576.0, "%.1f" % (hv[3] / 1048576.0) if hv else "n/a")
                    vs_h = "%.2fx" % (v[0] / hv[0]) if hv and hv[0] > 0 else "n/a"
                    vs_r = "%.2fx" % (v[0] / rv[0]) if rv and rv[0] > 0 else "n/a"
                    print("| %s | %d | %s | %s | %s | %s | %s | %s |" % (base, d, test, spec, cell(v), kv, vs_h, vs_r))
EOF
