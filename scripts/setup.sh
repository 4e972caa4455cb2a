#!/usr/bin/env bash
# Installs the Debian packages heterokv builds with (only those missing), then configures and builds.
#   scripts/setup.sh [BUILD_DIR] [extra cmake args...]      (default BUILD_DIR: build)
#   TARGETS="heterokv" scripts/setup.sh ...                  builds only these targets (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS="build-essential cmake libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev libcli11-dev libcpp-httplib-dev zlib1g-dev pkg-config"
# line editing in heterokv chat
PKGS="$PKGS libedit-dev"
# the Python module (python/): pybind11 and the Python headers; pytest for its tests
PKGS="$PKGS python3-dev pybind11-dev python3-pybind11 python3-pytest"
# figures: cairo draws the PNGs (without it they are SVG only) with the DejaVu fonts
PKGS="$PKGS libcairo2-dev fonts-dejavu-core"
# clang and its runtime (libFuzzer, sanitizers) for scripts/fuzz.sh
PKGS="$PKGS clang-14 libclang-rt-14-dev"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "setup: installing$missing" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing >/dev/null
fi
BUILD=${1:-build}
shift || true
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$BUILD" -j"$(nproc)" ${TARGETS:+--target $TARGETS}
