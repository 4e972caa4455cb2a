#!/usr/bin/env bash
# Feeds `heterokv run` corrupt model files: each must end with a one-line error and a non-zero exit,
# never a crash (exit code >= 128 means a signal) and nothing on stdout.
#   scripts/check_corrupt_cli.sh path/to/heterokv
set -uo pipefail
BIN=${1:?usage: check_corrupt_cli.sh HETEROKV_BINARY}
HERE=$(cd "$(dirname "$0")" && pwd)
MODEL="$HERE/../../shared/models/stories260K.gguf"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0; n=0
check() {  # name file
  n=$((n + 1))
  "$BIN" run -m "$2" -p "hi" -n 4 --temp 0 >"$TMP/out" 2>"$TMP/err"
  rc=$?
  lines=$(grep -c 'error' "$TMP/err")
  if [ $rc -eq 0 ] || [ $rc -ge 128 ] || [ "$lines" -ne 1 ] || [ -s "$TMP/out" ]; then
    echo "FAIL $1: rc=$rc, error lines=$lines"; sed 's/^/    /' "$TMP/err" | head -5; fails=$((fails + 1))
  else
    echo "ok   $1: $(cat "$TMP/err")"
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
echo "corrupt-model CLI checks: $((n - fails)) passed, $fails failed"
[ $fails -eq 0 ]
