// engine/policy_stats.cpp — see policy_stats.h.
#include "engine/policy_stats.h"

#include <algorithm>

#include "backend/cpu/scores.h"
#include "core/assert.h"

namespace hkv {
namespace {

// kAttention, kAttentionSum: the attention mass of the step's last n_query queries (all when 0),
// in one pass from the kernel's log-sum-exp when asked for and available, else in two.
void attention_mass(const StatRequest& r, const StatStep& in, float* values, float*) {
    const int64_t t_begin = r.n_query > 0 ? std::max<int64_t>(0, in.n_tok - r.n_query) : 0;
    if (r.from_lse && in.lse) {
        attn_colsums(*in.pool, *in.ap, in.q, in.qpos, in.n_tok, t_begin, in.lse, in.heads, values, in.stride);
    } else {
        attn_scores(*in.pool, *in.ap, in.q, in.qpos, in.n_tok, t_begin, in.heads, values, in.stride, false);
    }
}

// kBand: DD-Select's band statistics over the step's queries; with full_norm, each row's
// normaliser from the kernel's log-sum-exp when the step has it (stat_wants_lse), so only the
// band's dots are taken instead of the whole visible row's.
void band(const StatRequest& r, const StatStep& in, float* values, float* counts) {
    attn_band_recent(*in.pool, *in.ap, in.q, in.qpos, in.n_tok, 0, r.stride, r.band, r.full_norm, in.heads, values,
                     counts, in.stride, r.full_norm ? in.lse : nullptr);
}

const StatEntry kStats[] = {
    {StatKind::kAttention, false, false, attention_mass},
    {StatKind::kAttentionSum, true, false, attention_mass},
    {StatKind::kBand, false, true, band},
};

}  // namespace

const StatEntry& stat_entry(StatKind kind) {
    for (const StatEntry& e : kStats) {
        if (e.kind == kind) return e;
    }
    HKV_ASSERT(false, "statistic %d has no row in the table", int(kind));
    return kStats[0];
}

}  // namespace hkv
