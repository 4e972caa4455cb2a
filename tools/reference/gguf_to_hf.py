#!/usr/bin/env python3
"""Converts a Llama-architecture GGUF file (heterokv's shared models) into a Hugging Face Llama
checkpoint folder: config.json + model.safetensors (float32), so that transformers (and kvpress or
the HeteroCache reference code on top of it) run the same weights as heterokv.

GGUF stores Q and K projections in Meta's interleaved-RoPE row order (llama.cpp's converter
permutes Hugging Face checkpoints into it); Hugging Face's LlamaAttention rotates halves, so every
head's rows are permuted back here: GGUF row h*d + 2*i + j  ->  HF row h*d + j*(d/2) + i.
`check_logits.py` verifies the result against heterokv's own logits.

Part of tools/reference (outside the build; see README.md there). Run inside the reference Python
stack:  ../shared/tools/llamacpp-ref python3 tools/reference/gguf_to_hf.py MODEL.gguf OUT_DIR
"""
import argparse
import json
import os
import sys

import numpy as np


def field(reader, key, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    v = f.parts[f.data[0]]
    if f.types and f.types[0].name == "STRING":
        return bytes(v).decode("utf-8")
    return v.tolist()[0] if hasattr(v, "tolist") else v


def tensor_f32(t):
    import gguf
    if t.tensor_type == gguf.GGMLQuantizationType.F32:
        a = np.array(t.data, dtype=np.float32)
    elif t.tensor_type == gguf.GGMLQuantizationType.F16:
        a = np.array(t.data, dtype=np.float16).astype(np.float32)
    else:
        a = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
    shape = [int(x) for x in reversed(t.shape)]  # GGUF ne[] is fastest-first
    return a.reshape(shape)


def unpermute_rope_rows(w, n_head):
    """Inverse of llama.cpp's HF->GGUF permute: interleaved pairs back to rotate-half halves."""
    rows, cols = w.shape
    d = rows // n_head
    return w.reshape(n_head, d // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def convert(gguf_path, out_dir, max_positions=None):
    import gguf
    import torch
    from safetensors.torch import save_file

    r = gguf.GGUFReader(gguf_path)
    arch = field(r, "general.architecture")
    if arch != "llama":
        sys.exit(f"gguf_to_hf: architecture '{arch}' (only llama)")
    p = f"{arch}."
    n_layer = int(field(r, p + "block_count"))
    n_embd = int(field(r, p + "embedding_length"))
    n_head = int(field(r, p + "attention.head_count"))
    n_head_kv = int(field(r, p + "attention.head_count_kv", n_head))
    n_ff = int(field(r, p + "feed_forward_length"))
    eps = float(field(r, p + "attention.layer_norm_rms_epsilon", 1e-5))
    theta = float(field(r, p + "rope.freq_base", 10000.0))
    n_ctx = int(field(r, p + "context_length", 2048))
    head_dim = int(field(r, p + "attention.key_length", n_embd // n_head))
    tensors = {t.name: t for t in r.tensors}
    if "rope_freqs.weight" in tensors or field(r, p + "rope.scaling.type") not in (None, "none"):
        sys.exit("gguf_to_hf: rope scaling / rope_freqs not supported by this converter")
    n_vocab = tensors["token_embd.weight"].shape[1]

    sd = {}
    sd["model.embed_tokens.weight"] = tensor_f32(tensors["token_embd.weight"])
    sd["model.norm.weight"] = tensor_f32(tensors["output_norm.weight"])
    out = tensors.get("output.weight", tensors["token_embd.weight"])
    sd["lm_head.weight"] = tensor_f32(out)
    for il in range(n_layer):
        b, h = f"blk.{il}.", f"model.layers.{il}."
        sd[h + "input_layernorm.weight"] = tensor_f32(tensors[b + "attn_norm.weight"])
        sd[h + "post_attention_layernorm.weight"] = tensor_f32(tensors[b + "ffn_norm.weight"])
        sd[h + "self_attn.q_proj.weight"] = unpermute_rope_rows(tensor_f32(tensors[b + "attn_q.weight"]), n_head)
        sd[h + "self_attn.k_proj.weight"] = unpermute_rope_rows(tensor_f32(tensors[b + "attn_k.weight"]), n_head_kv)
        sd[h + "self_attn.v_proj.weight"] = tensor_f32(tensors[b + "attn_v.weight"])
        sd[h + "self_attn.o_proj.weight"] = tensor_f32(tensors[b + "attn_output.weight"])
        sd[h + "mlp.gate_proj.weight"] = tensor_f32(tensors[b + "ffn_gate.weight"])
        sd[h + "mlp.up_proj.weight"] = tensor_f32(tensors[b + "ffn_up.weight"])
        sd[h + "mlp.down_proj.weight"] = tensor_f32(tensors[b + "ffn_down.weight"])
    os.makedirs(out_dir, exist_ok=True)
    save_file({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()},
              os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": int(n_vocab),
        "hidden_size": n_embd,
        "intermediate_size": n_ff,
        "num_hidden_layers": n_layer,
        "num_attention_heads": n_head,
        "num_key_value_heads": n_head_kv,
        "head_dim": head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": max(n_ctx, max_positions or 0),
        "rms_norm_eps": eps,
        "rope_theta": theta,
        "rope_parameters": {"rope_type": "default", "rope_theta": theta},
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "bos_token_id": int(field(r, "tokenizer.ggml.bos_token_id", 1)),
        "eos_token_id": int(field(r, "tokenizer.ggml.eos_token_id", 2)),
        "torch_dtype": "float32",
        "dtype": "float32",
        "source_gguf": os.path.basename(gguf_path),
    }
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    return config


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("gguf")
    ap.add_argument("out_dir")
    ap.add_argument("--max-positions", type=int, default=None,
                    help="max_position_embeddings at least this (stories260K's file says 128; it was trained at 512)")
    a = ap.parse_args()
    c = convert(a.gguf, a.out_dir, a.max_positions)
    print(f"{a.gguf} -> {a.out_dir}: {c['num_hidden_layers']} layers, d {c['hidden_size']}, "
          f"{c['num_attention_heads']}/{c['num_key_value_heads']} heads, vocab {c['vocab_size']}")


if __name__ == "__main__":
    main()
