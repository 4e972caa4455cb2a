#!/usr/bin/env bash
# The test command: installs dependencies, builds, and runs every test (labels unit, ops, model),
# then runs the unit and ops tests, a few model tests (stories260K, the server's, calibration, the
# chat CLI) and the corrupt-model CLI checks again under ASan + UBSan (the other model tests are
# minutes long in a sanitizer build).
#   scripts/test.sh            # everything
#   scripts/test.sh --quick    # the Release suite only
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build -DHKV_FATAL_WARNINGS=ON
ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 600
scripts/check_corrupt_cli.sh build/bin/heterokv
scripts/check_install.sh build  # cmake --install, then a consumer program built against the installed tree
MODEL=../shared/models/stories260K.gguf
if [ -f "$MODEL" ]; then  # the CLI prints exactly llama-completion's text (tests/data/golden)
  build/bin/heterokv run -m "$MODEL" -p "" -n 200 --temp 0 -c 512 2>/dev/null \
    | cmp - tests/data/golden/stories260K_greedy200.txt && echo "stories260K greedy 200 via the CLI: identical to llama.cpp"
fi
[ "${1:-}" = "--quick" ] && exit 0
echo "test: sanitizer build (ASan + UBSan)" >&2
# Built with clang (installed by setup.sh for the fuzzers): it compiles this tree about twice as fast
# as gcc does with the sanitizers on, and the same tree (-DHKV_FUZZ=ON: everything also instrumented
# for libFuzzer's coverage, without tracing comparisons: that would make the tests 3x slower) gives the
# fuzz targets, so there is no third build. Debug (-O0; the kernels
# and the ops tests at -O1) with line tables only; the target hkv_sanitizer_suite builds only what is
# run below (tests/CMakeLists.txt). Without clang: gcc, and no fuzzing.
SAN=build-san
SAN_ARGS=()
if CLANGXX=$(command -v clang++-14 || command -v clang++); then
  export CXX="$CLANGXX" CC="${CLANGXX/clang++/clang}"
  SAN_ARGS+=(-DHKV_FUZZ=ON -DHKV_FUZZ_TRACE_CMP=OFF)
fi
TARGETS=hkv_sanitizer_suite scripts/setup.sh "$SAN" -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-g1" \
  -DHKV_SANITIZE_ADDRESS=ON -DHKV_SANITIZE_UNDEFINED=ON -DHKV_BUILD_BENCH=OFF "${SAN_ARGS[@]}"
unset CXX CC
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp"  # fontconfig's caches, kept until exit by design
# Every test of the programs that target built (the list is HKV_SANITIZER_MODEL_TESTS in
# tests/CMakeLists.txt); the other programs' tests are placeholders named *_NOT_BUILT.
ctest --test-dir "$SAN" --output-on-failure -j"$(nproc)" --timeout 900 -E '_NOT_BUILT$'
scripts/check_corrupt_cli.sh "$SAN/bin/heterokv"
# libFuzzer targets (built above) on their committed corpora for a bounded time each (FUZZ_SECONDS,
# default 20: three targets in 60 s, to keep the whole run under 20 minutes)
if [ ${#SAN_ARGS[@]} -gt 0 ]; then
  FUZZ_BUILD="$SAN" scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
fi
