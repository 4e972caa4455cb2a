#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/): tiny valid GGUF models
(llama with an SPM vocabulary, qwen2 with a byte-level BPE vocabulary and QKV biases) and request
bodies for both endpoints. Deterministic; rerun to regenerate.
    scripts/gen_fuzz_corpus.py
"""
import json, os, struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fuzz", "corpus")

def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b

def kv(key, typ, val):
    out = s(key) + struct.pack("<I", typ)
    if typ == 8: return out + s(val)
    if typ == 4: return out + struct.pack("<I", val)
    if typ == 6: return out + struct.pack("<f", val)
    if typ == 7: return out + struct.pack("<B", val)
    if typ == 9:
        et, items = val
        out += struct.pack("<IQ", et, len(items))
        for it in items:
            out += s(it) if et == 8 else struct.pack({5: "<i", 6: "<f"}[et], it)
        return out
    raise ValueError(typ)

def gguf(arch, vocab, tensors, extra_kv):
    n_embd, n_head, n_kv, n_ff = 8, 2, 1, 16
    meta = [kv("general.architecture", 8, arch), kv("general.name", 8, "fuzz-" + arch),
            kv(arch + ".block_count", 4, 1), kv(arch + ".embedding_length", 4, n_embd),
            kv(arch + ".feed_forward_length", 4, n_ff), kv(arch + ".attention.head_count", 4, n_head),
            kv(arch + ".attention.head_count_kv", 4, n_kv), kv(arch + ".context_length", 4, 64),
            kv(arch + ".attention.layer_norm_rms_epsilon", 6, 1e-5)] + vocab + extra_kv
    infos, data = b"", b""
    for name, dims in tensors:
        n = 1
        for d in dims: n *= d
        infos += s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", 0, len(data))
        data += b"".join(struct.pack("<f", ((i * 7919) % 97) / 97.0 - 0.5) for i in range(n))
        data += b"\0" * ((-len(data)) % 32)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta)) + b"".join(meta) + infos
    head += b"\0" * ((-len(head)) % 32)
    return head + data

def tensors(n_vocab, bias):
    e, q, k, f = 8, 8, 4, 16
    t = [("token_embd.weight", [e, n_vocab]), ("output_norm.weight", [e]), ("blk.0.attn_norm.weight", [e]),
         ("blk.0.attn_q.weight", [e, q]), ("blk.0.attn_k.weight", [e, k]), ("blk.0.attn_v.weight", [e, k]),
         ("blk.0.attn_output.weight", [q, e]), ("blk.0.ffn_norm.weight", [e]), ("blk.0.ffn_gate.weight", [e, f]),
         ("blk.0.ffn_up.weight", [e, f]), ("blk.0.ffn_down.weight", [f, e])]
    if bias:
        t += [("blk.0.attn_q.bias", [q]), ("blk.0.attn_k.bias", [k]), ("blk.0.attn_v.bias", [k])]
    return t

def main():
    os.makedirs(os.path.join(ROOT, "fuzz_gguf"), exist_ok=True)
    os.makedirs(os.path.join(ROOT, "fuzz_request"), exist_ok=True)
    spm = ["<unk>", "<s>", "</s>", "\u2581a", "\u2581b", "a", "b", "<0x41>"]
    spm_kv = [kv("tokenizer.ggml.model", 8, "llama"), kv("tokenizer.ggml.tokens", 9, (8, spm)),
              kv("tokenizer.ggml.scores", 9, (6, [0.0, 0.0, 0.0, -1.0, -2.0, -3.0, -4.0, 0.0])),
              kv("tokenizer.ggml.token_type", 9, (5, [2, 3, 3, 1, 1, 1, 1, 6])),
              kv("tokenizer.ggml.bos_token_id", 4, 1), kv("tokenizer.ggml.eos_token_id", 4, 2)]
    bpe = ["a", "b", "\u0120", "ab", "\u0120a", "<|im_start|>", "<|im_end|>", "<|endoftext|>"]
    bpe_kv = [kv("tokenizer.ggml.model", 8, "gpt2"), kv("tokenizer.ggml.pre", 8, "qwen2"),
              kv("tokenizer.ggml.tokens", 9, (8, bpe)), kv("tokenizer.ggml.token_type", 9, (5, [1] * 5 + [3] * 3)),
              kv("tokenizer.ggml.merges", 9, (8, ["a b", "\u0120 a"])), kv("tokenizer.ggml.eos_token_id", 4, 7),
              kv("tokenizer.chat_template", 8, "{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}")]
    llama = gguf("llama", spm_kv, tensors(8, False), [])
    qwen = gguf("qwen2", bpe_kv, tensors(8, True), [kv("qwen2.rope.freq_base", 6, 1e6)])
    for name, blob in [("llama_spm.gguf", llama), ("qwen2_bpe.gguf", qwen), ("llama_truncated.gguf", llama[:300]),
                       ("header_only.gguf", llama[:24])]:
        with open(os.path.join(ROOT, "fuzz_gguf", name), "wb") as f:
            f.write(blob)
    # Mutation mode (tests/fuzz/fuzz_inputs.h): 0x01, n records (tensor, field, u64 value), a valid file.
    def mutate(records, blob):
        return bytes([1, len(records)]) + b"".join(struct.pack("<BBQ", t, fld, v) for t, fld, v in records) + blob
    for name, recs, blob in [("mut_type_f16.bin", [(1, 0, 1)], llama), ("mut_offset.bin", [(3, 1, 256)], llama),
                             ("mut_shift.bin", [(5, 2, 0xff)], qwen), ("mut_ne0.bin", [(2, 3, 4)], llama),
                             ("mut_none.bin", [], qwen), ("mut_two.bin", [(0, 0, 28), (4, 2, 1)], llama)]:
        with open(os.path.join(ROOT, "fuzz_gguf", name), "wb") as f:
            f.write(mutate(recs, blob))
    bodies = [
        (0, {"prompt": "Once upon a time", "max_tokens": 16, "temperature": 0.7, "top_p": 0.9, "stream": True,
             "stream_options": {"include_usage": True}, "stop": ["\n", "."], "seed": 42, "kv_policy": "snapkv:budget=64"}),
        (0, {"prompt": [1, 2, 3], "max_tokens": 4, "echo": False, "top_k": 40, "min_p": 0.05, "n": 1,
             "logprobs": None, "presence_penalty": 0, "user": "u"}),
        (1, {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                          {"role": "assistant", "content": "Hello"},
                          {"role": "user", "content": [{"type": "text", "text": "More"}]}],
             "max_completion_tokens": 8, "temperature": 0}),
        (3, {"messages": [{"role": "user", "content": "x"}], "stream": True}),
        (5, {"messages": [{"role": "developer", "content": "y", "name": "n"}], "max_tokens": None}),
    ]
    for i, (b0, body) in enumerate(bodies):
        with open(os.path.join(ROOT, "fuzz_request", "seed%d.json" % i), "wb") as f:
            f.write(bytes([b0]) + json.dumps(body).encode())
    for i, raw in enumerate([b'\x00{"prompt": "a", "max_tokens": -1}', b'\x01[[[[[[[[', b'\x00{"prompt": "\\ud800"}']):
        with open(os.path.join(ROOT, "fuzz_request", "bad%d.json" % i), "wb") as f:
            f.write(raw)
    # Raw HTTP for the framer (0x40, then the piece size byte) and kv_policy specs (0x80).
    body = json.dumps({"prompt": "Once", "max_tokens": 2}).encode()
    head = b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    chunked = b"".join(b"%x\r\n" % len(p) + p + b"\r\n" for p in [body[:5], body[5:]]) + b"0\r\nT: 1\r\n\r\n"
    http = [head + b"Content-Length: %d\r\n\r\n" % len(body) + body + b"GET /health HTTP/1.1\r\n\r\n",
            head + b"Transfer-Encoding: chunked\r\n\r\n" + chunked,
            head + b"Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\nfffffff\r\nx",
            head + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
            b"\r\nGET / HTTP/1.0\r\nX: \x7f\r\n\r\n"]
    for i, raw in enumerate(http):
        with open(os.path.join(ROOT, "fuzz_request", "http%d.bin" % i), "wb") as f:
            f.write(bytes([0x40, i * 13]) + raw)
    specs = [b"snapkv:budget=64,window=8", b"heterocache:taxonomy=t,ratio=0.5", b"heterocache:taxonomy=/etc/passwd",
             b"streaming:budget=1", b"pyramidkv:budget=16,beta=20", b"quest:budget=64,page=16", b"nosuch", b"a:b=c,d"]
    for i, spec in enumerate(specs):
        with open(os.path.join(ROOT, "fuzz_request", "policy%d.bin" % i), "wb") as f:
            f.write(bytes([0x80]) + spec)

if __name__ == "__main__":
    main()
