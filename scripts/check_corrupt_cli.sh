#!/usr/bin/env bash
# Feeds `heterokv run` corrupt model files, then every command hostile paths and out-of-range
# options (FIFOs, devices, negative temperatures, seeds past 2^64-1, server options that no request
# could use): each must end with a one-line error and a non-zero exit within 20 s, never a crash
# (exit code >= 128 means a signal), never a hang, and nothing on stdout.
#   scripts/check_corrupt_cli.sh path/to/heterokv
set -uo pipefail
BIN=${1:?usage: check_corrupt_cli.sh HETEROKV_BINARY}
HERE=$(cd "$(dirname "$0")" && pwd)
MODEL="$HERE/../../shared/models/stories260K.gguf"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0; n=0
check() {  # name file
  check_cmd "$1" run -m "$2" -p "hi" -n 4 --temp 0
}
check_cmd() {  # name heterokv-arguments...
  local name=$1
  shift
  n=$((n + 1))
  timeout 20 "$BIN" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
  rc=$?
  lines=$(grep -c 'error' "$TMP/err")
  if [ $rc -eq 0 ] || [ $rc -ge 128 ] || [ "$lines" -ne 1 ] || [ -s "$TMP/out" ]; then
    echo "FAIL $name: rc=$rc, error lines=$lines"; sed 's/^/    /' "$TMP/err" | head -5; fails=$((fails + 1))
  else
    echo "ok   $name: $(grep error "$TMP/err")"
  fi
}
printf 'GGUF' > "$TMP/magic_only.gguf"; check "magic only" "$TMP/magic_only.gguf"
: > "$TMP/empty.gguf"; check "empty file" "$TMP/empty.gguf"
head -c 4096 /dev/urandom > "$TMP/random.gguf"; check "random bytes" "$TMP/random.gguf"
python3 - "$TMP" <<'PY'
import struct, sys
d = sys.argv[1]
def s(x): b = x.encode(); return struct.pack('<Q', len(b)) + b
hdr = lambda ver, nt, nkv: b'GGUF' + struct.pack('<IQQ', ver, nt, nkv)
open(f'{d}/version1.gguf', 'wb').write(hdr(1, 0, 0))
open(f'{d}/huge_kv_count.gguf', 'wb').write(hdr(3, 0, 1 << 60))
open(f'{d}/huge_string.gguf', 'wb').write(hdr(3, 0, 1) + struct.pack('<Q', 1 << 62) + b'abc')
open(f'{d}/huge_array.gguf', 'wb').write(hdr(3, 0, 1) + s('a') + struct.pack('<IIQ', 9, 4, 1 << 58))
arch = s('general.architecture') + struct.pack('<I', 8) + s('gpt-j')
open(f'{d}/unknown_arch.gguf', 'wb').write(hdr(3, 0, 1) + arch)
ti = s('t') + struct.pack('<I', 2) + struct.pack('<qq', 32, 1) + struct.pack('<I', 9999) + struct.pack('<Q', 0)
open(f'{d}/unknown_type.gguf', 'wb').write(hdr(3, 1, 0) + ti + b'\0' * 64)
ti = s('t') + struct.pack('<I', 1) + struct.pack('<q', 8) + struct.pack('<I', 0) + struct.pack('<Q', 1 << 40)
open(f'{d}/bad_offset.gguf', 'wb').write(hdr(3, 1, 0) + ti + b'\0' * 64)
PY
for f in version1 huge_kv_count huge_string huge_array unknown_arch unknown_type bad_offset; do
  check "$f" "$TMP/$f.gguf"
done
if [ -f "$MODEL" ]; then
  size=$(stat -c %s "$MODEL")
  for len in 100 2000 $((size / 2)) $((size - 1)); do
    head -c "$len" "$MODEL" > "$TMP/trunc.gguf"; check "stories260K truncated to $len bytes" "$TMP/trunc.gguf"
  done
fi
# Hostile paths: a FIFO or device is refused without being opened (an open of a FIFO blocks), and
# an output never replaces a device or a FIFO with a regular file.
mkfifo "$TMP/fifo"
check "model is a FIFO" "$TMP/fifo"
check "model is a directory" "$TMP"
if [ -f "$MODEL" ]; then
  check_cmd "run -f FIFO" run -m "$MODEL" -f "$TMP/fifo" -n 1
  check_cmd "run -f /dev/zero" run -m "$MODEL" -f /dev/zero -n 1
  check_cmd "calibrate -f FIFO" calibrate -m "$MODEL" -f "$TMP/fifo"
  printf 'Once upon a time there was a little girl. ' > "$TMP/text.txt"
  check_cmd "calibrate -o FIFO" calibrate -m "$MODEL" -f "$TMP/text.txt" -o "$TMP/fifo"
  check_cmd "calibrate --show FIFO" calibrate --show "$TMP/fifo"
  check_cmd "heterocache taxonomy=FIFO" run -m "$MODEL" -p hi -n 1 --policy "heterocache:taxonomy=$TMP/fifo"
  check_cmd "--temp -1" run -m "$MODEL" -p hi -n 1 --temp -1
  check_cmd "--top-k -5" run -m "$MODEL" -p hi -n 1 --top-k -5
  check_cmd "--seed -2" run -m "$MODEL" -p hi -n 1 --seed -2
  check_cmd "--seed 2^64" run -m "$MODEL" -p hi -n 1 --seed 18446744073709551616
  check_cmd "--kv-cold-dir under full" run -m "$MODEL" -p hi -n 1 --kv-cold-dir "$TMP"
  check_cmd "--kv-cold-dir missing" run -m "$MODEL" -p hi -n 1 --kv-cold-dir "$TMP/nope" \
    --policy "heterocache:taxonomy=$TMP/none.json"
  check_cmd "eval niah --seed -2" eval niah -m "$MODEL" --haystack "$TMP/text.txt" --seed -2
  EQ=(eval equal -m "$MODEL" -c 512 --window 128 --context 64 -f "$TMP/text.txt" --method ems:budget=48)
  check_cmd "eval equal -f FIFO" eval equal -m "$MODEL" -f "$TMP/fifo" --method ems:budget=48
  check_cmd "eval equal --tolerance 2" "${EQ[@]}" --tolerance 2
  check_cmd "eval equal baseline with budget" "${EQ[@]}" --baselines snapkv:budget=4
  check_cmd "eval equal --method nosuch" eval equal -m "$MODEL" -f "$TMP/text.txt" --method nosuch:budget=8
  check_cmd "eval equal text shorter than a window" "${EQ[@]}"
  for opt in "-c -1" "--kv-page-size 0" "-b 0" "-t 1025" "--slot-save-path $TMP/fifo" \
             "--slot-save-path $TMP/absent"; do
    # shellcheck disable=SC2086
    check_cmd "serve $opt" serve -m "$MODEL" --port 0 $opt
  done
fi
TOK="$HERE/../../shared/models/smollm2-135m-tokenizer/tokenizer.json"
check_cmd "make-model --seed -2" make-model --preset tiny-llama3 --tokenizer "$TOK" --seed -2 -o "$TMP/m.gguf"
# A device as the output: a private copy of /dev/full (needs root; a binary with the bug replaces
# this node, not the system's).
if mknod "$TMP/full" c 1 7 2>/dev/null && [ -f "$TOK" ]; then
  check_cmd "make-model -o DEVICE" make-model --preset tiny-llama3 --tokenizer "$TOK" -o "$TMP/full"
  [ -c "$TMP/full" ] || { echo "FAIL the device was replaced by a regular file"; fails=$((fails + 1)); }
fi
[ -p "$TMP/fifo" ] || { echo "FAIL the FIFO was replaced"; fails=$((fails + 1)); }
# Command lines that do not parse: one line, exit code 2 (never CLI11's 104-109), nothing on stdout.
check_usage() {  # name heterokv-arguments...
  check_cmd "$@"
  [ "$rc" -eq 2 ] || { echo "FAIL $1: exit code $rc, want 2"; fails=$((fails + 1)); }
}
check_usage "unknown option" policies --bogus
check_usage "missing value" run -m
check_usage "not a number" bench -m "$TMP/text.txt" -r many
check_usage "unknown command" frobnicate
check_usage "eval without a kind" eval
check_usage "--version with a command" --version run
# What must succeed: usage without a command, --version, the policy list, llama.cpp's GPU options.
check_ok() {  # name pattern-on-stdout heterokv-arguments...
  local name=$1 pattern=$2
  shift 2
  n=$((n + 1))
  timeout 20 "$BIN" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
  rc=$?
  if [ $rc -ne 0 ] || ! grep -q -- "$pattern" "$TMP/out" || grep -q error "$TMP/err"; then
    echo "FAIL $name: rc=$rc"; sed 's/^/    /' "$TMP/err" | head -5; fails=$((fails + 1))
  else
    echo "ok   $name"
  fi
}
check_ok "no command: usage" "usage: heterokv COMMAND"
check_ok "--version" "commit"
check_ok "policies" "compression_ratio" policies
check_ok "policies snapkv --format md" "| \`snapkv\`" policies snapkv --format md
if [ -f "$MODEL" ]; then
  check_ok "-ngl 99 ignored" "Once" run -m "$MODEL" -p "Once" -n 2 --temp 0 -ngl 99 -fa --no-mmap
  grep -q "note: '-ngl 99' ignored" "$TMP/err" || { echo "FAIL -ngl: no note"; fails=$((fails + 1)); }
  check_ok "ratio= in run" "Once" run -m "$MODEL" -p "Once upon a time" -n 2 --temp 0 --policy snapkv:ratio=0.5
  # say what happens: the context end, a context beyond training, the full cache's size, and
  # progress without carriage returns when stderr is not a terminal
  check_stderr() {  # name pattern-on-stderr heterokv-arguments...
    local name=$1 pattern=$2
    shift 2
    check_ok "$name" "" "$@"
    grep -q -- "$pattern" "$TMP/err" || { echo "FAIL $name: no '$pattern' on stderr"; fails=$((fails + 1)); }
  }
  check_stderr "run -n 500 -c 128 warns" "generation stops there" run -m "$MODEL" -p hi -n 500 -c 128 --temp 0
  check_stderr "run -c 512 beyond training warns" "longer than the model's training context" \
    run -m "$MODEL" -p hi -n 1 -c 512 --temp 0
  check_stderr "run: KV against the full cache" "the full cache: .* MiB (" \
    run -m "$MODEL" -p "Once upon a time" -n 8 --temp 0 --policy streaming:budget=6
  for i in $(seq 25); do printf 'Once upon a time there was a little girl. ' ; done > "$TMP/long.txt"
  check_stderr "prefill progress as lines" "prefill .*(100%)" run -m "$MODEL" -f "$TMP/long.txt" -c 512 -b 16 -n 1
  if grep -q $'\r' "$TMP/err"; then echo "FAIL progress: carriage returns in a non-terminal log"; fails=$((fails + 1)); fi
fi
echo "corrupt-model and hostile-input CLI checks: $((n - fails)) passed, $fails failed"
[ $fails -eq 0 ]
