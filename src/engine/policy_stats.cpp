// engine/policy_stats.cpp — see policy_stats.h.
#include "engine/policy_stats.h"

#include <algorithm>
#include <vector>

#include "backend/cpu/scores.h"
#include "core/assert.h"

namespace hkv {
namespace {

// kAttention, kAttentionSum: the attention mass of the step's last n_query queries (all when 0),
// in one pass from the kernel's log-sum-exp when asked for and available, else in two; the heads
// whose sums the kernel took itself (in.colsums) are copied from those instead.
void attention_mass(const StatRequest& r, const StatStep& in, float* values, float*) {
    const int64_t t_begin = stat_first_query(r, in.n_tok);
    if (r.from_lse && in.lse && in.colsums && in.colsums->t_begin == t_begin) {
        const AttnColSums& cs = *in.colsums;
        const int32_t nh = in.ap->n_head_kv;
        std::vector<AttnKvHead> rest(in.heads, in.heads + nh);  // [n_head_kv] the heads left to attn_colsums
        bool any_rest = false;
        for (int32_t ih = 0; ih < nh; ++ih) {
            if (!cs.done[ih]) {
                any_rest = any_rest || rest[size_t(ih)].n_slot > 0;
                continue;
            }
            std::copy_n(cs.sums + ih * cs.stride, in.heads[ih].n_slot, values + ih * in.stride);
            rest[size_t(ih)].n_slot = 0;  // no work unit in attn_colsums
        }
        if (any_rest) {
            attn_colsums(*in.pool, *in.ap, in.q, in.qpos, in.n_tok, t_begin, in.lse, rest.data(), values, in.stride);
        }
    } else if (r.from_lse && in.lse) {
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
