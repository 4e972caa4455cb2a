// backend/cpu/scores.cpp — per-slot attention mass for policies (see scores.h).
#include "backend/cpu/scores.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <climits>
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

namespace {

// Whether the attention kernel dots f32 queries with these keys as floats (f32, f16, bf16).
bool kv_float_keys(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

constexpr int64_t kKeyBlock = 64;  // slots per block of f32 keys that every row of a tile reads while cached
constexpr int32_t kRowTile = 8;    // query rows whose dots are taken over one sweep of the keys

// sc[r][s] = dot_f32(qrows[r], keys + s * hd) for the rows r < n_rows and the slots s in
// [lo[r], hi[r]) (keys: f32 [n_slot, hd]; sc rows of stride >= n_slot), bit for bit as one
// dot_f32 per (row, slot) (dots_f32): blocks of kKeyBlock slots outer, rows inner, so a block is
// read from cache by every row instead of every row streaming all n_slot keys.
void tile_dots(const float* const* qrows, const int64_t* lo, const int64_t* hi, int32_t n_rows, const float* keys,
               int32_t hd, float* sc, int64_t sc_stride) {
    int64_t s_min = INT64_MAX, s_max = 0;
    for (int32_t r = 0; r < n_rows; ++r) {
        if (lo[r] >= hi[r]) continue;
        s_min = std::min(s_min, lo[r]);
        s_max = std::max(s_max, hi[r]);
    }
    for (int64_t b0 = s_min; b0 < s_max; b0 += kKeyBlock) {
        const int64_t b1 = std::min(s_max, b0 + kKeyBlock);
        for (int32_t r = 0; r < n_rows; ++r) {
            const int64_t s0 = std::max(b0, lo[r]), s1 = std::min(b1, hi[r]);
            if (s0 < s1) dots_f32(qrows[r], keys + s0 * hd, hd, s1 - s0, sc + r * sc_stride + s0);
        }
    }
}

}  // namespace

void attn_scores(ThreadPool& pool, const AttnParams& p, const float* q, const int32_t* qpos, int64_t n_tok,
                 int64_t t_begin, const AttnKvHead* heads, float* out, int64_t stride, bool accumulate) {
    const int32_t group = p.n_head / p.n_head_kv;
    const int32_t hd = p.head_dim;
    pool.parallel_for(p.n_head_kv, [&](int64_t b, int64_t e, int) {
        // per-thread scratch, reused across calls (this runs every decode step for H2O)
        thread_local std::vector<float> keys, sc;  // [n_slot, head_dim] f32, [kRowTile, n_slot]
        for (int64_t ih = b; ih < e; ++ih) {
            const AttnKvHead& h = heads[ih];
            float* o = out + ih * stride;
            if (!accumulate) std::fill(o, o + h.n_slot, 0.0f);
            if (h.n_slot == 0) continue;
            keys.resize(size_t(h.n_slot) * size_t(hd));
            for (int64_t s = 0; s < h.n_slot; ++s) {
                kv_read_row(h.k_type, h.k_pages, p.page_size, hd, s, keys.data() + s * hd);
            }
            sc.resize(size_t(kRowTile) * size_t(h.n_slot));
            // the rows (t, g) in order, kRowTile at a time: their dots over one sweep of the keys,
            // then each row's softmax added to o in the same order as row by row
            const int64_t n_rows = (n_tok - t_begin) * group;
            for (int64_t r0 = 0; r0 < n_rows; r0 += kRowTile) {
                const int32_t nr = int32_t(std::min<int64_t>(kRowTile, n_rows - r0));
                const float* qrows[kRowTile];
                int64_t lo[kRowTile], hi[kRowTile];
                for (int32_t r = 0; r < nr; ++r) {
                    const int64_t t = t_begin + (r0 + r) / group, g = (r0 + r) % group;
                    qrows[r] = q + (t * p.n_head + ih * group + g) * hd;  // [head_dim]
                    lo[r] = 0, hi[r] = h.n_slot;
                }
                tile_dots(qrows, lo, hi, nr, keys.data(), hd, sc.data(), h.n_slot);
                for (int32_t r = 0; r < nr; ++r) {
                    const int64_t t = t_begin + (r0 + r) / group;
                    float* row = sc.data() + size_t(r) * size_t(h.n_slot);
                    float mx = -INFINITY;
                    for (int64_t s = 0; s < h.n_slot; ++s) {
                        if (!attn_visible(p, h.pos[s], qpos[t])) {
                            row[s] = -INFINITY;
                            continue;
                        }
                        row[s] = attn_logit(p, row[s]);
                        mx = std::max(mx, row[s]);
                    }
                    if (mx == -INFINITY) continue;
                    double sum = 0.0;
                    for (int64_t s = 0; s < h.n_slot; ++s) {
                        const float v = row[s] == -INFINITY ? 0.0f : std::exp(row[s] - mx);
                        row[s] = v;
                        sum += v;
                    }
                    const float inv = float(1.0 / sum);
                    for (int64_t s = 0; s < h.n_slot; ++s) o[s] += row[s] * inv;
                }
            }
        }
    });
}

void attn_colsums(ThreadPool& pool, const AttnParams& p, const float* q, const int32_t* qpos, int64_t n_tok,
                  int64_t t_begin, const float* lse, const AttnKvHead* heads, float* out, int64_t stride) {
    const int32_t group = p.n_head / p.n_head_kv;
    const int32_t hd = p.head_dim;
    // Work units: (KV head, block of kColBlock slots). A unit owns its slots' sums and adds the rows
    // (t, g) in order, so a slot's sum is the same whatever thread or block it falls in.
    constexpr int64_t kColBlock = 128;
    std::vector<int64_t> first(size_t(p.n_head_kv) + 1, 0);  // [n_head_kv + 1] first unit of each head
    for (int32_t ih = 0; ih < p.n_head_kv; ++ih) {
        first[size_t(ih) + 1] = first[size_t(ih)] + (heads[ih].n_slot + kColBlock - 1) / kColBlock;
    }
    pool.for_each(first.back(), [&](int64_t u, int) {
        thread_local std::vector<float> keys, sc;  // [kColBlock, head_dim] f32, [kColBlock]
        const int32_t ih = int32_t(std::upper_bound(first.begin(), first.end(), u) - first.begin()) - 1;
        const AttnKvHead& h = heads[ih];
        const int64_t s0 = (u - first[size_t(ih)]) * kColBlock, nb = std::min<int64_t>(kColBlock, h.n_slot - s0);
        float* o = out + ih * stride + s0;
        int32_t pos_buf[kColBlock];  // a 16-bit lane's block widened; an int32 lane is read in place
        const int32_t* pos = h.pos.rows(size_t(s0), size_t(nb), pos_buf);
        keys.resize(size_t(kColBlock) * size_t(hd));
        sc.resize(size_t(kColBlock));
        int32_t pos_min = INT32_MAX, pos_max = INT32_MIN;
        for (int64_t j = 0; j < nb; ++j) {
            kv_read_row(h.k_type, h.k_pages, p.page_size, hd, s0 + j, keys.data() + j * hd);
            pos_min = std::min(pos_min, pos[j]);
            pos_max = std::max(pos_max, pos[j]);
        }
        for (int64_t t = t_begin; t < n_tok; ++t) {
            if (qpos[t] < pos_min) continue;  // every slot of the block is in its future: it adds zeros
            // the whole block visible and no soft cap: the logits are scale * dot, in a loop that vectorises
            const bool plain = pos_max <= qpos[t] && attn_visible(p, pos_min, qpos[t]) && p.softcap <= 0.0f;
            for (int32_t g = 0; g < group; ++g) {
                const int64_t row = t * p.n_head + ih * group + g;
                const float l = lse[row];
                if (l == -INFINITY) continue;
                float* x = sc.data();
                dots_f32(q + row * hd, keys.data(), hd, nb, x);
                if (plain) {
                    for (int64_t j = 0; j < nb; ++j) x[j] *= p.scale;  // = attn_logit without a cap
                } else {
                    for (int64_t j = 0; j < nb; ++j) x[j] = !attn_visible(p, pos[j], qpos[t]) ? -INFINITY : attn_logit(p, x[j]);
                }
                exp_shifted(sc.data(), nb, l);  // the probabilities, no pass of its own for the max
                for (int64_t j = 0; j < nb; ++j) o[j] += sc[size_t(j)];
            }
        }
    });
}

void attn_band_recent(ThreadPool& pool, const AttnParams& p, const float* q, const int32_t* qpos, int64_t n_tok,
                      int64_t t_begin, int32_t t_stride, int32_t band, bool full_norm, const AttnKvHead* heads,
                      float* recent, float* count, int64_t stride, const float* lse) {
    const int32_t group = p.n_head / p.n_head_kv;
    const int32_t hd = p.head_dim;
    const int64_t step = std::max<int32_t>(1, t_stride);
    if (t_begin >= n_tok) return;
    if (!full_norm) lse = nullptr;  // the band's own normaliser needs every band dot anyway
    pool.parallel_for(p.n_head_kv, [&](int64_t b, int64_t e, int) {
        thread_local std::vector<float> keys, sc;  // [n_slot, head_dim] f32, [kRowTile, n_slot]
        for (int64_t ih = b; ih < e; ++ih) {
            const AttnKvHead& h = heads[ih];
            float* rec = recent + ih * stride;
            float* cnt = count + ih * stride;
            if (h.n_slot == 0) continue;
            const PosLane::iterator pb = h.pos.begin(), pe = pb + h.n_slot;
            // The lse serves float keys only: over q8_0 / q4_0 / hq4 keys the kernel dots a quantized
            // query (attention.cpp qk_i8), a normaliser that differs by more than rounding.
            const float* const hlse = kv_float_keys(h.k_type) ? lse : nullptr;
            // the dots a row needs: its whole visible row when normalising over it without an lse, else its band
            const bool whole_row = full_norm && !hlse;
            // keys converted once per head: only the slots some sampled query can reach
            const int64_t s_lo = whole_row ? 0 : std::lower_bound(pb, pe, qpos[t_begin] - band) - pb;
            keys.resize(size_t(h.n_slot) * size_t(hd));  // [n_slot, head_dim] f32
            for (int64_t s = s_lo; s < h.n_slot; ++s) {
                kv_read_row(h.k_type, h.k_pages, p.page_size, hd, s, keys.data() + s * hd);
            }
            sc.resize(size_t(kRowTile) * size_t(h.n_slot));
            // the sampled rows (t descending, then g), kRowTile at a time: their dots over one sweep
            // of the keys, then each row's band sums added in the same order as row by row
            struct RowSpan {
                int64_t t, s_band, s_end;
                float lse;  // the row's log-sum-exp (with an lse)
            };
            RowSpan span[kRowTile];
            const float* qrows[kRowTile];
            int64_t lo[kRowTile], hi[kRowTile];
            int32_t nr = 0;
            auto flush = [&]() {
                tile_dots(qrows, lo, hi, nr, keys.data(), hd, sc.data(), h.n_slot);
                for (int32_t r = 0; r < nr; ++r) {
                    const RowSpan& rs = span[r];
                    float* row = sc.data() + size_t(r) * size_t(h.n_slot);
                    if (hlse) {  // the band's probabilities over the whole row: exp(logit - lse), vectorised
                        for (int64_t s = rs.s_band; s < rs.s_end; ++s) row[s] = attn_logit(p, row[s]);
                        exp_shifted(row + rs.s_band, rs.s_end - rs.s_band, rs.lse);
                        double suffix = 0.0;
                        for (int64_t s = rs.s_end - 1; s >= rs.s_band; --s) {
                            suffix += double(row[s]);
                            if (h.pos[s] >= qpos[rs.t]) continue;  // a slot's future starts after it
                            rec[s] += float(suffix);
                            cnt[s] += 1.0f;
                        }
                        continue;
                    }
                    float mx = -INFINITY;
                    for (int64_t s = lo[r]; s < rs.s_end; ++s) {
                        row[s] = attn_logit(p, row[s]);
                        mx = std::max(mx, row[s]);
                    }
                    double z = 0.0;
                    for (int64_t s = lo[r]; s < rs.s_end; ++s) z += std::exp(double(row[s] - mx));
                    double suffix = 0.0;
                    for (int64_t s = rs.s_end - 1; s >= rs.s_band; --s) {
                        suffix += std::exp(double(row[s] - mx));
                        if (h.pos[s] >= qpos[rs.t]) continue;  // a slot's future starts after it
                        rec[s] += float(suffix / z);
                        cnt[s] += 1.0f;
                    }
                }
                nr = 0;
            };
            for (int64_t t = n_tok - 1; t >= t_begin; t -= step) {
                // visible slots [0, s_end); band slots [s_band, s_end) (positions ascend)
                const PosLane::iterator end = std::upper_bound(pb, pe, qpos[t]);
                const int64_t s_end = end - pb;
                // a sliding window hides the slots before qpos - window + 1
                const int64_t s_vis = p.window > 0 ? std::lower_bound(pb, end, qpos[t] - p.window + 1) - pb : 0;
                const int64_t s_band = std::max<int64_t>(s_vis, std::lower_bound(pb, end, qpos[t] - band) - pb);
                if (s_band >= s_end) continue;
                const int64_t s_norm = whole_row ? s_vis : s_band;
                for (int32_t g = 0; g < group; ++g) {
                    const int64_t row = t * p.n_head + ih * group + g;
                    const float l = hlse ? hlse[row] : 0.0f;
                    if (l == -INFINITY) continue;  // the kernel saw nothing in this row (cannot happen with s_band < s_end)
                    span[nr] = {t, s_band, s_end, l};
                    qrows[nr] = q + row * hd;  // [head_dim]
                    lo[nr] = s_norm, hi[nr] = s_end;
                    if (++nr == kRowTile) flush();
                }
            }
            if (nr > 0) flush();
        }
    });
}

}  // namespace hkv
