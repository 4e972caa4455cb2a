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
# Debug (-O0; the kernels and the ops tests at -O1) with line tables only; the target hkv_sanitizer_suite
# builds only what is run below (tests/CMakeLists.txt).
TARGETS=hkv_sanitizer_suite scripts/setup.sh build-asan -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-g1" \
  -DHKV_SANITIZE_ADDRESS=ON -DHKV_SANITIZE_UNDEFINED=ON -DHKV_BUILD_BENCH=OFF
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp"  # fontconfig's caches, kept until exit by design
# Every test of the programs that target built (the list is HKV_SANITIZER_MODEL_TESTS in
# tests/CMakeLists.txt); the other programs' tests are placeholders named *_NOT_BUILT.
ctest --test-dir build-asan --output-on-failure -j"$(nproc)" --timeout 900 -E '_NOT_BUILT$'
scripts/check_corrupt_cli.sh build-asan/bin/heterokv
# libFuzzer targets on their committed corpora for a bounded time each (FUZZ_SECONDS, default 30:
# three targets in 90 s, to keep the whole run near 20 minutes)
if command -v clang++-14 >/dev/null || command -v clang++ >/dev/null; then
  scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
fi
