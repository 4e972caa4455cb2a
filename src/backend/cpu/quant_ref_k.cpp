// backend/cpu/quant_ref_k.cpp — reference quantizers for the K-quants (q2_K .. q6_K) and the
// non-linear iq4_nl / iq4_xs (scalar).
//
// Two levels, as the formats require: first each sub-block gets a float (scale, min) — or a signed
// scale for q6_K — chosen by a small search that minimizes the weighted squared error; then those
// per-sub-block values are themselves quantized (6-bit for q4_K/q5_K, int8 for q6_K) against one f16
// super-scale, and the elements are re-quantized with the scales as stored. The search follows the
// idea of ggml's make_qkx2_quants / make_qx_quants (sweep candidate inverse scales around nmax/range,
// refit by least squares, keep the best) so quality is comparable with files the reference produces.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/quant_internal.h"
#include "core/fp16.h"

namespace hkv {
namespace {

inline int round_int(float v) { return int(std::nearbyintf(v)); }  // half to even

// Asymmetric fit x[i] ~= scale * q[i] - min with q in [0, nmax], min >= 0 (the offset never goes
// above zero, matching the formats' `d*q - dmin*m` with m unsigned). Weighted by w[i].
// Returns scale; *min_out = min.
float fit_scale_min(int n, int nmax, const float* x, const float* w, uint8_t* q, float* min_out) {
    float lo = x[0], hi = x[0];
    for (int i = 1; i < n; ++i) { lo = std::min(lo, x[i]); hi = std::max(hi, x[i]); }
    if (lo > 0) lo = 0;
    if (hi <= lo) {  // constant (zero or negative) sub-block: all quants 0, offset carries it
        std::fill(q, q + n, uint8_t(0));
        *min_out = -lo;
        return 0.0f;
    }
    float sum_w = 0, sum_x = 0;
    for (int i = 0; i < n; ++i) { sum_w += w[i]; sum_x += w[i] * x[i]; }

    auto error_of = [&](float scale, float off) {  // off = -min <= 0
        float e = 0;
        for (int i = 0; i < n; ++i) {
            const float diff = scale * float(q[i]) + off - x[i];
            e += w[i] * diff * diff;
        }
        return e;
    };

    float iscale = float(nmax) / (hi - lo);
    float best_scale = 1.0f / iscale, best_off = lo;
    for (int i = 0; i < n; ++i) q[i] = uint8_t(std::clamp(round_int(iscale * (x[i] - lo)), 0, nmax));
    float best_err = error_of(best_scale, best_off);

    uint8_t cand[kQkK];
    // candidate iscale = (nmax - 3 + 0.1 * step) / range: clipping the extremes often pays off
    constexpr int kSteps = 40;
    for (int step = 0; step <= kSteps; ++step) {
        iscale = (float(nmax) - 3.0f + 0.1f * float(step)) / (hi - lo);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            const int l = std::clamp(round_int(iscale * (x[i] - lo)), 0, nmax);
            cand[i] = uint8_t(l);
            sum_l += w[i] * float(l);
            sum_l2 += w[i] * float(l) * float(l);
            sum_xl += w[i] * float(l) * x[i];
        }
        // Least squares for (scale, off) in x ~= scale * l + off.
        const float det = sum_w * sum_l2 - sum_l * sum_l;
        if (det <= 0) continue;
        float scale = (sum_w * sum_xl - sum_x * sum_l) / det;
        float off = (sum_l2 * sum_x - sum_l * sum_xl) / det;
        if (off > 0) {  // the format cannot add a positive offset: refit with off = 0
            off = 0;
            scale = sum_l2 > 0 ? sum_xl / sum_l2 : 0.0f;
        }
        float e = 0;
        for (int i = 0; i < n; ++i) {
            const float diff = scale * float(cand[i]) + off - x[i];
            e += w[i] * diff * diff;
        }
        if (e < best_err) {
            best_err = e;
            best_scale = scale;
            best_off = off;
            std::memcpy(q, cand, size_t(n));
        }
    }
    // A few rounds of alternating refinement: re-round at the best (scale, off), refit.
    for (int iter = 0; iter < 3 && best_scale > 0; ++iter) {
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            const int l = std::clamp(round_int((x[i] - best_off) / best_scale), 0, nmax);
            cand[i] = uint8_t(l);
            sum_l += w[i] * float(l);
            sum_l2 += w[i] * float(l) * float(l);
            sum_xl += w[i] * float(l) * x[i];
        }
        const float det = sum_w * sum_l2 - sum_l * sum_l;
        if (det <= 0) break;
        float scale = (sum_w * sum_xl - sum_x * sum_l) / det;
        float off = (sum_l2 * sum_x - sum_l * sum_xl) / det;
        if (off > 0) { off = 0; scale = sum_xl / sum_l2; }
        float e = 0;
        for (int i = 0; i < n; ++i) {
            const float diff = scale * float(cand[i]) + off - x[i];
            e += w[i] * diff * diff;
        }
        if (!(e < best_err)) break;
        best_err = e;
        best_scale = scale;
        best_off = off;
        std::memcpy(q, cand, size_t(n));
    }
    *min_out = -best_off;
    return best_scale;
}

// Symmetric fit x[i] ~= scale * l[i], l in [-nmax, nmax - 1], weights w. Returns scale (may be
// negative: the side with the largest magnitude maps to -nmax, which uses the extra level).
float fit_scale_sym(int n, int nmax, const float* x, const float* w) {
    float amax = 0, max = 0;
    for (int i = 0; i < n; ++i) {
        if (std::fabs(x[i]) > amax) { amax = std::fabs(x[i]); max = x[i]; }
    }
    if (amax == 0) return 0.0f;
    float best_scale = 0, best_score = -1;
    for (int step = -40; step <= 9; ++step) {  // iscale magnitudes from nmax - 4 to nmax + 0.9
        const float iscale = -(float(nmax) + 0.1f * float(step)) / max;
        float sum_lx = 0, sum_l2 = 0;
        for (int i = 0; i < n; ++i) {
            const int l = std::clamp(round_int(iscale * x[i]), -nmax, nmax - 1);
            sum_lx += w[i] * x[i] * float(l);
            sum_l2 += w[i] * float(l) * float(l);
        }
        // With the optimal scale sum_lx / sum_l2 the error is sum(w x^2) - sum_lx^2 / sum_l2.
        if (sum_l2 > 0 && sum_lx * sum_lx / sum_l2 > best_score) {
            best_score = sum_lx * sum_lx / sum_l2;
            best_scale = sum_lx / sum_l2;
        }
    }
    return best_scale;
}

// Signed per-group scales of 16 groups of 16 (weights x^2), for q6_K (nmax 32) and q3_K (nmax 4).
// Returns the scale of largest magnitude, sign included.
float sym_group_scales(const float* x, int nmax, float scales[16]) {
    float w[16], max_scale = 0, amax_scale = 0;
    for (int g = 0; g < 16; ++g) {
        for (int l = 0; l < 16; ++l) w[l] = x[16 * g + l] * x[16 * g + l];
        scales[g] = fit_scale_sym(16, nmax, x + 16 * g, w);
        if (std::fabs(scales[g]) > amax_scale) { amax_scale = std::fabs(scales[g]); max_scale = scales[g]; }
    }
    return max_scale;
}

// Shared by q4_K (nmax 15) and q5_K (nmax 31): 8 sub-blocks of 32 with 6-bit scales and mins.
// Writes d, dmin, scales[12] and the element quants L[256] (0..nmax).
void quantize_k_scales(const float* x, int nmax, uint16_t* d_out, uint16_t* dmin_out,
                       uint8_t* scales_out, uint8_t* L) {
    float scales[8], mins[8], w[32];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
        const float* xs = x + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
        const float av_x = std::sqrt(sum_x2 / 32.0f);
        for (int l = 0; l < 32; ++l) w[l] = av_x + std::fabs(xs[l]);
        scales[j] = fit_scale_min(32, nmax, xs, w, L + 32 * j, &mins[j]);
        max_scale = std::max(max_scale, scales[j]);
        max_min = std::max(max_min, mins[j]);
    }
    const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; ++j) {
        ls[j] = uint8_t(std::clamp(round_int(inv_scale * scales[j]), 0, 63));
        lm[j] = uint8_t(std::clamp(round_int(inv_min * mins[j]), 0, 63));
    }
    pack_scale_min_k4(ls, lm, scales_out);
    *d_out = fp32_to_fp16(max_scale / 63.0f);
    *dmin_out = fp32_to_fp16(max_min / 63.0f);
    // Re-quantize the elements against the scales as stored.
    const float d = fp16_to_fp32(*d_out), dmin = fp16_to_fp32(*dmin_out);
    for (int j = 0; j < 8; ++j) {
        const float ds = d * float(ls[j]);
        if (ds == 0.0f) {
            std::fill(L + 32 * j, L + 32 * j + 32, uint8_t(0));
            continue;
        }
        const float dm = dmin * float(lm[j]);
        for (int l = 0; l < 32; ++l) {
            L[32 * j + l] = uint8_t(std::clamp(round_int((x[32 * j + l] + dm) / ds), 0, nmax));
        }
    }
}


// Index of the iq4_nl level nearest to v (ties to the lower level).
int iq4_nearest(float v) {
    int lo = 0, hi = 15;
    while (hi - lo > 1) {  // kIq4nlValues ascending
        const int mid = (lo + hi) / 2;
        if (v < float(kIq4nlValues[mid])) hi = mid; else lo = mid;
    }
    return v - float(kIq4nlValues[lo]) <= float(kIq4nlValues[hi]) - v ? lo : hi;
}

// Scale d minimizing sum w (x - d * kIq4nlValues[idx])^2 over the levels chosen by rounding x / d:
// a sweep of candidate inverse scales around -127 / max (the largest-magnitude element on the
// -127 level, the table's widest side) and around 113 / max, each refit by least squares.
float fit_scale_iq4(int n, const float* x, const float* w) {
    float amax = 0, max = 0;
    for (int i = 0; i < n; ++i) {
        if (std::fabs(x[i]) > amax) { amax = std::fabs(x[i]); max = x[i]; }
    }
    if (amax == 0) return 0.0f;
    float best_d = 0, best_score = -1;
    for (int side = 0; side < 2; ++side) {
        const float top = side == 0 ? -127.0f : 113.0f;
        for (int step = -10; step <= 10; ++step) {
            const float iscale = (top + float(step) * (side == 0 ? -1.0f : 1.0f)) / max;
            float sum_xv = 0, sum_v2 = 0;
            for (int i = 0; i < n; ++i) {
                const float v = float(kIq4nlValues[iq4_nearest(iscale * x[i])]);
                sum_xv += w[i] * x[i] * v;
                sum_v2 += w[i] * v * v;
            }
            // error at the optimal d = sum_xv / sum_v2 is sum(w x^2) - sum_xv^2 / sum_v2
            if (sum_v2 > 0 && sum_xv * sum_xv / sum_v2 > best_score) {
                best_score = sum_xv * sum_xv / sum_v2;
                best_d = sum_xv / sum_v2;
            }
        }
    }
    return best_d;
}

// Packs levels L[32] (indices into kIq4nlValues) of one 32-element group: nibble order of q4_0.
void pack_iq4(const uint8_t* L, uint8_t* qs) {
    for (int j = 0; j < 16; ++j) qs[j] = uint8_t(L[j] | (L[j + 16] << 4));
}

// Levels of x[32] against the stored scale d (d == 0: the level nearest zero).
void levels_iq4(const float* x, float d, uint8_t* L) {
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; ++j) L[j] = uint8_t(iq4_nearest(id * x[j]));
}

}  // namespace

void quantize_q4_k_ref(const float* x, BlockQ4_K* y, int64_t nb) {
    uint8_t L[kQkK];
    for (int64_t i = 0; i < nb; ++i, x += kQkK) {
        quantize_k_scales(x, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
        for (int k = 0; k < 4; ++k) {
            for (int l = 0; l < 32; ++l) y[i].qs[32 * k + l] = uint8_t(L[64 * k + l] | (L[64 * k + 32 + l] << 4));
        }
    }
}

void quantize_q5_k_ref(const float* x, BlockQ5_K* y, int64_t nb) {
    uint8_t L[kQkK];
    for (int64_t i = 0; i < nb; ++i, x += kQkK) {
        quantize_k_scales(x, 31, &y[i].d, &y[i].dmin, y[i].scales, L);
        std::memset(y[i].qh, 0, sizeof(y[i].qh));
        for (int k = 0; k < 4; ++k) {
            for (int l = 0; l < 32; ++l) {
                const int lo = L[64 * k + l], hi = L[64 * k + 32 + l];
                y[i].qs[32 * k + l] = uint8_t((lo & 0x0f) | ((hi & 0x0f) << 4));
                y[i].qh[l] |= uint8_t(((lo >> 4) << (2 * k)) | ((hi >> 4) << (2 * k + 1)));
            }
        }
    }
}

void quantize_q6_k_ref(const float* x, BlockQ6_K* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += kQkK) {
        float scales[16];
        const float max_scale = sym_group_scales(x, 32, scales), amax_scale = std::fabs(max_scale);
        std::memset(y[i].ql, 0, sizeof(y[i].ql));
        std::memset(y[i].qh, 0, sizeof(y[i].qh));
        if (amax_scale == 0) {
            std::memset(y[i].scales, 0, sizeof(y[i].scales));
            y[i].d = 0;
            std::memset(y[i].qh, 0xaa, sizeof(y[i].qh));  // every q = 32 (high bits 2, low 0): value 0
            continue;
        }
        const float iscale = -128.0f / max_scale;
        for (int g = 0; g < 16; ++g) y[i].scales[g] = int8_t(std::min(127, round_int(iscale * scales[g])));
        y[i].d = fp32_to_fp16(1.0f / iscale);
        const float d = fp16_to_fp32(y[i].d);
        uint8_t L[kQkK];
        for (int g = 0; g < 16; ++g) {
            const float ds = d * float(y[i].scales[g]);
            for (int l = 0; l < 16; ++l) {
                const int q = ds != 0.0f ? std::clamp(round_int(x[16 * g + l] / ds), -32, 31) : 0;
                L[16 * g + l] = uint8_t(q + 32);
            }
        }
        for (int h = 0; h < 2; ++h) {
            const uint8_t* Lh = L + 128 * h;
            for (int l = 0; l < 32; ++l) {
                const int q0 = Lh[l], q1 = Lh[l + 32], q2 = Lh[l + 64], q3 = Lh[l + 96];
                y[i].ql[64 * h + l] = uint8_t((q0 & 0x0f) | ((q2 & 0x0f) << 4));
                y[i].ql[64 * h + l + 32] = uint8_t((q1 & 0x0f) | ((q3 & 0x0f) << 4));
                y[i].qh[32 * h + l] = uint8_t((q0 >> 4) | ((q1 >> 4) << 2) | ((q2 >> 4) << 4) | ((q3 >> 4) << 6));
            }
        }
    }
}

void quantize_q2_k_ref(const float* x, BlockQ2_K* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += kQkK) {
        float scales[16], mins[16], w[16];
        uint8_t L[kQkK];
        float max_scale = 0, max_min = 0;
        for (int g = 0; g < 16; ++g) {
            const float* xs = x + 16 * g;
            float sum_x2 = 0;
            for (int l = 0; l < 16; ++l) sum_x2 += xs[l] * xs[l];
            const float av_x = std::sqrt(sum_x2 / 16.0f);
            for (int l = 0; l < 16; ++l) w[l] = av_x + std::fabs(xs[l]);
            scales[g] = fit_scale_min(16, 3, xs, w, L + 16 * g, &mins[g]);
            max_scale = std::max(max_scale, scales[g]);
            max_min = std::max(max_min, mins[g]);
        }
        const float inv_scale = max_scale > 0 ? 15.0f / max_scale : 0.0f;
        const float inv_min = max_min > 0 ? 15.0f / max_min : 0.0f;
        y[i].d = fp32_to_fp16(max_scale / 15.0f);
        y[i].dmin = fp32_to_fp16(max_min / 15.0f);
        const float d = fp16_to_fp32(y[i].d), dmin = fp16_to_fp32(y[i].dmin);
        for (int g = 0; g < 16; ++g) {
            const int ls = std::clamp(round_int(inv_scale * scales[g]), 0, 15);
            const int lm = std::clamp(round_int(inv_min * mins[g]), 0, 15);
            y[i].scales[g] = uint8_t(ls | (lm << 4));
            const float ds = d * float(ls), dm = dmin * float(lm);
            for (int l = 0; l < 16; ++l) {
                L[16 * g + l] = ds == 0.0f ? 0 : uint8_t(std::clamp(round_int((x[16 * g + l] + dm) / ds), 0, 3));
            }
        }
        std::memset(y[i].qs, 0, sizeof(y[i].qs));
        for (int h = 0; h < 2; ++h)
            for (int s = 0; s < 4; ++s)
                for (int l = 0; l < 32; ++l) y[i].qs[32 * h + l] |= uint8_t(L[128 * h + 32 * s + l] << (2 * s));
    }
}

void quantize_q3_k_ref(const float* x, BlockQ3_K* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += kQkK) {
        float scales[16];
        const float max_scale = sym_group_scales(x, 4, scales), amax_scale = std::fabs(max_scale);
        uint8_t ls[16];
        const float iscale = amax_scale > 0 ? -32.0f / max_scale : 0.0f;
        for (int g = 0; g < 16; ++g) ls[g] = uint8_t(std::clamp(round_int(iscale * scales[g]), -32, 31) + 32);
        pack_scales_q3_k(ls, y[i].scales);
        y[i].d = fp32_to_fp16(amax_scale > 0 ? 1.0f / iscale : 0.0f);
        const float d = fp16_to_fp32(y[i].d);
        std::memset(y[i].qs, 0, sizeof(y[i].qs));
        std::memset(y[i].hmask, 0, sizeof(y[i].hmask));
        for (int h = 0; h < 2; ++h) {
            for (int s = 0; s < 4; ++s) {
                for (int l = 0; l < 32; ++l) {
                    const int e = 128 * h + 32 * s + l;
                    const float ds = d * float(int(ls[e / 16]) - 32);
                    const int u = (ds != 0.0f ? std::clamp(round_int(x[e] / ds), -4, 3) : 0) + 4;
                    y[i].qs[32 * h + l] |= uint8_t((u & 3) << (2 * s));
                    y[i].hmask[l] |= uint8_t((u >> 2) << (4 * h + s));
                }
            }
        }
    }
}

void quantize_iq4_nl_ref(const float* x, BlockIQ4_NL* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += kQk) {
        float w[kQk];
        for (int j = 0; j < kQk; ++j) w[j] = 1.0f;
        y[i].d = fp32_to_fp16(fit_scale_iq4(kQk, x, w));
        uint8_t L[kQk];
        levels_iq4(x, fp16_to_fp32(y[i].d), L);
        pack_iq4(L, y[i].qs);
    }
}

void quantize_iq4_xs_ref(const float* x, BlockIQ4_XS* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += kQkK) {
        float scales[8], w[32];
        float max_scale = 0, amax_scale = 0;
        for (int j = 0; j < 32; ++j) w[j] = 1.0f;
        for (int j = 0; j < 8; ++j) {
            scales[j] = fit_scale_iq4(32, x + 32 * j, w);
            if (std::fabs(scales[j]) > amax_scale) { amax_scale = std::fabs(scales[j]); max_scale = scales[j]; }
        }
        // 6-bit sub-block scales ls - 32 in [-32, 31]; the largest-magnitude one on -32
        const float d = amax_scale > 0 ? max_scale / -32.0f : 0.0f;
        y[i].d = fp32_to_fp16(d);
        const float dd = fp16_to_fp32(y[i].d);
        const float id = dd != 0.0f ? 1.0f / dd : 0.0f;
        y[i].scales_h = 0;
        std::memset(y[i].scales_l, 0, sizeof(y[i].scales_l));
        for (int j = 0; j < 8; ++j) {
            const int ls = std::clamp(round_int(id * scales[j]), -32, 31) + 32;
            y[i].scales_l[j / 2] = uint8_t(y[i].scales_l[j / 2] | ((ls & 0x0f) << (4 * (j % 2))));
            y[i].scales_h = uint16_t(y[i].scales_h | ((ls >> 4) << (2 * j)));
            uint8_t L[32];
            levels_iq4(x + 32 * j, dd * float(ls - 32), L);
            pack_iq4(L, y[i].qs + 16 * j);
        }
    }
}

}  // namespace hkv
