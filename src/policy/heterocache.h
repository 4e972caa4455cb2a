// policy/heterocache.h — HeteroCache's runtime (../shared/docs/methods.md §1.4, §1.7): the pieces of
// heterocache.cpp that tests exercise directly, and a structural taxonomy for models that have not
// been calibrated yet (tests and smoke runs; `heterokv calibrate` makes the real ones).
#pragma once

#include <cstdint>
#include <vector>

#include "heterokv/policy.h"
#include "policy/heterocache_taxonomy.h"

namespace hkv {

// Pools each of a KV head's group rows of probabilities (avg, kernel `pool`, zero padding counted,
// as PyTorch's avg_pool1d) and takes the max over the group: probs [group, n] -> out [n].
void hc_pool_max(const float* probs, int32_t group, int32_t n, int32_t pool, float* out, std::vector<float>& tmp);

// Last-row scores of KV head ih, as the reference scores at prefill and in the drift monitor: for
// each query head g of the group, p_g = softmax(scale * q_g · K^T) over the head's first n slots
// (read in place, KvLayerView::key_probs), then hc_pool_max. q: [group, head_dim]; out: [n];
// probs, tmp: scratch.
void hc_head_scores(const KvLayerView& kv, int32_t ih, const float* q, int32_t group, int32_t n, float scale,
                    int32_t pool, float* out, std::vector<float>& probs, std::vector<float>& tmp);

// Scratch of hc_window_scores.
struct HcScratch {
    std::vector<float> q, probs, sums, tmp;
    std::vector<int32_t> pos;  // [n] a 16-bit position lane widened
};

// Observation-window scores of KV head ih over its first n live slots: the group's last m queries
// of the step (v.q), each query's softmax over the slots at or before its position (v.pos), summed
// over the m queries, then hc_pool_max. out: [n].
void hc_window_scores(const LayerView& v, int32_t ih, int32_t m, int32_t n, int32_t pool, float* out, HcScratch& sc);

// The slots a compressed head keeps at a cut, in position order: the last min(recent, cap) of its
// n slots (the observation window, as SnapKV keeps it) and the top cap - those of the older slots
// by score (ties: the earlier slot). score: [n]; out: [min(cap, n)].
void hc_keep(const float* score, int32_t n, int32_t cap, int32_t recent, int32_t* out);

// hc_keep(score, n, cap, recent) chosen among candidates: cand [n_cand] = top_k_indices(score, n,
// n_cand) (ascending) with n_cand >= min(cap, n). The same rows as hc_keep (ties: the earlier slot)
// at the cost of a selection over n_cand instead of n, so one selection over the n slots serves
// every size (the drift monitor's C_W and its satellites). cs, idx: scratch.
void hc_keep_among(const float* score, int32_t n, const int32_t* cand, int32_t n_cand, int32_t cap, int32_t recent,
                   int32_t* out, std::vector<float>& cs, std::vector<int32_t>& idx);

// |set ∩ ref| / base, with ref given as a mask over positions [0, n) (1 = in the reference set).
double hc_overlap(const int32_t* set, int32_t n_set, const std::vector<uint8_t>& ref_mask, int64_t base);

// Lower median (torch.median): the ((n - 1) / 2)-th smallest of v. v is reordered. n >= 1.
double hc_lower_median(std::vector<double>& v);

// layers=pyramid: the compressed heads' (anchors' and satellites') caps `cap` [n_layer * n_head_kv]
// re-spread over the layers on PyramidKV's linear schedule (policy/pyramidkv.cpp), the same total.
// Layer l's heads are scaled by f_l = hi - (hi - lo) * l / (n_layer - 1), lo = hi / (2 beta - 1)
// (PyramidKV's min = V / beta, max = 2V - min), with sum_h cap_h f_l = sum_h cap_h. When a head
// would then exceed n_prompt (or fall below 1 slot), hi is lowered and lo recomputed from the same
// total, so the schedule stays linear and only flatter, as PyramidKV clips at the prompt. The
// products are rounded by largest remainder to the exact total; every compressed head keeps
// between 1 and n_prompt slots. Full and local heads are returned unchanged; so is everything when
// fewer than two layers hold compressed heads or beta = 1 (flat). Requires cap_h <= n_prompt.
std::vector<int64_t> hc_pyramid_caps(const Taxonomy& t, const std::vector<int64_t>& cap, int64_t n_prompt, double beta);

// A taxonomy of the model's shape without calibration: in every layer KV head 0 is a pivot; with
// n_head_kv >= 5 its satellites are heads 1 .. n_head_kv - 3, head n_head_kv - 2 is an anchor and
// head n_head_kv - 1 volatile; with fewer heads there is no volatile head (4 heads: pivot 0,
// satellites 1-2, anchor 3; 2 heads: pivot 0, satellite 1). Compressed heads get budget weights alternating 0.5 / 1.5 (mean 1) so weighted and
// uniform budgets differ. Requires n_head_kv >= 2.
Taxonomy taxonomy_structural(int32_t n_layer, int32_t n_head_kv);

}  // namespace hkv
