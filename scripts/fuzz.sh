#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (build-fuzz or FUZZ_BUILD, -DHKV_FUZZ=ON: ASan + UBSan + coverage) and
# runs each for SECONDS (or RUNS executions) starting from its committed corpus
# (tests/fuzz/corpus/<target>/). New corpus entries go to <tree>/corpus/<target>/, never into
# the repository; a crash writes <tree>/artifacts/<target>/crash-* and fails the script (commit
# the input under tests/fuzz/corpus/<target>/ once the bug is fixed: test_fuzz_corpus replays it).
#   scripts/fuzz.sh [SECONDS=60] [TARGETS="fuzz_gguf fuzz_request fuzz_state"]
# (CI, scripts/test.sh: 20 s each, in its sanitizer tree, to keep the whole CI run under 20 minutes.)
#   RUNS=1000000 scripts/fuzz.sh      # a fixed number of executions instead of a time limit
#   FUZZ_BUILD=DIR scripts/fuzz.sh    # use the clang tree DIR configured with -DHKV_FUZZ=ON (scripts/test.sh
#                                     # passes its sanitizer tree) instead of configuring build-fuzz
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
TARGETS=${2:-"fuzz_gguf fuzz_request fuzz_state"}
CXX_BIN=$(command -v clang++-14 || command -v clang++ || true)
if [ -z "$CXX_BIN" ]; then echo "fuzz: clang++ not found (scripts/setup.sh installs clang-14)" >&2; exit 1; fi
CC_BIN=${CXX_BIN/clang++/clang}
B=${FUZZ_BUILD:-build-fuzz}
if [ ! -f "$B/CMakeCache.txt" ]; then
  # -O1 with line tables, as libFuzzer suggests (RelWithDebInfo here means -O3: a slower compile)
  CXX="$CXX_BIN" CC="$CC_BIN" cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g1" -DHKV_FUZZ=ON \
    -DHKV_BUILD_TESTS=OFF -DHKV_BUILD_TOOLS=OFF -DHKV_BUILD_BENCH=OFF >/dev/null
fi
cmake --build "$B" -j"$(nproc)" --target $TARGETS
for t in $TARGETS; do
  mkdir -p "$B/corpus/$t" "$B/artifacts/$t"
  limit="-max_total_time=$SECS"
  [ -n "${RUNS:-}" ] && limit="-runs=$RUNS"
  echo "fuzz: $t ($limit)" >&2
  "$B/bin/$t" "$limit" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$B/artifacts/$t/" "$B/corpus/$t" "tests/fuzz/corpus/$t" 2>&1 \
    | grep -E "^(#[0-9]+ *DONE|Done|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY|artifact_prefix)" || true
  if ls "$B/artifacts/$t"/crash-* "$B/artifacts/$t"/leak-* "$B/artifacts/$t"/timeout-* \
       >/dev/null 2>&1; then
    echo "fuzz: $t found a failing input in $B/artifacts/$t/" >&2
    exit 1
  fi
done
echo "fuzz: no crash" >&2
