#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (build-fuzz, -DHKV_FUZZ=ON: ASan + UBSan + coverage) and
# runs each for SECONDS (or RUNS executions) starting from its committed corpus
# (tests/fuzz/corpus/<target>/). New corpus entries go to build-fuzz/corpus/<target>/, never into
# the repository; a crash writes build-fuzz/artifacts/<target>/crash-* and fails the script (commit
# the input under tests/fuzz/corpus/<target>/ once the bug is fixed: test_fuzz_corpus replays it).
#   scripts/fuzz.sh [SECONDS=60] [TARGETS="fuzz_gguf fuzz_request fuzz_state"]
# (CI, scripts/test.sh: 30 s each, to keep the whole CI run near 20 minutes.)
#   RUNS=1000000 scripts/fuzz.sh      # a fixed number of executions instead of a time limit
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
TARGETS=${2:-"fuzz_gguf fuzz_request fuzz_state"}
CXX_BIN=$(command -v clang++-14 || command -v clang++ || true)
if [ -z "$CXX_BIN" ]; then echo "fuzz: clang++ not found (scripts/setup.sh installs clang-14)" >&2; exit 1; fi
CC_BIN=${CXX_BIN/clang++/clang}
if [ ! -f build-fuzz/CMakeCache.txt ]; then
  # -O1 with line tables, as libFuzzer suggests (RelWithDebInfo here means -O3: a slower compile)
  CXX="$CXX_BIN" CC="$CC_BIN" cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g1" -DHKV_FUZZ=ON \
    -DHKV_BUILD_TESTS=OFF -DHKV_BUILD_TOOLS=OFF -DHKV_BUILD_BENCH=OFF >/dev/null
fi
cmake --build build-fuzz -j"$(nproc)" --target $TARGETS
for t in $TARGETS; do
  mkdir -p "build-fuzz/corpus/$t" "build-fuzz/artifacts/$t"
  limit="-max_total_time=$SECS"
  [ -n "${RUNS:-}" ] && limit="-runs=$RUNS"
  echo "fuzz: $t ($limit)" >&2
  "build-fuzz/bin/$t" "$limit" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="build-fuzz/artifacts/$t/" "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t" 2>&1 \
    | grep -E "^(#[0-9]+ *DONE|Done|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY|artifact_prefix)" || true
  if ls "build-fuzz/artifacts/$t"/crash-* "build-fuzz/artifacts/$t"/leak-* "build-fuzz/artifacts/$t"/timeout-* \
       >/dev/null 2>&1; then
    echo "fuzz: $t found a failing input in build-fuzz/artifacts/$t/" >&2
    exit 1
  fi
done
echo "fuzz: no crash" >&2
