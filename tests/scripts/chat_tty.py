#!/usr/bin/env python3
"""`heterokv chat` on a terminal (a pseudo-terminal): line editing and history through libedit.
Typing "/rest", Left, "e", Enter must give the command /reset (a plain line reader would see
"/rest\\x1b[De", an unknown command); Up, Enter must recall it; Ctrl-A then typing inserts at the
start of the line. Exit 77 (skipped) when ../shared's tokenizer is absent or the binary was built
without a line editor (heterokv --version says which).
  tests/scripts/chat_tty.py BIN SHARED_DIR TEST_DATA_DIR"""
import os
import pty
import select
import subprocess
import sys
import tempfile
import time

BIN, SHARED, DATA = sys.argv[1:4]
TOK = os.path.join(SHARED, "models/smollm2-135m-tokenizer/tokenizer.json")
if not os.path.exists(TOK):
    print("skipped: %s is absent" % TOK)
    sys.exit(77)
version = subprocess.run([BIN, "--version"], capture_output=True, text=True).stdout
if "line editing: libedit" not in version:
    print("skipped: this heterokv has no line editor (libedit-dev was absent at build time)")
    sys.exit(77)


def fail(msg, out=b"", err=""):
    print("FAIL: " + msg)
    print("--- terminal\n" + out.decode(errors="replace"))
    print("--- stderr\n" + err)
    sys.exit(1)


with tempfile.TemporaryDirectory() as t:
    model = os.path.join(t, "m.gguf")
    subprocess.run([BIN, "make-model", "--preset", "tiny-qwen3", "--type", "f16", "--tokenizer", TOK,
                    "--chat-template", os.path.join(DATA, "chat_templates/chatml.jinja"), "-o", model],
                   check=True, capture_output=True)
    master, slave = pty.openpty()
    err_path = os.path.join(t, "err")
    with open(err_path, "w") as err:
        proc = subprocess.Popen([BIN, "chat", "-m", model, "--temp", "0", "-t", "1", "-c", "256", "-n", "4"],
                                stdin=slave, stdout=slave, stderr=err, close_fds=True,
                                env=dict(os.environ, TERM="xterm"))
    os.close(slave)
    out = b""

    def pump(seconds):
        global out
        end = time.time() + seconds
        while time.time() < end:
            r, _, _ = select.select([master], [], [], 0.05)
            if r:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    return
                if not data:
                    return
                out += data

    def wait_for(pred, what, seconds=60):
        end = time.time() + seconds
        while time.time() < end:
            pump(0.1)
            if pred():
                return
            if proc.poll() is not None:
                pump(0.2)
                if pred():
                    return
                break
        fail("timed out waiting for " + what, out, open(err_path).read())

    def stderr_count(s):
        return open(err_path).read().count(s)

    wait_for(lambda: b"> " in out, "the first prompt")
    os.write(master, b"/rest\x1b[De\r")  # Left arrow, then 'e' inserted before the 't'
    wait_for(lambda: stderr_count("conversation reset") == 1, "/reset from an edited line")
    os.write(master, b"\x1b[A\r")  # Up: the previous line again
    wait_for(lambda: stderr_count("conversation reset") == 2, "/reset recalled from the history")
    os.write(master, b"tats\x01/s\r")  # Ctrl-A: to the start of the line, then "/s": "/stats"
    wait_for(lambda: stderr_count("KV cache") >= 1, "/stats typed with Ctrl-A")
    if stderr_count("unknown command"):
        fail("an edited line reached the chat unedited", out, open(err_path).read())
    os.write(master, b"/exit\r")
    try:
        rc = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        fail("/exit did not end the chat", out, open(err_path).read())
    pump(0.2)
    os.close(master)
    if rc != 0:
        fail("exit status %d" % rc, out, open(err_path).read())
print("chat on a terminal: line editing and history ok")
