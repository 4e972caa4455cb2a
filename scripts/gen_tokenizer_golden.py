#!/usr/bin/env python3
"""Records reference token ids for tests/unit/test_tokenizer.cpp from llama.cpp's llama-server.

Run inside the reference environment (it has llama-server and the gguf package):

    ../shared/tools/llamacpp-ref python3 scripts/gen_tokenizer_golden.py

Inputs:  tests/data/tokenizer/corpus.json (the texts), ../shared/models/stories260K.gguf,
         ../shared/models/smollm2-135m-tokenizer/{tokenizer.json,config.json}.
Outputs: tests/data/tokenizer/golden_stories260k.json, tests/data/tokenizer/golden_smollm2.json.

With --family PRESET=MODEL.gguf (repeatable) it records only tests/data/tokenizer/golden_spm_families.json:
the vocabulary heterokv make-model writes for a family preset from stories260K's SentencePiece one
(Gemma: chat tokens, no leading space; Phi-3: chat tokens, whose trailing whitespace llama.cpp strips
for models named phi-3/phi3), on the same corpus plus the chat_markup case with specials parsed:

    for p in tiny-gemma3 tiny-phi3; do build/bin/heterokv make-model --preset $p --type f16 \
        --tokenizer ../shared/models/stories260K.gguf -o /tmp/tok-$p.gguf; done
    ../shared/tools/llamacpp-ref python3 scripts/gen_tokenizer_golden.py \
        --family tiny-gemma3=/tmp/tok-tiny-gemma3.gguf --family tiny-phi3=/tmp/tok-tiny-phi3.gguf

llama-server needs a loadable model, so for SmolLM2 the script writes a tiny llama GGUF (1 layer,
n_embd 8, random weights) that carries the SmolLM2 tokenizer, once per pre-tokenizer name: the
real one ("smollm") and, to exercise the other pre-tokenizers on the same vocab, "llama-bpe",
"qwen2", "gpt-2" and "default" with extra digit tokens and merges (digit_tokens()) so that the
digit grouping of each pre-tokenizer shows in the ids. Only the tokenizer matters; the
weights are never evaluated.
The tokenizer metadata is written the way llama.cpp's convert_hf_to_gguf.py does for a byte-level
BPE model: added tokens with "special": true become CONTROL (3), other added tokens USER_DEFINED
(4); bos/eos/pad ids come from config.json (there is no tokenizer_config.json beside it).
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np
import gguf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
DATA = os.path.join(ROOT, "tests", "data", "tokenizer")
STORIES = os.path.join(SHARED, "models", "stories260K.gguf")
SMOL_DIR = os.path.join(SHARED, "models", "smollm2-135m-tokenizer")
SMOL_PRES = ["smollm", "llama-bpe", "qwen2", "gpt-2", "default"]

# (case name or "*", add_special, parse_special): which request variants to record.
VARIANTS = [("*", False, False), ("specials", False, True), ("specials", True, True),
            ("prose", True, False), ("edge_leading_space_word", True, False),
            ("chat_markup", False, True), ("chat_markup", True, True)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port, path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def with_server(model_path, fn):
    port = free_port()
    proc = subprocess.Popen(["llama-server", "-m", model_path, "--port", str(port), "-c", "128",
                             "-t", "1", "-np", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except Exception:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"llama-server exited with {proc.returncode} for {model_path}")
            time.sleep(0.2)
        return fn(port)
    finally:
        proc.terminate()
        proc.wait()


def record(port, corpus):
    out = []
    for case in corpus:
        for name, add_special, parse_special in VARIANTS:
            if name != "*" and name != case["name"]:
                continue
            r = post(port, "/tokenize", {"content": case["text"], "add_special": add_special,
                                        "parse_special": parse_special})
            out.append({"name": case["name"], "add_special": add_special,
                        "parse_special": parse_special, "ids": r["tokens"]})
    return out


def digit_tokens():
    """Extra tokens and merges that make digit grouping visible in the ids (the SmolLM2 vocab has
    no multi-digit tokens): "00".."99" then "000".."999", merged pairwise ("1 2", then "12 3").
    tests/unit/test_tokenizer.cpp adds the same ones (add_digit_merges)."""
    two = [f"{i:02d}" for i in range(100)]
    three = [f"{i:03d}" for i in range(1000)]
    return two + three, [f"{t[0]} {t[1]}" for t in two] + [f"{t[:2]} {t[2]}" for t in three]


def write_smollm_gguf(path, pre, digits):
    tok = json.load(open(os.path.join(SMOL_DIR, "tokenizer.json"), encoding="utf-8"))
    cfg = json.load(open(os.path.join(SMOL_DIR, "config.json"), encoding="utf-8"))
    vocab = tok["model"]["vocab"]
    added = {t["id"]: t for t in tok["added_tokens"]}
    n_vocab = max(max(vocab.values()), max(added) if added else -1) + 1
    tokens = [f"[PAD{i}]" for i in range(n_vocab)]
    types = [int(gguf.TokenType.UNUSED)] * n_vocab
    for text, i in vocab.items():
        tokens[i] = text
        types[i] = int(gguf.TokenType.NORMAL)
    for i, t in added.items():
        tokens[i] = t["content"]
        types[i] = int(gguf.TokenType.CONTROL if t["special"] else gguf.TokenType.USER_DEFINED)
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    if digits:
        extra_tokens, extra_merges = digit_tokens()
        tokens += extra_tokens
        types += [int(gguf.TokenType.NORMAL)] * len(extra_tokens)
        merges += extra_merges
        n_vocab = len(tokens)

    n_embd, n_ff = 8, 8
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("smollm2-tokenizer-only")
    w.add_context_length(128)
    w.add_embedding_length(n_embd)
    w.add_feed_forward_length(n_ff)
    w.add_block_count(1)
    w.add_head_count(1)
    w.add_head_count_kv(1)
    w.add_rope_dimension_count(n_embd)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(cfg["bos_token_id"])
    w.add_eos_token_id(cfg["eos_token_id"])
    w.add_pad_token_id(cfg["pad_token_id"])
    w.add_add_bos_token(False)
    w.add_add_eos_token(False)
    rng = np.random.default_rng(0)
    def t(name, *shape):
        w.add_tensor(name, (rng.standard_normal(shape) * 0.02).astype(np.float32))
    t("token_embd.weight", n_vocab, n_embd)
    w.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    w.add_tensor("blk.0.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
    w.add_tensor("blk.0.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
    for name in ["attn_q", "attn_k", "attn_v", "attn_output"]:
        t(f"blk.0.{name}.weight", n_embd, n_embd)
    t("blk.0.ffn_gate.weight", n_ff, n_embd)
    t("blk.0.ffn_up.weight", n_ff, n_embd)
    t("blk.0.ffn_down.weight", n_embd, n_ff)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    corpus = json.load(open(os.path.join(DATA, "corpus.json"), encoding="utf-8"))["cases"]
    version = subprocess.run(["llama-server", "--version"], capture_output=True, text=True)
    ref = " ".join((version.stdout + version.stderr).split()[:6])
    cmd = "../shared/tools/llamacpp-ref python3 scripts/gen_tokenizer_golden.py"

    families = [a.split("=", 1) for a in sys.argv[1:] if "=" in a]
    if families:
        out = {"reference": ref, "command": cmd + " " + " ".join("--family " + "=".join(f) for f in families),
               "model": "heterokv make-model --preset PRESET --tokenizer stories260K.gguf (SPM + the family's tokens)",
               "runs": []}
        for preset, path in families:
            cases = with_server(path, lambda p: record(p, corpus))
            out["runs"].append({"preset": preset, "cases": cases})
            print(f"{preset}: {len(cases)} cases", file=sys.stderr)
        with open(os.path.join(DATA, "golden_spm_families.json"), "w", encoding="utf-8") as f:
            json.dump(out, f, separators=(",", ":"))
            f.write("\n")
        return

    stories = {"reference": ref, "command": cmd, "model": "stories260K.gguf (llama SPM)",
               "runs": [{"pre": "", "cases": with_server(STORIES, lambda p: record(p, corpus))}]}
    with open(os.path.join(DATA, "golden_stories260k.json"), "w", encoding="utf-8") as f:
        json.dump(stories, f, separators=(",", ":"))
        f.write("\n")

    smol = {"reference": ref, "command": cmd,
            "model": "smollm2-135m-tokenizer/tokenizer.json (gpt2 byte-level BPE), one run per pre",
            "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        # the real tokenizer as is, then every pre-tokenizer with the digit tokens added
        for pre, digits in [("smollm", False)] + [(p, True) for p in SMOL_PRES]:
            path = os.path.join(tmp, f"smollm2-{pre}-{int(digits)}.gguf")
            write_smollm_gguf(path, pre, digits)
            cases = with_server(path, lambda p: record(p, corpus))
            smol["runs"].append({"pre": pre, "digit_merges": digits, "cases": cases})
            print(f"smollm2 pre={pre} digit_merges={digits}: {len(cases)} cases", file=sys.stderr)
    with open(os.path.join(DATA, "golden_smollm2.json"), "w", encoding="utf-8") as f:
        json.dump(smol, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
