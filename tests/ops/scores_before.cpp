// tests/ops/scores_before.cpp — see scores_before.h.
#include "scores_before.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/cpu/scores.h"
#include "core/vec.h"

namespace hkv::before {

// keys [n_slot, head_dim] f32 of head h
namespace {

std::vector<float> f32_keys(const AttnParams& p, const AttnKvHead& h) {
    std::vector<float> keys(size_t(h.n_slot) * size_t(p.head_dim));
    for (int64_t s = 0; s < h.n_slot; ++s) kv_read_row(h.k_type, h.k_pages, p.page_size, p.head_dim, s, keys.data() + s * p.head_dim);
    return keys;
}

}  // namespace

void attn_scores(const AttnParams& p, const float* q, const int32_t* qpos, int64_t n_tok, int64_t t_begin,
                        const AttnKvHead* heads, float* out, int64_t stride) {
    const int32_t group = p.n_head / p.n_head_kv, hd = p.head_dim;
    for (int32_t ih = 0; ih < p.n_head_kv; ++ih) {
        const AttnKvHead& h = heads[ih];
        float* o = out + ih * stride;
        std::fill(o, o + h.n_slot, 0.0f);
        const std::vector<float> keys = f32_keys(p, h);
        std::vector<float> sc(size_t(h.n_slot));
        for (int64_t t = t_begin; t < n_tok; ++t) {
            for (int32_t g = 0; g < group; ++g) {
                const float* qr = q + (t * p.n_head + ih * group + g) * hd;
                float mx = -INFINITY;
                for (int64_t s = 0; s < h.n_slot; ++s) {
                    sc[size_t(s)] = attn_visible(p, h.pos[s], qpos[t]) ? attn_logit(p, dot_f32(qr, keys.data() + s * hd, hd)) : -INFINITY;
                    mx = std::max(mx, sc[size_t(s)]);
                }
                if (mx == -INFINITY) continue;
                double sum = 0.0;
                for (int64_t s = 0; s < h.n_slot; ++s) {
                    sc[size_t(s)] = sc[size_t(s)] == -INFINITY ? 0.0f : std::exp(sc[size_t(s)] - mx);
                    sum += sc[size_t(s)];
                }
                const float inv = float(1.0 / sum);
                for (int64_t s = 0; s < h.n_slot; ++s) o[s] += sc[size_t(s)] * inv;
            }
        }
    }
}

void attn_colsums(const AttnParams& p, const float* q, const int32_t* qpos, int64_t n_tok, int64_t t_begin,
                         const float* lse, const AttnKvHead* heads, float* out, int64_t stride) {
    const int32_t group = p.n_head / p.n_head_kv, hd = p.head_dim;
    for (int32_t ih = 0; ih < p.n_head_kv; ++ih) {
        const AttnKvHead& h = heads[ih];
        float* o = out + ih * stride;
        const std::vector<float> keys = f32_keys(p, h);
        std::vector<float> sc(size_t(h.n_slot));
        for (int64_t t = t_begin; t < n_tok; ++t) {
            for (int32_t g = 0; g < group; ++g) {
                const int64_t row = t * p.n_head + ih * group + g;
                if (lse[row] == -INFINITY) continue;
                for (int64_t s = 0; s < h.n_slot; ++s) {
                    sc[size_t(s)] = attn_visible(p, h.pos[s], qpos[t]) ? attn_logit(p, dot_f32(q + row * hd, keys.data() + s * hd, hd)) : -INFINITY;
                }
                exp_shifted(sc.data(), h.n_slot, lse[row]);
                for (int64_t s = 0; s < h.n_slot; ++s) o[s] += sc[size_t(s)];
            }
        }
    }
}

void attn_band_recent(const AttnParams& p, const float* q, const int32_t* qpos, int64_t n_tok, int64_t t_begin,
                             int32_t t_stride, int32_t band, bool full_norm, const AttnKvHead* heads, float* recent,
                             float* count, int64_t stride) {
    const int32_t group = p.n_head / p.n_head_kv, hd = p.head_dim;
    for (int32_t ih = 0; ih < p.n_head_kv; ++ih) {
        const AttnKvHead& h = heads[ih];
        const std::vector<float> keys = f32_keys(p, h);
        std::vector<float> sc(size_t(h.n_slot));
        for (int64_t t = n_tok - 1; t >= t_begin; t -= std::max<int32_t>(1, t_stride)) {
            // by linear scans: visible [s_vis, s_end), band [s_band, s_end) (positions ascend)
            int64_t s_end = 0, s_vis = 0, s_band = 0;
            while (s_end < h.n_slot && h.pos[s_end] <= qpos[t]) ++s_end;
            while (p.window > 0 && s_vis < s_end && int64_t(qpos[t]) - h.pos[s_vis] >= p.window) ++s_vis;
            for (s_band = s_vis; s_band < s_end && h.pos[s_band] < qpos[t] - band; ++s_band) {}
            if (s_band >= s_end) continue;
            const int64_t s_norm = full_norm ? s_vis : s_band;
            for (int32_t g = 0; g < group; ++g) {
                const float* qr = q + (t * p.n_head + ih * group + g) * hd;
                float mx = -INFINITY;
                for (int64_t s = s_norm; s < s_end; ++s) {
                    sc[size_t(s)] = attn_logit(p, dot_f32(qr, keys.data() + s * hd, hd));
                    mx = std::max(mx, sc[size_t(s)]);
                }
                double z = 0.0;
                for (int64_t s = s_norm; s < s_end; ++s) z += std::exp(double(sc[size_t(s)] - mx));
                double suffix = 0.0;
                for (int64_t s = s_end - 1; s >= s_band; --s) {
                    suffix += std::exp(double(sc[size_t(s)] - mx));
                    if (h.pos[s] >= qpos[t]) continue;
                    recent[ih * stride + s] += float(suffix / z);
                    count[ih * stride + s] += 1.0f;
                }
            }
        }
    }
}

}  // namespace hkv::before
