#!/usr/bin/env python3
"""Runs the reference implementations on the windows of a heterokv dump and records what they keep.

Input: `heterokv eval ppl --dump PREFIX` (PREFIX.json, PREFIX.logits.f32) and the model converted
with gguf_to_hf.py. For every window of the dump:
  1. Hugging Face full-cache logits of the window (one forward pass) against heterokv's `full`
     rows on the same tokens: max |logit difference| and KL(heterokv || HF) per scored token;
  2. for every heterokv policy of the dump that has a reference (kvpress_press, paper_oracles,
     HeteroCache): the context
     (the window's first C tokens) is prefilled with the reference compressing the cache, then the
     scored tokens are fed one at a time, as heterokv did. Recorded: the positions each (layer, KV
     head) keeps after the context, KL(HF full || reference) per scored token, and KL(heterokv's
     policy || reference) per scored token (the two implementations' distributions directly).
Output (-o): JSON {model, hf_check: [...], hf_rows: {window: [first, last scored logits row]},
runs: [{window, policy, reference, kept, kld, kl_hkv, extra}]}, read by compare.py and golden.py.

References: NVIDIA kvpress 0.5.4 (github.com/NVIDIA/kvpress, a source checkout given by --kvpress)
and the HeteroCache reference code (github.com/ponytaill/HeteroCache, --heterocache). The shims
that make them run on CPU with transformers 5.12 are listed in shims.py.

Run inside the reference Python stack (../shared/tools/llamacpp-ref python3 ...); see README.md.
"""
import argparse
import copy
import json
import math
import os
import time

import numpy as np
import torch

import paper_oracles
import shims


# ---------------------------------------------------------------------------------------------
# heterokv policy specs

def parse_spec(spec):
    name, _, rest = spec.partition(":")
    opts = {}
    for item in filter(None, rest.split(",")):
        k, _, v = item.partition("=")
        opts[k.strip()] = v.strip()
    return name.strip(), opts


def ratio_for(n_keep, n):
    """kvpress ScorerPress keeps int(n * (1 - ratio)) tokens: this ratio keeps exactly n_keep."""
    return 1.0 - (n_keep + 0.5) / n


# ---------------------------------------------------------------------------------------------
# model runs

def log_softmax64(x):
    return torch.log_softmax(x.double(), dim=-1)


def kl_rows(p_logits, q_logits):
    """KL(P || Q) per row, P and Q given as logits [rows, vocab]."""
    lp, lq = log_softmax64(p_logits), log_softmax64(q_logits)
    return (lp.exp() * (lp - lq)).sum(-1).clamp_min(0.0)


def full_rows(model, tokens, n_ctx):
    """Logits [W - C, vocab] predicting tokens C .. W-1, full cache, one forward pass."""
    ids = torch.tensor([tokens])
    with torch.no_grad():
        out = model(input_ids=ids, position_ids=torch.arange(len(tokens)).unsqueeze(0), use_cache=False)
    return out.logits[0, n_ctx - 1: len(tokens) - 1].float()


def decode_rows(model, cache, tokens, n_ctx, first_row):
    """Rows after the context: first_row (the prefill's last logits), then one decode step per token."""
    rows = [first_row]
    with torch.no_grad():
        for t in range(n_ctx, len(tokens) - 1):
            out = model(input_ids=torch.tensor([[tokens[t]]]), past_key_values=cache,
                        position_ids=torch.tensor([[t]]), use_cache=True)
            rows.append(out.logits[0, -1].float())
    return torch.stack(rows)


def match_rows(before, after):
    """Positions of the rows of `after` [n_keep, d] in `before` [n, d] (exact equality)."""
    index = {}
    for j, row in enumerate(before.contiguous().numpy()):
        index.setdefault(row.tobytes(), j)
    out = []
    for row in after.contiguous().numpy():
        j = index.get(row.tobytes())
        if j is None:
            raise RuntimeError("a kept key row matches no context key")
        out.append(j)
    return sorted(out)


# ---------------------------------------------------------------------------------------------
# kvpress

def kvpress_press(kvpress, name, opts, n_ctx, n_layer):
    """The kvpress press for heterokv spec (name, opts), or None; with its label."""
    if "budget" not in opts:
        return None, None
    b = int(opts["budget"])
    w = int(opts.get("window", 32))
    k = int(opts.get("kernel", 7))
    if name == "streaming":
        return kvpress.StreamingLLMPress(compression_ratio=ratio_for(b, n_ctx), n_sink=int(opts.get("sinks", 4))), \
            "kvpress StreamingLLMPress"
    if name == "snapkv":
        return kvpress.SnapKVPress(compression_ratio=ratio_for(b, n_ctx), window_size=w, kernel_size=k), \
            "kvpress SnapKVPress"
    if name == "pyramidkv":
        return kvpress.PyramidKVPress(compression_ratio=1.0 - b / n_ctx, window_size=w, kernel_size=k,
                                      beta=int(float(opts.get("beta", 20)))), "kvpress PyramidKVPress"
    if name == "adakv":
        inner = kvpress.SnapKVPress(compression_ratio=ratio_for(b, n_ctx), window_size=w, kernel_size=k)
        return kvpress.AdaKVPress(inner, alpha_safeguard=float(opts.get("alpha", 0.2))), "kvpress AdaKVPress(SnapKV)"
    if name == "chunkkv":
        inner = kvpress.SnapKVPress(compression_ratio=ratio_for(b, n_ctx), window_size=w, kernel_size=k)
        return kvpress.ChunkKVPress(inner, chunk_length=int(opts.get("chunk", 10))), "kvpress ChunkKVPress(SnapKV)"
    if name == "h2o":
        return kvpress.ObservedAttentionPress(compression_ratio=ratio_for(b, n_ctx)), "kvpress ObservedAttentionPress"
    if name == "knorm":
        return kvpress.KnormPress(compression_ratio=ratio_for(b, n_ctx)), "kvpress KnormPress"
    if name == "tova":
        return kvpress.TOVAPress(compression_ratio=ratio_for(b, n_ctx)), "kvpress TOVAPress"
    return None, None


def run_kvpress(model, press, tokens, n_ctx):
    """Prefill the context under the press, record the kept positions, decode the rest. For
    KnormPress also its selection scores (-|k| per position, float64) as extra.scores64, so the
    goldens can list the positions that tie at the budget's boundary."""
    from transformers import DynamicCache
    n_layer = model.config.num_hidden_layers
    kept = [None] * n_layer
    scores = [None] * n_layer
    knorm = type(press).__name__ == "KnormPress"
    hook = shims.press_hook_with_cache_position(press)

    def recording_hook(module, inputs, kwargs, output):
        cache = kwargs["past_key_values"]
        il = module.layer_idx
        before = cache.layers[il].keys[0].clone()  # [Hkv, n, d]
        if knorm:
            scores[il] = (-before.double().norm(dim=-1)).tolist()  # [Hkv, n]
        result = hook(module, inputs, kwargs, output)
        after = cache.layers[il].keys[0]
        heads = [match_rows(before[h], after[h]) for h in range(before.shape[0])]
        masked = getattr(module, "masked_key_indices", None)  # AdaKV: head-wise masks
        if masked is not None:
            drop = {(int(h), int(s)) for b_, h, s in zip(*masked)}
            heads = [[s for s in hs if (h, s) not in drop] for h, hs in enumerate(heads)]
        kept[il] = heads
        return result

    press.forward_hook = recording_hook
    cache = DynamicCache()
    with torch.no_grad(), press(model):
        out = model(input_ids=torch.tensor([tokens[:n_ctx]]), past_key_values=cache,
                    position_ids=torch.arange(n_ctx).unsqueeze(0), use_cache=True)
    first = out.logits[0, -1].float()
    rows = decode_rows(model, cache, tokens, n_ctx, first)
    for layer in model.model.layers:  # AdaKV leaves its masks on the modules
        layer.self_attn.masked_key_indices = None
    return kept, rows, ({"scores64": scores} if knorm else None)


# ---------------------------------------------------------------------------------------------
# the papers' definitions (paper_oracles.py) on Hugging Face's attention

def run_oracle(eager, sdpa, oracle, opts, tokens, n_ctx):
    """Prefill the context with eager attention (its weights feed the oracle), then decode with the
    evicted positions masked per head (kvpress's attention patch: keys replaced by a key whose
    exp(q.k) is 0, which equals removing them), so heads may keep different counts."""
    from transformers import DynamicCache
    cfg = eager.config
    attn = {}
    hooks = []
    for layer in eager.model.layers:
        def grab(module, inputs, output, il=layer.self_attn.layer_idx):
            attn[il] = output[1][0].detach()  # [Hq, L, L]
        hooks.append(layer.self_attn.register_forward_hook(grab))
    cache = DynamicCache()
    try:
        with torch.no_grad():
            out = eager(input_ids=torch.tensor([tokens[:n_ctx]]), past_key_values=cache,
                        position_ids=torch.arange(n_ctx).unsqueeze(0), use_cache=True)
    finally:
        for h in hooks:
            h.remove()
    kept = [oracle(attn[il], il, cfg.num_hidden_layers, cfg.num_key_value_heads, opts)
            for il in range(cfg.num_hidden_layers)]
    for il, layer in enumerate(sdpa.model.layers):
        heads, seqs = [], []
        for h, keep in enumerate(kept[il]):
            ks = set(keep)
            drop = [p for p in range(n_ctx) if p not in ks]
            heads += [h] * len(drop)
            seqs += drop
        layer.self_attn.masked_key_indices = (torch.zeros(len(seqs), dtype=torch.long), torch.tensor(heads),
                                              torch.tensor(seqs)) if seqs else None
    try:
        rows = decode_rows(sdpa, cache, tokens, n_ctx, out.logits[0, -1].float())
    finally:
        for layer in sdpa.model.layers:
            layer.self_attn.masked_key_indices = None
    return kept, rows


# ---------------------------------------------------------------------------------------------
# HeteroCache reference

def selection_scores64(q, k, pool):
    """The reference's prefill selection score of one KV head in float64 (for telling a genuine
    difference from a tie within float32 rounding): softmax(q k^T / sqrt(d)) of its group's last
    queries q [G, d] over keys k [L, d], avg-pooled (zero padding counted), max over the group."""
    q, k = q.double(), k.double()
    a = torch.softmax(q @ k.T / math.sqrt(q.shape[-1]), dim=-1)
    a = torch.nn.functional.avg_pool1d(a.unsqueeze(1), kernel_size=pool, padding=pool // 2, stride=1).squeeze(1)
    return a.max(dim=0).values

class HeteroCacheRef:
    """The reference's attention class, weight re-ordering and HeteroCache, on a copy of the model."""

    SORT_PRIORITY = {1: 0, 4: 1, 2: 2, 3: 3}  # the reference's order: anchor, satellite, volatile, pivot

    def __init__(self, src, hf_dir):
        self.cache_utils, self.llama_model, self.utils = shims.import_heterocache(src)
        self.hf_dir = hf_dir

    def build(self, taxonomy):
        import transformers
        import transformers.models.llama.modeling_llama as ml
        original = ml.LlamaAttention
        ml.LlamaAttention = self.llama_model.LlamaAttention  # what the reference's loader does
        try:
            config = transformers.AutoConfig.from_pretrained(self.hf_dir)
            shims.config_rope_theta(config)
            model = transformers.LlamaForCausalLM.from_pretrained(self.hf_dir, config=config, dtype=torch.float32)
        finally:
            ml.LlamaAttention = original
        model.eval()
        data = copy.deepcopy(taxonomy)
        perm = self.utils.reorder_model_weights_by_classification(model, data)
        # The per-layer lists the reference's loader derives after re-ordering (utils.py).
        for key in ("need_to_compress_counts", "need_to_select_counts", "need_to_update_counts",
                    "need_to_keep_counts"):
            data[key] = []
        for il, order in enumerate(perm):
            order = list(order)
            cls = [data["classification_matrix"][il][h] for h in order]
            data["classification_matrix"][il] = cls
            data["allocation_matrix"][il] = [data["allocation_matrix"][il][h] for h in order]
            data["need_to_compress_counts"].append(cls.count(1) + cls.count(4))
            data["need_to_select_counts"].append([i for i, c in enumerate(cls) if c == 3])
            data["need_to_update_counts"].append([i for i, c in enumerate(cls) if c == 4])
            data["need_to_keep_counts"].append([i for i, c in enumerate(cls) if c in (2, 3)])
            new_of_old = {old: new for new, old in enumerate(order)}
            data["leader_member_relations"][il] = {
                str(new_of_old[int(p)]): sorted(new_of_old[m] for m in members)
                for p, members in data["leader_member_relations"][il].items()}
        return model, data, perm

    def run(self, taxonomy, opts, tokens, n_ctx):
        model, data, perm = self.build(taxonomy)
        cfg = model.config
        hc_cfg = self.cache_utils.HeteroCacheConfig(
            data=data, compression_ratio=float(opts.get("ratio", 0.5)), stable_threshold=float(opts.get("tau", 0.5)),
            real_offload=True, max_gen_len=len(tokens) - n_ctx + 8, decode_step=int(opts.get("window", 5)),
            pooling="avgpool", kernel_size=int(opts.get("pool", 5)), num_attn_heads=cfg.num_attention_heads,
            num_kv_heads=cfg.num_key_value_heads, num_layers=cfg.num_hidden_layers)
        with shims.cpu_only():
            cache = self.cache_utils.HeteroCache(hc_cfg)
            keys = {}
            prefill_select = cache.prefill_select

            queries = {}

            def recording_prefill_select(query_states, key_states, value_states, layer_idx):
                keys[layer_idx] = key_states[0].clone()  # [Hkv, L, d] (re-ordered heads)
                queries[layer_idx] = query_states[0, :, -1].clone()  # [Hq, d] the last query
                return prefill_select(query_states, key_states, value_states, layer_idx)

            cache.prefill_select = recording_prefill_select
            with torch.no_grad():
                out = model(input_ids=torch.tensor([tokens[:n_ctx]]), past_key_values=cache,
                            position_ids=torch.arange(n_ctx).unsqueeze(0), use_cache=True)
            kept, scores = [], []
            page = cache.page_size
            group = cfg.num_attention_heads // cfg.num_key_value_heads
            for il in range(cfg.num_hidden_layers):
                pool = cache.key_pools[il].view(-1, cache.head_dim)
                heads = [None] * cfg.num_key_value_heads
                head_scores = [None] * cfg.num_key_value_heads
                for h in range(cfg.num_key_value_heads):
                    n = int(cache.heads_len[il][h])
                    start = int(cache.block_tables[il][h, 0]) * page
                    heads[perm[il][h]] = match_rows(keys[il][h], pool[start:start + n])
                    head_scores[perm[il][h]] = selection_scores64(
                        queries[il][h * group:(h + 1) * group], keys[il][h], int(opts.get("pool", 5))).tolist()
                kept.append(heads)
                scores.append(head_scores)
            budgets = {"base": int(cache.base_compress_len), "scores64": scores}
            rows = decode_rows(model, cache, tokens, n_ctx, out.logits[0, -1].float())
        return kept, rows, budgets


# ---------------------------------------------------------------------------------------------

def load_eager(hf_dir):
    import transformers
    m = transformers.LlamaForCausalLM.from_pretrained(hf_dir, dtype=torch.float32, attn_implementation="eager")
    m.eval()
    return m


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dump", help="PREFIX.json of heterokv eval ppl --dump PREFIX")
    ap.add_argument("--hf", required=True, help="the model converted by gguf_to_hf.py")
    ap.add_argument("--kvpress", help="kvpress 0.5.4 source checkout (its folder holding kvpress/)")
    ap.add_argument("--heterocache", help="HeteroCache reference checkout (holding heterocache/ and tools/)")
    ap.add_argument("--root", default=".", help="folder the dump's relative taxonomy paths are relative to")
    ap.add_argument("--only", default="", help="run only the policies whose spec starts with one of these "
                    "comma-separated names (default: all)")
    ap.add_argument("--windows", type=int, default=0, help="only the first N windows (0: all)")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(0)
    with open(a.dump) as f:
        dump = json.load(f)
    n_ctx, n_scored, n_vocab = dump["context"], dump["scored"], dump["n_vocab"]
    policies = dump["policies"]
    logits = np.memmap(os.path.join(os.path.dirname(a.dump), dump["logits"]["file"]), dtype="<f4", mode="r")
    logits = logits.reshape(len(dump["windows"]), len(policies), n_scored, n_vocab)

    import transformers
    model = transformers.LlamaForCausalLM.from_pretrained(a.hf, dtype=torch.float32, attn_implementation="sdpa")
    model.eval()
    eager = None  # ObservedAttentionPress needs the attention weights
    kvpress = shims.import_kvpress(a.kvpress) if a.kvpress else None
    hc = HeteroCacheRef(a.heterocache, a.hf) if a.heterocache else None

    result = {"model": dump["model"], "file": dump["file"], "window": dump["window"], "context": n_ctx,
              "scored": n_scored, "hf_check": [], "hf_rows": {}, "runs": []}
    only = tuple(x for x in a.only.split(",") if x)
    for iw, win in enumerate(dump["windows"]):
        if a.windows and iw >= a.windows:
            break
        tokens = win["tokens"]
        t0 = time.time()
        full = full_rows(model, tokens, n_ctx)
        hkv_full = torch.from_numpy(np.array(logits[iw, 0]))
        result["hf_rows"][str(iw)] = [full[0].tolist(), full[-1].tolist()]
        result["hf_check"].append({"window": iw, "max_abs_logit_diff": float((full - hkv_full).abs().max()),
                                   "kl_hkv_hf_mean": float(kl_rows(hkv_full, full).mean()),
                                   "top1_agree": float((full.argmax(-1) == hkv_full.argmax(-1)).float().mean())})
        for ip, spec in enumerate(policies):
            if ip == 0 or (only and not spec.startswith(only)):
                continue
            name, opts = parse_spec(spec)
            hkv_rows = torch.from_numpy(np.array(logits[iw, ip]))
            runs = []
            if kvpress is not None:
                press, label = kvpress_press(kvpress, name, opts, n_ctx, model.config.num_hidden_layers)
                if press is not None:
                    m = model
                    if name == "h2o":
                        eager = eager or load_eager(a.hf)
                        m = eager
                    kept, rows, extra = run_kvpress(m, press, tokens, n_ctx)
                    runs.append((label, kept, rows, extra))
            if kvpress is not None and name in paper_oracles.ORACLES:  # the masks need kvpress's patch
                eager = eager or load_eager(a.hf)
                kept, rows = run_oracle(eager, model, paper_oracles.ORACLES[name], opts, tokens, n_ctx)
                runs.append(("paper (" + name + " oracle)", kept, rows, None))
            if hc is not None and name == "heterocache":
                path = opts["taxonomy"]
                with open(path if os.path.isabs(path) else os.path.join(a.root, path)) as f:
                    tax = json.load(f)
                kept, rows, budgets = hc.run(tax, opts, tokens, n_ctx)
                runs.append(("HeteroCache reference", kept, rows, budgets))
            for label, kept, rows, extra in runs:
                r = {"window": iw, "policy": spec, "reference": label, "kept": kept,
                     "kld": kl_rows(full, rows).tolist(), "kl_hkv": kl_rows(hkv_rows, rows).tolist()}
                if extra:
                    r["extra"] = extra
                result["runs"].append(r)
        print(f"window {iw + 1}/{len(dump['windows'])}: {time.time() - t0:.1f} s, HF vs heterokv full: max |dlogit| "
              f"{result['hf_check'][-1]['max_abs_logit_diff']:.2e}", flush=True)
    tmp = a.output + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, a.output)


if __name__ == "__main__":
    main()
