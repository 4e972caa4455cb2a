// engine/policy_stats.h — the statistics a policy can request (heterokv/policy.h StatKind), as one
// table: each row says how the statistic is computed from a step's attention inputs and whether it
// lives in the store's per-slot lane (accumulated at every step it names, moving with compaction).
// The runtime (policy_runtime.cpp) serves every request through this table; a new statistic is a
// new row here, not a new branch in the runtime.
#pragma once

#include <algorithm>
#include <cstdint>

#include "backend/cpu/ops.h"
#include "core/thread_pool.h"
#include "heterokv/policy.h"

namespace hkv {

// The inputs of one layer's step, as the attention saw them.
struct StatStep {
    ThreadPool* pool = nullptr;
    const AttnParams* ap = nullptr;
    const float* q = nullptr;        // [n_tok, n_head, head_dim] post-RoPE
    const int32_t* qpos = nullptr;   // [n_tok]
    int32_t n_tok = 0;
    const float* lse = nullptr;      // [n_tok, n_head] the attention's row log-sum-exp, or null
    const AttnKvHead* heads = nullptr;  // [n_head_kv] the layer's slots
    // kAttention(Sum) from_lse: the column sums the attention kernel took over the same slots and
    // rows (ops.h AttnColSums; the heads with done = 1), or null
    const AttnColSums* colsums = nullptr;
    int64_t stride = 0;              // row stride of the outputs (>= every head's slot count)
};

// Computes request r into values (and counts, for kinds that have them), both [n_head_kv, stride]
// and zeroed by the caller.
using StatFn = void (*)(const StatRequest& r, const StatStep& in, float* values, float* counts);

struct StatEntry {
    StatKind kind;
    bool lane;     // accumulated into the store's score lane (KvStoreConfig::score_lane)
    bool counts;   // produces a counts array beside the values
    StatFn compute;
};

// The table's row for a kind.
const StatEntry& stat_entry(StatKind kind);

// The first of a step's n_tok queries that a kAttention(Sum) request sums over (its last n_query; all when 0).
inline int64_t stat_first_query(const StatRequest& r, int64_t n_tok) {
    return r.n_query > 0 ? std::max<int64_t>(0, n_tok - r.n_query) : 0;
}

// Whether r reads the attention kernel's row log-sum-exp at a step of this kind: when the request
// asks for it (kAttention(Sum) from_lse), and always for kBand normalised over the whole row (its
// denominator is the row's log-sum-exp; the same values up to rounding, at the band's cost instead
// of the row's).
inline bool stat_wants_lse(const StatRequest& r, PolicyStep step) {
    return (r.from_lse || (r.kind == StatKind::kBand && r.full_norm)) && (r.steps & step);
}

}  // namespace hkv
