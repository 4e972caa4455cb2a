"""Stand-ins that let kvpress 0.5.4 and the HeteroCache reference code run on this machine's stack
(Debian's CPU-only PyTorch 2.14 and transformers 5.12; kvpress pins transformers < 5.3 and the
HeteroCache code expects CUDA and flash-attn). They live only in this harness: nothing in the engine
depends on them. Every shim changes plumbing, never a method's decision (scores, budgets, top-k):

kvpress
  K1. `datasets` stand-in module: kvpress imports it at package import for DuoAttentionPress only
      (not used here); calling its load_dataset raises.
  K2. `cache_position`: transformers 5.12 no longer passes it to attention modules, and
      BasePress.forward_hook reads kwargs["cache_position"][-1] to tell prefill from decoding. The
      harness activates a press only around the context's single prefill call, so the hook is
      given cache_position = arange(q_len) (the prefill of a fresh cache starts at position 0).
  K3. position_ids are passed explicitly at every step (as kvpress's own pipeline does), since a
      compressed cache's length is no longer the next position.

HeteroCache reference (github.com/ponytaill/HeteroCache @ 01dc7fe)
  H1. `flash_attn` stand-in module (the code imports flash_attn_func, flash_attn_varlen_func,
      flash_attn_with_kvcache and bert_padding at import). flash_attn_with_kvcache, the one it
      calls (ragged paged decode attention), is implemented here in PyTorch with the same
      arguments (q [B*Hkv, 1, G, d], paged K/V pools, cache_seqlens, block_table, causal=False).
  H2. transformers' flash_attention_forward (its prefill attention over the full prompt) is
      replaced by causal scaled-dot-product attention with the same inputs and output layout.
  H3. Device: HeteroCache.__init__ creates `torch.arange(..., device="cuda")`; built with
      device "cpu" instead. real_offload=True (its CPU-tier mode) is used, whose pinned host
      buffers (`pin_memory=True`) are plain host tensors here (no accelerator to pin for).
  H4. Its LlamaAttention.__init__ reads config.rope_theta, which transformers 5.x moved into
      config.rope_parameters; the attribute is set from there (it only stores it: RoPE itself comes
      from the model's position embeddings).
"""
import contextlib
import importlib.machinery
import math
import sys
import types

import torch
import torch.nn.functional as F


def install_datasets_stub():  # K1
    if "datasets" in sys.modules:
        return
    ds = types.ModuleType("datasets")
    ds.__spec__ = importlib.machinery.ModuleSpec("datasets", None)

    def load_dataset(*args, **kwargs):
        raise RuntimeError("datasets stand-in (tools/reference/shims.py): not available in this harness")

    ds.load_dataset = load_dataset
    sys.modules["datasets"] = ds


def import_kvpress(src_dir):
    install_datasets_stub()
    sys.path.insert(0, src_dir)
    import kvpress  # noqa: F401
    return kvpress


def press_hook_with_cache_position(press):  # K2
    """Makes press.forward_hook see cache_position = arange(q_len) when transformers omits it."""
    orig = press.forward_hook

    def hook(module, inputs, kwargs, output):
        if "cache_position" not in kwargs:
            q_len = kwargs["hidden_states"].shape[1]
            kwargs["cache_position"] = torch.arange(q_len, device=kwargs["hidden_states"].device)
        return orig(module, inputs, kwargs, output)

    return hook


def flash_attn_with_kvcache(q, k_cache, v_cache, cache_seqlens=None, block_table=None, causal=False,
                            softmax_scale=None, **unused):  # H1
    """q: [S, 1, G, d]; k_cache, v_cache: [n_blocks, page, 1, d]; cache_seqlens: [S];
    block_table: [S, max_blocks]. Each of the S sequences (one per (batch, KV head)) attends with
    its G query heads to its first cache_seqlens[s] rows. Returns [S, 1, G, d]."""
    if causal:
        raise NotImplementedError("shim: causal=True not used by the reference")
    n_seq, q_len, group, d = q.shape
    page = k_cache.shape[1]
    scale = softmax_scale if softmax_scale is not None else 1.0 / math.sqrt(d)
    out = torch.zeros_like(q)
    for s in range(n_seq):
        n = int(cache_seqlens[s])
        if n == 0:
            continue
        blocks = block_table[s, : (n + page - 1) // page].long()
        k = k_cache[blocks].reshape(-1, d)[:n]  # [n, d]
        v = v_cache[blocks].reshape(-1, d)[:n]
        qs = q[s].reshape(q_len * group, d)
        w = torch.softmax((qs.float() @ k.float().T) * scale, dim=-1)
        out[s] = (w @ v.float()).to(q.dtype).reshape(q_len, group, d)
    return out


def flash_attention_forward_sdpa(module, query, key, value, attention_mask, dropout=0.0, scaling=None,
                                 **unused):  # H2
    """query [b, Hq, q, d], key/value [b, Hkv, k, d] -> ([b, q, Hq, d], None), causal."""
    group = query.shape[1] // key.shape[1]
    if group > 1:
        key = key.repeat_interleave(group, dim=1)
        value = value.repeat_interleave(group, dim=1)
    out = F.scaled_dot_product_attention(query, key, value, is_causal=query.shape[2] > 1, scale=scaling)
    return out.transpose(1, 2).contiguous(), None


def import_heterocache(src_dir):
    """Imports the reference modules with H1 and H2 in place; returns (cache_utils, llama_model, utils)."""
    # transformers must import its flash-attention integration before the stand-in exists (it
    # probes the package's spec at import).
    import transformers.integrations.flash_attention  # noqa: F401
    import transformers.modeling_flash_attention_utils  # noqa: F401
    if "flash_attn" not in sys.modules:
        fa = types.ModuleType("flash_attn")
        fa.__spec__ = importlib.machinery.ModuleSpec("flash_attn", None)

        def missing(*args, **kwargs):
            raise NotImplementedError("flash_attn stand-in: only flash_attn_with_kvcache is provided")

        fa.flash_attn_func = missing
        fa.flash_attn_varlen_func = missing
        fa.flash_attn_with_kvcache = flash_attn_with_kvcache
        bp = types.ModuleType("flash_attn.bert_padding")
        bp.index_first_axis = bp.pad_input = bp.unpad_input = missing
        fa.bert_padding = bp
        sys.modules["flash_attn"] = fa
        sys.modules["flash_attn.bert_padding"] = bp
    sys.path.insert(0, src_dir)
    import heterocache.cache_utils as cache_utils
    import heterocache.llama_model as llama_model
    import heterocache.utils as utils
    llama_model.flash_attention_forward = flash_attention_forward_sdpa
    llama_model.flash_attn_with_kvcache = flash_attn_with_kvcache
    return cache_utils, llama_model, utils


def config_rope_theta(config):  # H4
    if not hasattr(config, "rope_theta"):
        config.rope_theta = config.rope_parameters["rope_theta"]


@contextlib.contextmanager
def cpu_only():  # H3
    """Inside: device="cuda" becomes "cpu" for torch.arange, and pin_memory=True is dropped."""
    arange, empty = torch.arange, torch.empty

    def arange_cpu(*args, **kwargs):
        if str(kwargs.get("device", "")).startswith("cuda"):
            kwargs["device"] = "cpu"
        return arange(*args, **kwargs)

    def empty_unpinned(*args, **kwargs):
        kwargs.pop("pin_memory", None)
        return empty(*args, **kwargs)

    torch.arange, torch.empty = arange_cpu, empty_unpinned
    try:
        yield
    finally:
        torch.arange, torch.empty = arange, empty
