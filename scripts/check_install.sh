#!/usr/bin/env bash
# Installs a configured build into a temporary prefix, then builds tests/consumer against the
# installed tree twice — with find_package(heterokv) and with pkg-config — and runs both on
# stories260K (when ../shared has it): their text must be `heterokv run`'s (the llama.cpp golden).
#   scripts/check_install.sh [BUILD_DIR]          (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
PREFIX=$(mktemp -d)
trap 'rm -rf "$PREFIX"' EXIT
cmake --install "$BUILD" --prefix "$PREFIX" >/dev/null
test -f "$PREFIX/lib/libheterokv.a" -a -f "$PREFIX/include/heterokv/engine.h" -a -f "$PREFIX/bin/heterokv"
if grep -rqE '#include "(core|model|kv|policy|engine|backend|tokenizer|sample)/' "$PREFIX/include"; then
  echo "check_install: an installed header includes an internal one" >&2
  exit 1
fi
cmake -S tests/consumer -B "$PREFIX/consumer" -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$PREFIX/consumer" >/dev/null
PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" c++ -std=c++20 -O1 tests/consumer/consumer.cpp -o "$PREFIX/consumer-pc" \
  $(PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" pkg-config --cflags --libs --static heterokv)
MODEL=../shared/models/stories260K.gguf
if [ -f "$MODEL" ]; then
  for exe in "$PREFIX/consumer/consumer" "$PREFIX/consumer-pc"; do
    "$exe" "$MODEL" 200 2>/dev/null | cmp - tests/data/golden/stories260K_greedy200.txt
    "$exe" "$MODEL" 300 snapkv:budget=64 >/dev/null 2>&1
  done
  echo "check_install: the installed library builds (CMake package and pkg-config) and its consumer prints llama.cpp's text"
else
  echo "check_install: the installed library builds (CMake package and pkg-config); no stories260K to run"
fi
