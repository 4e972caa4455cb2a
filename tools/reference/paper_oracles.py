"""The papers' (or their official code's) selection rules, written here from their definitions
(../shared/docs/methods.md §4) and applied to Hugging Face's own attention weights, for the methods
where kvpress implements another reading (or nothing): which one heterokv should match.

Each oracle gets one layer's prefill attention `attn` [Hq, L, L] (causal softmax rows, eager
attention), the layer index and the model's shape, and returns the positions each KV head keeps
([Hkv] lists, ascending). GQA: a KV head's scores are the sum over its query heads (the group mean
up to a factor, as the official GQA variants and kvpress use).

- h2o (Zhang et al. 2023, the paper's definition): a token's score is the attention it received
  from every prompt query (causal column sums); keep the recent `window` tokens (budget/2 by
  default, the paper's equal heavy/recent split), the first `sinks`, and the highest scores.
- pyramidkv (Cai et al. 2024; KVCache-Factory's PyramidKVCluster, integer arithmetic as there):
  min = (B - w) // beta, max = 2 (B - w) - min (clipped to L - w, min recomputed),
  step = (max - min) // (N - 1), layer l selects max - l * step + its window; when
  L < 2 (B - w) it falls back to uniform SnapKV; SnapKV scores (window queries' attention summed,
  pooled).
- adakv (Feng et al.; FFY0/AdaKV AdaptiveSnapKVCluster): base = B - w, floor = int(base * alpha);
  the layer's global top H * base pooled window scores give each head c_h picks; head h keeps its
  top round(c_h (1 - alpha) + floor) + the window.
- chunkkv (Liu et al. 2025, Algorithm 1): the non-window prefix [0, L - w) in chunks of c; a
  chunk's score is the mean of its tokens' SnapKV scores summed over the layer's heads; the layer
  keeps the floor((B - w) / c) best chunks (every head the same) + the window.
"""
import torch
import torch.nn.functional as F


def group_sum(x, n_head_kv):
    """[Hq, ...] -> [Hkv, ...] summed over each KV head's query heads."""
    return x.reshape(n_head_kv, x.shape[0] // n_head_kv, *x.shape[1:]).sum(1)


def pool(scores, kernel, kind):
    """scores [H, n] pooled along n (stride 1, padding kernel // 2; avg counts the padding)."""
    if kernel <= 1:
        return scores
    if kind == "max":
        return F.max_pool1d(scores.unsqueeze(1), kernel, stride=1, padding=kernel // 2).squeeze(1)
    return F.avg_pool1d(scores.unsqueeze(1), kernel, stride=1, padding=kernel // 2).squeeze(1)


def topk_sorted(scores, k):
    """Indices of the k largest (ties to the lower index), ascending."""
    if k <= 0:
        return []
    order = sorted(range(scores.shape[0]), key=lambda i: (-float(scores[i]), i))
    return sorted(order[:k])


def snap_scores(attn, n_head_kv, w, kernel, kind):
    """Pooled SnapKV scores of the non-window prefix per KV head: [Hkv, L - w]."""
    L = attn.shape[-1]
    s = attn[:, L - w:, : L - w].double().sum(1)  # [Hq, L - w]
    return pool(group_sum(s, n_head_kv), kernel, kind)


def h2o(attn, il, n_layer, n_head_kv, opts):
    b = int(opts["budget"])
    w = int(opts.get("window", b // 2))
    s = int(opts.get("sinks", 0))
    L = attn.shape[-1]
    if L <= b:
        return [list(range(L))] * n_head_kv
    col = group_sum(attn.double().sum(1), n_head_kv)  # [Hkv, L]
    out = []
    for h in range(n_head_kv):
        heavy = [p + s for p in topk_sorted(col[h, s: L - w], b - w - s)]
        out.append(list(range(s)) + heavy + list(range(L - w, L)))
    return out


def pyramidkv(attn, il, n_layer, n_head_kv, opts):
    b = int(opts["budget"])
    w = int(opts.get("window", 32))
    beta = int(float(opts.get("beta", 20)))
    L = attn.shape[-1]
    if L < b:
        return [list(range(L))] * n_head_kv
    sc = snap_scores(attn, n_head_kv, w, int(opts.get("kernel", 7)), opts.get("pool", "max"))
    if L < (b - w) * 2:
        cap = b - w
    else:
        min_num = (b - w) // beta
        max_num = (b - w) * 2 - min_num
        if max_num >= L - w:
            max_num = L - w
            min_num = (b - w) * 2 - max_num
        steps = (max_num - min_num) // (n_layer - 1)
        cap = max_num - il * steps
    return [topk_sorted(sc[h], cap) + list(range(L - w, L)) for h in range(n_head_kv)]


def adakv(attn, il, n_layer, n_head_kv, opts):
    b = int(opts["budget"])
    w = int(opts.get("window", 32))
    alpha = float(opts.get("alpha", 0.2))
    L = attn.shape[-1]
    base = b - w
    if base > L - w:
        return [list(range(L))] * n_head_kv
    sc = snap_scores(attn, n_head_kv, w, int(opts.get("kernel", 7)), opts.get("pool", "max"))
    flat = [(-float(sc[h, i]), h, i) for h in range(n_head_kv) for i in range(L - w)]
    flat.sort()
    counts = [0] * n_head_kv
    for _, h, _ in flat[: n_head_kv * base]:
        counts[h] += 1
    floor = int(base * alpha)
    caps = [int(torch.round(torch.tensor(c * (1 - alpha) + floor)).item()) for c in counts]
    return [topk_sorted(sc[h], caps[h]) + list(range(L - w, L)) for h in range(n_head_kv)]


def chunkkv(attn, il, n_layer, n_head_kv, opts):
    b = int(opts["budget"])
    w = int(opts.get("window", 32))
    c = int(opts.get("chunk", 10))
    L = attn.shape[-1]
    if L <= b:
        return [list(range(L))] * n_head_kv
    tok = snap_scores(attn, n_head_kv, w, int(opts.get("kernel", 7)), opts.get("pool", "max")).sum(0)  # [L - w]
    prefix = L - w
    chunks = [(b0, min(prefix, b0 + c)) for b0 in range(0, prefix, c)]
    score = torch.tensor([float(tok[b0:e].mean()) for b0, e in chunks])
    best = topk_sorted(score, (b - w) // c)
    keep = [p for i in best for p in range(*chunks[i])] + list(range(prefix, L))
    return [keep] * n_head_kv


ORACLES = {"h2o": h2o, "pyramidkv": pyramidkv, "adakv": adakv, "chunkkv": chunkkv}
