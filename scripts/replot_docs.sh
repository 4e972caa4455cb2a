#!/usr/bin/env bash
# Re-draws every figure under docs/ from the JSON committed beside it (eval niah|ruler|sweep|equal
# --replot: nothing is evaluated, seconds of CPU). Needs a build with cairo for the PNGs.
#   scripts/replot_docs.sh [HETEROKV_BINARY]      (default: build/bin/heterokv)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/bin/heterokv}
[ -x "$BIN" ] || { echo "replot_docs: $BIN is not an executable (build first)" >&2; exit 2; }
q() { "$BIN" "$@" >/dev/null; }
# needle in a haystack: one heatmap per policy
for p in agnostic aware; do q eval niah --replot docs/niah/$p.json -o docs/niah/$p; done
# RULER: one task x policy heatmap per length (verbatim_retrieval.json and longbench_multi_news.json
# have tables only)
for r in policies_1024 policies_2048 phrased_full verbatim_retrieval_cwe verbatim_stories; do
  q eval ruler --replot docs/ruler/$r.json -o docs/ruler/$r
done
# budget sweeps: these JSON files predate the recorded n; docs/ruler.md gives 5 samples (RULER, one
# task) and 10 needles (NIAH, 2 lengths x 5 depths x 1 trial) per point. The tables stay in docs/ruler.md.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for s in ruler_niah_single_2_1024:5 ruler_niah_single_2_2048:5 niah_1024_2048:10; do
  name=${s%%:*}
  q eval sweep --replot docs/sweep/$name.json --n "${s##*:}" -o "$tmp/$name"
  mv "$tmp/$name.svg" "$tmp/$name.png" docs/sweep/
done
# equal-memory comparisons: per seed policy the KLD chart and the NIAH charts (and PREFIX.md)
for e in stories stories_dynsplit_ablation retrieval_tune_dynsplit_variants retrieval_tune_hc retrieval_tune_ems \
         retrieval_tune_dynsplit; do
  q eval equal --replot docs/equal/$e.json -o docs/equal/$e
done
echo "replot_docs: figures re-drawn under docs/ (git status shows what changed)"
