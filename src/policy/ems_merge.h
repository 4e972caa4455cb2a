// policy/ems_merge.h — EMS's evict-then-merge step for all KV heads of a layer at once, with the
// zero class (docs: ../shared/docs/methods.md section 3.3 (2), 3.4 steps 4-6).
//
// Every head gets classes 0..C: class c >= 1 is the head's c-th centre (a retained slot), class 0
// is the dummy "zero" centre. Each to-be-merged (TBM) slot goes to its most similar centre (cosine
// of keys) when the similarity reaches the head's threshold theta[h], otherwise to class 0; then
// one scatter-add over fixed-shape arrays [n_head, n_slot] builds every class's weighted sums and
// class 0 is discarded. Eviction and merging are the same operation, and heads with different
// numbers of centres / merges need no per-head control flow (padding: centre slots that a head
// does not have get similarity -inf, padding slots weight 0 and class 0).
//
// Merge rule for centre r and the slots t assigned to it (centre included, weights w = s_GL, or
// attention-consistent weights, see EmsBatch::qscale):
//   V_r' = sum_t w_t V_t / sum_t w_t
//   K_r' = n_r * normalize(sum_t w_t khat_t),  khat = K / |K|,
//   n_r  = |K_r| (norm=keep) or sum_t w_t |K_t| / sum_t w_t (norm=mean)
// Unit directions are averaged and the norm restored, so merging does not shrink keys (which
// would flatten the attention logits).
//
// ems_merge_batched is the zero-class pass; ems_merge_per_head is the same computation written as
// a loop over heads with ragged per-head centre and TBM lists and branches, kept only to measure
// the batched pass against it (bench/micro) and to check that both give bit-identical results
// (tests/unit/test_ems.cpp): sums are taken in the same (ascending slot) order with the same
// arithmetic.
#pragma once

#include <cstdint>
#include <vector>

namespace hkv {

// Role of a slot in the pass.
inline constexpr int32_t kEmsFixed = -1;  // sink, window or padding: kept as is, never merged
inline constexpr int32_t kEmsTbm = 0;     // to be merged or evicted
                                          // c >= 1: the slot is centre c of its head

enum class EmsNorm { kKeep, kMean };

// One layer's arrays. The caller sizes and fills the inputs (resize() then write); the pass fills
// the outputs.
struct EmsBatch {
    int32_t n_head = 0, n_slot = 0, head_dim = 0, n_center = 0;  // classes are 0..n_center
    // ---- inputs ----
    std::vector<float> khat;           // [n_head, n_slot, head_dim] unit key directions (0 rows: padding)
    std::vector<float> knorm;          // [n_head, n_slot] |K|
    std::vector<float> v;              // [n_head, n_slot, head_dim] values
    std::vector<float> w;              // [n_head, n_slot] merge weight (s_GL; 0 for padding)
    std::vector<float> lane;           // [n_head, n_slot] score lane (summed into the centres)
    std::vector<int32_t> role;         // [n_head, n_slot] kEmsFixed, kEmsTbm or centre id c >= 1
    std::vector<int32_t> center_slot;  // [n_head, n_center + 1] slot of centre c; -1 = none (col 0 unused)
    // threshold rule: theta[h] = fixed_theta when has_fixed_theta, else the mean over the head's TBM
    // slots of their best similarity (D2O-style); evict_only / merge_all override it (+inf / -inf)
    bool has_fixed_theta = false, evict_only = false, merge_all = false;
    float fixed_theta = 0.0f;
    EmsNorm norm = EmsNorm::kKeep;
    // merge weights (weights=attn): when non-empty, [n_head] |q| / sqrt(head_dim) of the head's
    // recent queries; a slot t merged into centre r then weighs w_r * exp(qscale * (|K_t| cos(t, r)
    // - |K_r|)), the attention t would get relative to r from a query along r's key, and the
    // centre w_r (shifted per class by the largest exponent, so nothing overflows). Empty: w as given.
    std::vector<float> qscale;
    // ---- outputs ----
    std::vector<float> best;           // [n_head, n_slot] best similarity to a centre (-inf: none)
    std::vector<int32_t> arg;          // [n_head, n_slot] its centre id
    std::vector<float> theta;          // [n_head]
    std::vector<int32_t> cls;          // [n_head, n_slot] class: 0 = zero class (dropped) or fixed
    std::vector<int32_t> count;        // [n_head, n_center + 1] slots per class (centre included)
    std::vector<float> acc_w, acc_n, acc_lane;  // [n_head, n_center + 1]
    std::vector<float> wm;             // [n_head, n_slot] weight each slot was merged with
    std::vector<float> acc_k, acc_v;   // [n_head, n_center + 1, head_dim]
    std::vector<float> out_k, out_v;   // [n_head, n_center + 1, head_dim] merged centre rows

    // Sizes every array for the shape and fills inputs with neutral values (role kEmsFixed,
    // center_slot -1, zeros).
    void resize(int32_t heads, int32_t slots, int32_t dim, int32_t centers);
};

// The zero-class pass over every head: similarity (fixed-shape [n_head, n_slot, n_center]),
// thresholds, classes, one scatter-add, finalisation.
void ems_merge_batched(EmsBatch& b);
// The same results, computed head by head over ragged lists with branches (benchmark / test only).
void ems_merge_per_head(EmsBatch& b);

}  // namespace hkv
