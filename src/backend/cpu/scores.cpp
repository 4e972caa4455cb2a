// backend/cpu/scores.cpp — per-slot attention mass for policies (see scores.h).
#include "backend/cpu/scores.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/attn_kernels.h"
#include "backend/cpu/kv_hq4.h"
#include "backend/cpu/quant.h"
#include "core/cpu.h"
#include "core/fp16.h"
#include "core/vec.h"

namespace hkv {

void kv_read_row(DType kv_type, const void* const* pages, int32_t page_size, int32_t head_dim, int64_t s,
                 float* out) {
    const uint8_t* row = static_cast<const uint8_t*>(pages[s / page_size]) +
                         size_t(s % page_size) * dtype_row_size(kv_type, head_dim);
    if (kv_type == DType::kQ8_0 || kv_type == DType::kQ4_0) {  // blocks of 32: dequantized in place
        quant_kernels().dequantize_row(kv_type, row, out, head_dim);
    } else if (kv_type == DType::kHQ4) {  // the blocks' values un-rotated
        hq4_dequantize_row(row, out, head_dim);
    } else if (kv_type == DType::kF32) {
        for (int32_t d = 0; d < head_dim; ++d) out[d] = reinterpret_cast<const float*>(row)[d];
    } else if (kv_type == DType::kF16) {
        const uint16_t* h = reinterpret_cast<const uint16_t*>(row);
        int32_t d = 0;
        for (; d + 8 <= head_dim; d += 8) {
            _mm256_storeu_ps(out + d, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + d))));
        }
        for (; d < head_dim; ++d) out[d] = fp16_to_fp32(h[d]);
    } else {
        const uint16_t* h = reinterpret_cast<const uint16_t*>(row);
        for (int32_t d = 0; d < head_dim; ++d) out[d] = bf16_to_fp32(h[d]);
    }
}

namespace {

// qk_dots over the slots [s_begin, s_end) (out columns of the same indices).
void qk_dots_range(DType kv_type, const void* const* k_pages, int32_t page_size, int32_t head_dim, const float* q,
                   int32_t n_row, int32_t s_begin, int32_t s_end, float* out, int64_t stride) {
    const int kind = kv_type == DType::kF16    ? 1
                     : kv_type == DType::kQ8_0 ? 3
                     : kv_type == DType::kQ4_0 ? 4
                     : kv_type == DType::kHQ4  ? 5
                                               : 0;
    if (kind != 0 && head_dim % 16 == 0 && cpu_isa() == Isa::kAvx512) {
        if (kind == 5) {  // hq4 keys hold R k: dot them with R q (R orthogonal, kv_hq4.h)
            thread_local std::vector<float> qr;  // [n_row, head_dim]
            qr.assign(q, q + size_t(n_row) * size_t(head_dim));
            for (int32_t r = 0; r < n_row; ++r) hq4_rotate(qr.data() + size_t(r) * size_t(head_dim), head_dim);
            q = qr.data();
        }
        constexpr int kTile = 64;
        const void* krows[kTile];  // [tile] -> [head_dim] of kv_type
        const size_t row_bytes = dtype_row_size(kv_type, head_dim);
        for (int32_t s0 = s_begin; s0 < s_end; s0 += kTile) {
            const int nt = std::min(kTile, s_end - s0);
            for (int j = 0; j < nt; ++j) {
                const int32_t s = s0 + j;
                krows[j] = static_cast<const uint8_t*>(k_pages[s / page_size]) + size_t(s % page_size) * row_bytes;
            }
            for (int32_t r = 0; r < n_row; r += 4) {
                attn512::qk(kind, q + size_t(r) * size_t(head_dim), std::min(4, n_row - r), krows, nt, head_dim,
                                out + r * stride + s0, int(stride));
            }
        }
        return;
    }
    thread_local std::vector<float> key;
    key.resize(size_t(head_dim));
    for (int32_t s = s_begin; s < s_end; ++s) {
        kv_read_row(kv_type, k_pages, page_size, head_dim, s, key.data());
        for (int32_t r = 0; r < n_row; ++r) out[r * stride + s] = dot_f32(q + size_t(r) * size_t(head_dim), key.data(), head_dim);
    }
}

}  // namespace

void qk_dots(DType kv_type, const void* const* k_pages, int32_t page_size, int32_t head_dim, const float* q,
             int32_t n_row, int32_t n, float* out, int64_t stride) {
    if (n_row <= 0 || n <= 0) return;
    qk_dots_range(kv_type, k_pages, page_size, head_dim, q, n_row, 0, n, out, stride);
}

void qk_dots(ThreadPool& pool, DType kv_type, const void* const* k_pages, int32_t page_size, int32_t head_dim,
             const float* q, int32_t n_row, int32_t n, float* out, int64_t stride) {
    if (n_row <= 0 || n <= 0) return;
    constexpr int32_t kBlock = 1024;  // slots per work unit
    const int64_t n_blocks = (n + kBlock - 1) / kBlock;
    pool.parallel_for(n_blocks, [&](int64_t b, int64_t e, int) {
        const int32_t s0 = int32_t(b * kBlock), s1 = int32_t(std::min<int64_t>(n, e * kBlock));
        qk_dots_range(kv_type, k_pages, page_size, head_dim, q, n_row, s0, s1, out, stride);
    });
}

void attn_scores(ThreadPool& pool, const AttnParams& p, const float* q, const int32_t* qpos, int64_t n_tok,
                 int64_t t_begin, const AttnKvHead* heads, float* out, int64_t stride, bool accumulate) {
    const int32_t group = p.n_head / p.n_head_kv;
    const int32_t hd = p.head_dim;
    pool.parallel_for(p.n_head_kv, [&](int64_t b, int64_t e, int) {
        // per-thread scratch, reused across calls (this runs every decode step for H2O)
        thread_local std::vector<float> keys, sc;
        for (int64_t ih = b; ih < e; ++ih) {
            const AttnKvHead& h = heads[ih];
            float* o = out + ih * stride;
            if (!accumulate) std::fill(o, o + h.n_slot, 0.0f);
            if (h.n_slot == 0) continue;
            keys.resize(size_t(h.n_slot) * size_t(hd));  // [n_slot, head_dim] f32
            for (int64_t s = 0; s < h.n_slot; ++s) {
                kv_read_row(h.k_type, h.k_pages, p.page_size, hd, s, keys.data() + s * hd);
            }
            sc.resize(size_t(h.n_slot));
            for (int64_t t = t_begin; t < n_tok; ++t) {
                for (int32_t g = 0; g < group; ++g) {
                    const float* qr = q + (t * p.n_head + ih * group + g) * hd;  // [head_dim]
                    float mx = -INFINITY;
                    for (int64_t s = 0; s < h.n_slot; ++s) {
                        if (!attn_visible(p, h.pos[s], qpos[t])) {
                            sc[size_t(s)] = -INFINITY;
                            continue;
                        }
                        sc[size_t(s)] = attn_logit(p, dot_f32(qr, keys.data() + s * hd, hd));
                        mx = std::max(mx, sc[size_t(s)]);
                    }
                    if (mx == -INFINITY) continue;
                    double sum = 0.0;
                    for (int64_t s = 0; s < h.n_slot; ++s) {
                        const float v = sc[size_t(s)] == -INFINITY ? 0.0f : std::exp(sc[size_t(s)] - mx);
                        sc[size_t(s)] = v;
                        sum += v;
                    }
                    const float inv = float(1.0 / sum);
                    for (int64_t s = 0; s < h.n_slot; ++s) o[s] += sc[size_t(s)] * inv;
                }
            }
        }
    });
}

void attn_colsums(ThreadPool& pool, const AttnParams& p, const float* q, const int32_t* qpos, int64_t n_tok,
                  int64_t t_begin, const float* lse, const AttnKvHead* heads, float* out, int64_t stride) {
    const int32_t group = p.n_head / p.n_head_kv;
    const int32_t hd = p.head_dim;
    pool.parallel_for(p.n_head_kv, [&](int64_t b, int64_t e, int) {
        thread_local std::vector<float> keys, sc;  // [n_slot, head_dim] f32, [n_slot]
        for (int64_t ih = b; ih < e; ++ih) {
            const AttnKvHead& h = heads[ih];
            float* o = out + ih * stride;
            if (h.n_slot == 0) continue;
            keys.resize(size_t(h.n_slot) * size_t(hd));
            sc.resize(size_t(h.n_slot));
            for (int64_t s = 0; s < h.n_slot; ++s) {
                kv_read_row(h.k_type, h.k_pages, p.page_size, hd, s, keys.data() + s * hd);
            }
            for (int64_t t = t_begin; t < n_tok; ++t) {
                for (int32_t g = 0; g < group; ++g) {
                    const int64_t row = t * p.n_head + ih * group + g;
                    const float l = lse[row];
                    if (l == -INFINITY) continue;
                    const float* qr = q + row * hd;  // [head_dim]
                    for (int64_t s = 0; s < h.n_slot; ++s) {
                        sc[size_t(s)] = !attn_visible(p, h.pos[s], qpos[t]) ? -INFINITY
                                                                            : attn_logit(p, dot_f32(qr, keys.data() + s * hd, hd));
                    }
                    exp_shifted(sc.data(), h.n_slot, l);  // the probabilities, no pass of its own for the max
                    for (int64_t s = 0; s < h.n_slot; ++s) o[s] += sc[size_t(s)];
                }
            }
        }
    });
}

void attn_band_recent(ThreadPool& pool, const AttnParams& p, const float* q, const int32_t* qpos, int64_t n_tok,
                      int64_t t_begin, int32_t t_stride, int32_t band, bool full_norm, const AttnKvHead* heads,
                      float* recent, float* count, int64_t stride) {
    const int32_t group = p.n_head / p.n_head_kv;
    const int32_t hd = p.head_dim;
    const int64_t step = std::max<int32_t>(1, t_stride);
    if (t_begin >= n_tok) return;
    pool.parallel_for(p.n_head_kv, [&](int64_t b, int64_t e, int) {
        thread_local std::vector<float> keys, sc;
        for (int64_t ih = b; ih < e; ++ih) {
            const AttnKvHead& h = heads[ih];
            float* rec = recent + ih * stride;
            float* cnt = count + ih * stride;
            if (h.n_slot == 0) continue;
            const PosLane::iterator pb = h.pos.begin(), pe = pb + h.n_slot;
            // keys converted once per head: only the slots some sampled query can reach
            const int64_t s_lo = full_norm ? 0
                                           : std::lower_bound(pb, pe, qpos[t_begin] - band) - pb;
            keys.resize(size_t(h.n_slot) * size_t(hd));  // [n_slot, head_dim] f32
            for (int64_t s = s_lo; s < h.n_slot; ++s) {
                kv_read_row(h.k_type, h.k_pages, p.page_size, hd, s, keys.data() + s * hd);
            }
            sc.resize(size_t(h.n_slot));
            for (int64_t t = n_tok - 1; t >= t_begin; t -= step) {
                // visible slots [0, s_end); band slots [s_band, s_end) (positions ascend)
                const PosLane::iterator end = std::upper_bound(pb, pe, qpos[t]);
                const int64_t s_end = end - pb;
                // a sliding window hides the slots before qpos - window + 1
                const int64_t s_vis = p.window > 0 ? std::lower_bound(pb, end, qpos[t] - p.window + 1) - pb : 0;
                const int64_t s_band = std::max<int64_t>(s_vis, std::lower_bound(pb, end, qpos[t] - band) - pb);
                if (s_band >= s_end) continue;
                const int64_t s_norm = full_norm ? s_vis : s_band;
                for (int32_t g = 0; g < group; ++g) {
                    const float* qr = q + (t * p.n_head + ih * group + g) * hd;  // [head_dim]
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
                        if (h.pos[s] >= qpos[t]) continue;  // a slot's future starts after it
                        rec[s] += float(suffix / z);
                        cnt[s] += 1.0f;
                    }
                }
            }
        }
    });
}

}  // namespace hkv
