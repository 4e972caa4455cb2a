// engine/attn_tap.cpp — see attn_tap.h.
#include "engine/attn_tap.h"

#include <algorithm>
#include <climits>

#include "backend/cpu/scores.h"

namespace hkv {

Status AttnTap::observe(int32_t il, bool decode, int32_t n_past, const KvStore& kv, ThreadPool& pool,
                        const AttnParams& ap, const float* q, const int32_t* qpos, int32_t n_tok) {
    if (n_tok <= 0) return Status();
    const int32_t nh = ap.n_head_kv;
    heads_.resize(size_t(nh));
    n_live_.resize(size_t(nh));
    int32_t n_slot = 0;
    for (int32_t ih = 0; ih < nh; ++ih) {
        heads_[size_t(ih)] = kv.view(il, ih);
        n_live_[size_t(ih)] = heads_[size_t(ih)].n_slot;
        n_slot = std::max(n_slot, n_live_[size_t(ih)]);
    }
    const size_t stride = size_t(std::max(n_slot, 1));
    attn_.assign(size_t(nh) * stride, 0.0f);
    pos_.assign(size_t(nh) * stride, INT_MAX);
    // the last query only: rows [n_tok - 1, n_tok); summed over the group, then averaged
    attn_scores(pool, ap, q, qpos, n_tok, n_tok - 1, heads_.data(), attn_.data(), int64_t(stride), false);
    const float inv_group = float(nh) / float(ap.n_head);
    for (int32_t ih = 0; ih < nh; ++ih) {
        float* row = attn_.data() + size_t(ih) * stride;
        for (int32_t s = 0; s < n_live_[size_t(ih)]; ++s) row[s] *= inv_group;
        heads_[size_t(ih)].pos.copy(0, size_t(n_live_[size_t(ih)]), pos_.data() + size_t(ih) * stride);
    }
    AttnObservation ob;
    ob.il = il;
    ob.n_past = n_past;
    ob.decode = decode;
    ob.n_head_kv = nh;
    ob.n_slot = int32_t(stride);
    ob.n_live = n_live_;
    ob.pos = pos_;
    ob.attn = attn_;
    return fn_(ob);
}

}  // namespace hkv
