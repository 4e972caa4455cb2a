#!/usr/bin/env bash
# `heterokv chat` through a pipe, as scripts drive it: three turns with /stats, /reset and /exit on a
# synthetic ChatML model (tiny-qwen3 shape, SmolLM2 tokenizer), `run -cnv` as the same command,
# /save and /load across processes (and their errors), and the context-full message. Exit 77
# (skipped) when ../shared's tokenizer is absent.
#   tests/scripts/chat_pipe.sh BIN SHARED_DIR TEST_DATA_DIR
set -euo pipefail
BIN=$1 SHARED=$2 DATA=$3
TOK=$SHARED/models/smollm2-135m-tokenizer/tokenizer.json
[ -f "$TOK" ] || { echo "skipped: $TOK is absent"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$BIN" make-model --preset tiny-qwen3 --type f16 --tokenizer "$TOK" \
  --chat-template "$DATA/chat_templates/chatml.jinja" -o "$T/m.gguf" 2>/dev/null
chat() { "$BIN" chat -m "$T/m.gguf" --temp 0 -t 2 -sys "Be brief." "$@"; }
fail() { echo "FAIL: $*"; echo "--- stdout"; cat "$T/out"; echo "--- stderr"; cat "$T/err"; exit 1; }

# One turn alone: the reference for the first and the third turn (after /reset).
printf 'Hello\n' | chat -c 256 -n 6 >"$T/one" 2>/dev/null
[ -s "$T/one" ] || fail "no reply to a single turn"
printf 'Hello\n/stats\nHow are you?\n/bogus\n/reset\nHello\n/exit\nnot read\n' | chat -c 256 -n 6 >"$T/out" 2>"$T/err" \
  || fail "chat exited with $?"
n=$(wc -c <"$T/one")
cmp -s <(head -c "$n" "$T/out") "$T/one" || fail "the first reply differs from a single turn's"
cmp -s <(tail -c "$n" "$T/out") "$T/one" || fail "after /reset, the same turn gives another reply"
[ "$(wc -c <"$T/out")" -gt $((2 * n)) ] || fail "no second reply"
grep -q "KV cache: .* slots" "$T/err" || fail "/stats printed nothing"
grep -q "unknown command '/bogus'" "$T/err" || fail "an unknown command was not reported"
grep -q "conversation reset" "$T/err" || fail "/reset was not acknowledged"
grep -q "prefill" "$T/err" || fail "no timings at the end"

# run -cnv is the same conversation.
printf 'Hello\n/stats\nHow are you?\n/bogus\n/reset\nHello\n/exit\n' \
  | "$BIN" run -cnv -m "$T/m.gguf" -n 6 --temp 0 -t 2 -sys "Be brief." -c 256 2>/dev/null | cmp -s - "$T/out" \
  || fail "run -cnv differs from chat"

# /save and /load: a conversation saved after its first turn and loaded by another process answers
# its second turn as the unbroken conversation does.
printf 'Hello\n/save %s\nHow are you?\n' "$T/c.state" | chat -c 256 -n 6 >"$T/whole" 2>"$T/err" || fail "/save: exit $?"
grep -q "saved .* tokens" "$T/err" || fail "/save was not acknowledged"
printf '/load %s\nHow are you?\n' "$T/c.state" | chat -c 256 -n 6 >"$T/second" 2>"$T/err" || fail "/load: exit $?"
grep -q "loaded 3 messages" "$T/err" || fail "/load was not acknowledged"
[ -s "$T/second" ] || fail "no reply after /load"
cmp -s <(tail -c +$((n + 1)) "$T/whole") "$T/second" || fail "the loaded conversation answers differently"
# /load errors say why, and the conversation starts over: an absent file, another policy, not a state
printf '/load %s\nHello\n' "$T/absent" | chat -c 256 -n 6 >"$T/out" 2>"$T/err" || fail "/load absent: exit $?"
grep -q "absent.*starts over" "$T/err" || fail "no message for an absent file"
cmp -s "$T/out" "$T/one" || fail "after a failed /load, the first turn differs"
printf '/load %s\nHello\n' "$T/c.state" | chat -c 256 -n 6 --policy snapkv:budget=16 >"$T/out" 2>"$T/err" \
  || fail "/load other policy: exit $?"
grep -q "made with policy 'full'; this context runs 'snapkv:budget=16'" "$T/err" || fail "no message for another policy"
printf '/load %s\n/save\n/exit\n' "$T/m.gguf" | chat -c 256 -n 6 >"$T/out" 2>"$T/err" || fail "/load gguf: exit $?"
grep -q "not a heterokv saved context" "$T/err" || fail "no message for a file that is not a state"
grep -q "/save needs a file name" "$T/err" || fail "no message for /save without a file"

# A context that fills up: a clear message, exit status 0, the rest of the input unread.
for _ in $(seq 50); do echo "Tell me one more thing about it."; done >"$T/in"
chat -c 64 -n 16 <"$T/in" >"$T/out" 2>"$T/err" || fail "context full: exit $?"
grep -q "the context is full" "$T/err" || fail "no context-full message"
echo "chat through a pipe: ok"
