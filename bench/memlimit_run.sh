#!/usr/bin/env bash
# bench/memlimit_run.sh — HeteroCache prefill under a memory limit (docs/accuracy.md, "Prefill that
# spills chunk by chunk"): runs `heterokv run` on a prompt file inside a cgroup-v1 memory cgroup
# limited to LIMIT_MB (RAM + page cache; no swap here), once with --policy full and once with
# heterocache spill=chunk and the cold tier in COLD_DIR, and prints each run's exit status, peak
# RSS (/usr/bin/time -v), the KV line and HeteroCache's report.
#
# usage: bench/memlimit_run.sh MODEL.gguf TAXONOMY.json PROMPT.txt LIMIT_MB COLD_DIR [CTX] [RATIO] [POLICY...]
#   CTX (default 32768) is -c; RATIO (default 0.5) heterocache's ratio; extra POLICY specs replace
#   the default pair (full, heterocache spill=chunk). Needs root (writes /sys/fs/cgroup/memory).
#   Environment: HKV (default build/bin/heterokv), THREADS (1), BATCH (512), N_PREDICT (16).
set -euo pipefail
if [ $# -lt 5 ]; then
    sed -n '2,12p' "$0"
    exit 2
fi
model=$1 tax=$2 prompt=$3 limit_mb=$4 cold=$5
ctx=${6:-32768} ratio=${7:-0.5}
shift $(( $# < 7 ? $# : 7 ))
hkv=${HKV:-build/bin/heterokv}
cg=/sys/fs/cgroup/memory/hkv-memlimit-$$
[ -d /sys/fs/cgroup/memory ] || { echo "memlimit_run: no cgroup-v1 memory controller at /sys/fs/cgroup/memory" >&2; exit 1; }
policies=("$@")
if [ ${#policies[@]} -eq 0 ]; then
    policies=(full "heterocache:taxonomy=$tax,ratio=$ratio,spill=chunk")
fi
mkdir -p "$cold"
cleanup() { [ -d "$cg" ] && rmdir "$cg" 2>/dev/null || true; }
trap cleanup EXIT
mkdir "$cg"
echo $(( limit_mb * 1024 * 1024 )) > "$cg/memory.limit_in_bytes"
[ -f "$cg/memory.memsw.limit_in_bytes" ] && echo $(( limit_mb * 1024 * 1024 )) > "$cg/memory.memsw.limit_in_bytes" 2>/dev/null || true
echo "memlimit_run: cgroup $cg, limit $limit_mb MiB; weights $(du -m "$model" | cut -f1) MiB; prompt $(wc -c < "$prompt") bytes"
for pol in "${policies[@]}"; do
    echo "=== $pol (limit $limit_mb MiB)"
    echo 0 > "$cg/memory.max_usage_in_bytes" 2>/dev/null || true
    log=$(mktemp) out=$(mktemp)
    set +e
    ( echo $BASHPID > "$cg/cgroup.procs"
      exec /usr/bin/time -v nice "$hkv" run -m "$model" -f "$prompt" -n "${N_PREDICT:-16}" --temp 0 \
          -t "${THREADS:-1}" -b "${BATCH:-512}" -c "$ctx" --no-echo --policy "$pol" --kv-cold-dir "$cold" ) >"$out" 2>"$log"
    rc=$?
    set -e
    # progress lines end in \r: keep the last segment of each line
    sed 's/.*\r//' "$log" | grep -E "heterokv: (prefill [0-9]+ tokens in|decode|KV|heterocache|error)|rror|Command terminated|Elapsed|Maximum resident" || true
    echo "generated: $(tr -d '\n' < "$out" | tail -c 200)"
    echo "cgroup peak usage: $(( $(cat "$cg/memory.max_usage_in_bytes") / 1048576 )) MiB, OOM kills so far: $(grep -E '^oom_kill ' "$cg/memory.oom_control" | cut -d' ' -f2)"
    echo "exit status: $rc"
    rm -f "$log" "$out"
done
