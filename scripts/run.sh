#!/usr/bin/env bash
# The main job: installs dependencies, builds, and generates 200 tokens greedily with stories260K.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
MODEL=../shared/models/stories260K.gguf
[ -f "$MODEL" ] || { echo "run: $MODEL not found (../shared must sit beside the repository)" >&2; exit 1; }
exec build/bin/heterokv run -m "$MODEL" -p "" -n 200 --temp 0 -c 512
