#!/usr/bin/env bash
# bench/ab_bench.sh — two heterokv binaries, alternated, on one model: a before/after ratio that
# survives a loaded machine better than two separate runs.
#
#   bench/ab_bench.sh A_BINARY B_BINARY MODEL.gguf [ROUNDS=4] [heterokv bench options...]
#
# Runs `A bench`, `B bench`, `B bench`, `A bench`, ... (ABBA order, ROUNDS pairs) with the given
# options (default: -p 64 -n 32 -d 0 -r 1 -t 2), one process each, and prints each run's pp and tg
# tok/s, the load average before it, and at the end the median of each and the ratios B / A.
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,9p' "$0" >&2; exit 2; }
a=$1 b=$2 model=$3
rounds=${4:-4}
shift 3; [ $# -gt 0 ] && shift
opts=("$@")
[ ${#opts[@]} -gt 0 ] || opts=(-p 64 -n 32 -d 0 -r 1 -t 2)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

run() {  # run LABEL BINARY: appends "pp tg" to $tmp/LABEL
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  local csv; csv=$("$2" bench -m "$model" "${opts[@]}" --no-bandwidth -o csv 2>/dev/null)
  local pp tg
  pp=$(awk -F, 'NR==1{for(i=1;i<=NF;i++)h[$i]=i} NR>1 && $h["test"]~/^pp/ {print $h["tps_mean"]}' <<<"$csv" | head -1)
  tg=$(awk -F, 'NR==1{for(i=1;i<=NF;i++)h[$i]=i} NR>1 && $h["test"]~/^tg/ {print $h["tps_mean"]}' <<<"$csv" | head -1)
  echo "$1 load=$load pp=${pp:-?} tg=${tg:-?}"
  echo "${pp:-nan} ${tg:-nan}" >> "$tmp/$1"
}
for ((i = 0; i < rounds; ++i)); do
  if ((i % 2 == 0)); then run A "$a"; run B "$b"; else run B "$b"; run A "$a"; fi
done
median() { sort -g | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
for col in 1 2; do
  name=$([ $col = 1 ] && echo pp || echo tg)
  ma=$(cut -d' ' -f$col "$tmp/A" | median); mb=$(cut -d' ' -f$col "$tmp/B" | median)
  awk -v n=$name -v a="$ma" -v b="$mb" 'BEGIN{printf "%s median: A %.2f  B %.2f  B/A %.3f\n", n, a, b, (a > 0 ? b / a : 0)}'
done
