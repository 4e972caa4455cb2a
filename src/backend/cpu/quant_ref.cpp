// backend/cpu/quant_ref.cpp — scalar reference: dequantize, quantize, vec_dot for every weight type.
//
// Plain C++, written for clarity. The legacy quantizers (q4_0 .. q8_0) reproduce ggml's reference
// quantizers bit for bit; the K-quant quantizers use a per-sub-block (scale, min) search of the same
// kind as ggml's (weighted least squares over a sweep of candidate inverse scales).
//
// NOTE: fp-contract is off in this file so that `d * q + m` is two roundings, as in ggml's C and the
// gguf Python package; otherwise the compiler may fuse it into an FMA and the golden test would see
// 1-ulp differences.
#if defined(__clang__)  // (clang ignores the GCC optimize pragma)
#pragma STDC FP_CONTRACT OFF
#else
#pragma GCC optimize("fp-contract=off")
#endif

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/quant.h"
#include "backend/cpu/quant_blocks.h"
#include "backend/cpu/quant_internal.h"
#include "core/assert.h"
#include "core/fp16.h"

namespace hkv {
namespace {

// ---- dequantize ----

void dequant_q4_0(const BlockQ4_0* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += kQk) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < kQk / 2; ++j) {
            y[j] = d * float((b[i].qs[j] & 0x0f) - 8);
            y[j + kQk / 2] = d * float((b[i].qs[j] >> 4) - 8);
        }
    }
}

void dequant_q4_1(const BlockQ4_1* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += kQk) {
        const float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
        for (int j = 0; j < kQk / 2; ++j) {
            y[j] = d * float(b[i].qs[j] & 0x0f) + m;
            y[j + kQk / 2] = d * float(b[i].qs[j] >> 4) + m;
        }
    }
}

inline uint32_t load_u32(const uint8_t* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }

void dequant_q5_0(const BlockQ5_0* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += kQk) {
        const float d = fp16_to_fp32(b[i].d);
        const uint32_t qh = load_u32(b[i].qh);
        for (int j = 0; j < kQk / 2; ++j) {
            const int q0 = (b[i].qs[j] & 0x0f) | int(((qh >> j) & 1u) << 4);
            const int q1 = (b[i].qs[j] >> 4) | int(((qh >> (j + 16)) & 1u) << 4);
            y[j] = d * float(q0 - 16);
            y[j + kQk / 2] = d * float(q1 - 16);
        }
    }
}

void dequant_q5_1(const BlockQ5_1* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += kQk) {
        const float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
        const uint32_t qh = load_u32(b[i].qh);
        for (int j = 0; j < kQk / 2; ++j) {
            const int q0 = (b[i].qs[j] & 0x0f) | int(((qh >> j) & 1u) << 4);
            const int q1 = (b[i].qs[j] >> 4) | int(((qh >> (j + 16)) & 1u) << 4);
            y[j] = d * float(q0) + m;
            y[j + kQk / 2] = d * float(q1) + m;
        }
    }
}

template <typename B>
void dequant_q8(const B* b, float* y, int64_t nb) {  // q8_0 and q8_1
    for (int64_t i = 0; i < nb; ++i, y += kQk) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < kQk; ++j) y[j] = d * float(b[i].qs[j]);
    }
}

void dequant_q4_k(const BlockQ4_K* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i) {
        const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
        for (int k = 0; k < 4; ++k) {  // 64 elements per step: sub-blocks 2k (low nibbles), 2k+1 (high)
            uint8_t sc0, m0, sc1, m1;
            unpack_scale_min_k4(2 * k, b[i].scales, &sc0, &m0);
            unpack_scale_min_k4(2 * k + 1, b[i].scales, &sc1, &m1);
            const float d0 = d * float(sc0), mm0 = dmin * float(m0);
            const float d1 = d * float(sc1), mm1 = dmin * float(m1);
            const uint8_t* q = b[i].qs + 32 * k;
            for (int l = 0; l < 32; ++l) y[l] = d0 * float(q[l] & 0x0f) - mm0;
            for (int l = 0; l < 32; ++l) y[32 + l] = d1 * float(q[l] >> 4) - mm1;
            y += 64;
        }
    }
}

void dequant_q5_k(const BlockQ5_K* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i) {
        const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
        for (int k = 0; k < 4; ++k) {
            uint8_t sc0, m0, sc1, m1;
            unpack_scale_min_k4(2 * k, b[i].scales, &sc0, &m0);
            unpack_scale_min_k4(2 * k + 1, b[i].scales, &sc1, &m1);
            const float d0 = d * float(sc0), mm0 = dmin * float(m0);
            const float d1 = d * float(sc1), mm1 = dmin * float(m1);
            const uint8_t* q = b[i].qs + 32 * k;
            const uint8_t* qh = b[i].qh;
            for (int l = 0; l < 32; ++l) {
                const int v = (q[l] & 0x0f) | (((qh[l] >> (2 * k)) & 1) << 4);
                y[l] = d0 * float(v) - mm0;
            }
            for (int l = 0; l < 32; ++l) {
                const int v = (q[l] >> 4) | (((qh[l] >> (2 * k + 1)) & 1) << 4);
                y[32 + l] = d1 * float(v) - mm1;
            }
            y += 64;
        }
    }
}

void dequant_q6_k(const BlockQ6_K* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i) {
        const float d = fp16_to_fp32(b[i].d);
        for (int h = 0; h < 2; ++h) {
            const uint8_t* ql = b[i].ql + 64 * h;
            const uint8_t* qh = b[i].qh + 32 * h;
            const int8_t* sc = b[i].scales + 8 * h;
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                const int q0 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q1 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q2 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q3 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = (d * float(sc[is + 0])) * float(q0);
                y[l + 32] = (d * float(sc[is + 2])) * float(q1);
                y[l + 64] = (d * float(sc[is + 4])) * float(q2);
                y[l + 96] = (d * float(sc[is + 6])) * float(q3);
            }
            y += 128;
        }
    }
}

void dequant_q2_k(const BlockQ2_K* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i) {
        const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
        for (int h = 0; h < 2; ++h) {
            for (int s = 0; s < 4; ++s) {
                for (int l = 0; l < 32; ++l) {
                    const uint8_t sc = b[i].scales[8 * h + 2 * s + l / 16];
                    const float dl = d * float(sc & 0x0f), ml = dmin * float(sc >> 4);
                    y[128 * h + 32 * s + l] = dl * float((b[i].qs[32 * h + l] >> (2 * s)) & 3) - ml;
                }
            }
        }
        y += kQkK;
    }
}

// q3_K element value u - 4 in [-4, 3] (u = 2 low bits | high bit << 2).
inline int q3_k_value(const BlockQ3_K& b, int h, int s, int l) {
    const int lo = (b.qs[32 * h + l] >> (2 * s)) & 3;
    const int hi = (b.hmask[l] >> (4 * h + s)) & 1;
    return lo + 4 * hi - 4;
}

void dequant_q3_k(const BlockQ3_K* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i) {
        const float d = fp16_to_fp32(b[i].d);
        uint8_t ls[16];
        unpack_scales_q3_k(b[i].scales, ls);
        for (int h = 0; h < 2; ++h) {
            for (int s = 0; s < 4; ++s) {
                for (int l = 0; l < 32; ++l) {
                    const float dl = d * float(int(ls[8 * h + 2 * s + l / 16]) - 32);
                    y[128 * h + 32 * s + l] = dl * float(q3_k_value(b[i], h, s, l));
                }
            }
        }
        y += kQkK;
    }
}

void dequant_iq4_nl(const BlockIQ4_NL* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += kQk) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < kQk / 2; ++j) {
            y[j] = d * float(kIq4nlValues[b[i].qs[j] & 0x0f]);
            y[j + kQk / 2] = d * float(kIq4nlValues[b[i].qs[j] >> 4]);
        }
    }
}

// The 6-bit scale (0..63, used minus 32) of sub-block j of an iq4_xs block.
inline int iq4_xs_scale(const BlockIQ4_XS& b, int j) {
    return ((b.scales_l[j / 2] >> (4 * (j % 2))) & 0x0f) | (((b.scales_h >> (2 * j)) & 3) << 4);
}

void dequant_iq4_xs(const BlockIQ4_XS* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < 8; ++j, y += 32) {
            const float dl = d * float(iq4_xs_scale(b[i], j) - 32);
            const uint8_t* q = b[i].qs + 16 * j;
            for (int l = 0; l < 16; ++l) {
                y[l] = dl * float(kIq4nlValues[q[l] & 0x0f]);
                y[l + 16] = dl * float(kIq4nlValues[q[l] >> 4]);
            }
        }
    }
}

void dequant_q8_k(const BlockQ8_K* b, float* y, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, y += kQkK) {
        for (int j = 0; j < kQkK; ++j) y[j] = b[i].d * float(b[i].qs[j]);
    }
}

// ---- quantize: legacy types (bit-exact with ggml's *_ref quantizers) ----

void quant_q4_0(const float* x, BlockQ4_0* b, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += kQk) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < kQk; ++j) {
            if (amax < std::fabs(x[j])) { amax = std::fabs(x[j]); max = x[j]; }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = fp32_to_fp16(d);
        for (int j = 0; j < kQk / 2; ++j) {
            const int q0 = std::min(15, int(int8_t(x[j] * id + 8.5f)));
            const int q1 = std::min(15, int(int8_t(x[j + kQk / 2] * id + 8.5f)));
            b[i].qs[j] = uint8_t(q0 | (q1 << 4));
        }
    }
}

void quant_q4_1(const float* x, BlockQ4_1* b, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += kQk) {
        float min = x[0], max = x[0];
        for (int j = 1; j < kQk; ++j) { min = std::min(min, x[j]); max = std::max(max, x[j]); }
        const float d = (max - min) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = fp32_to_fp16(d);
        b[i].m = fp32_to_fp16(min);
        for (int j = 0; j < kQk / 2; ++j) {
            const int q0 = std::min(15, int(int8_t((x[j] - min) * id + 0.5f)));
            const int q1 = std::min(15, int(int8_t((x[j + kQk / 2] - min) * id + 0.5f)));
            b[i].qs[j] = uint8_t(q0 | (q1 << 4));
        }
    }
}

void quant_q5_0(const float* x, BlockQ5_0* b, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += kQk) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < kQk; ++j) {
            if (amax < std::fabs(x[j])) { amax = std::fabs(x[j]); max = x[j]; }
        }
        const float d = max / -16.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = fp32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < kQk / 2; ++j) {
            const int q0 = std::min(31, int(int8_t(x[j] * id + 16.5f)));
            const int q1 = std::min(31, int(int8_t(x[j + kQk / 2] * id + 16.5f)));
            b[i].qs[j] = uint8_t((q0 & 0x0f) | ((q1 & 0x0f) << 4));
            qh |= uint32_t((q0 >> 4) & 1) << j;
            qh |= uint32_t((q1 >> 4) & 1) << (j + 16);
        }
        std::memcpy(b[i].qh, &qh, 4);
    }
}

void quant_q5_1(const float* x, BlockQ5_1* b, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += kQk) {
        float min = x[0], max = x[0];
        for (int j = 1; j < kQk; ++j) { min = std::min(min, x[j]); max = std::max(max, x[j]); }
        const float d = (max - min) / 31.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = fp32_to_fp16(d);
        b[i].m = fp32_to_fp16(min);
        uint32_t qh = 0;
        for (int j = 0; j < kQk / 2; ++j) {
            const int q0 = std::min(31, int(int8_t((x[j] - min) * id + 0.5f)));
            const int q1 = std::min(31, int(int8_t((x[j + kQk / 2] - min) * id + 0.5f)));
            b[i].qs[j] = uint8_t((q0 & 0x0f) | ((q1 & 0x0f) << 4));
            qh |= uint32_t((q0 >> 4) & 1) << j;
            qh |= uint32_t((q1 >> 4) & 1) << (j + 16);
        }
        std::memcpy(b[i].qh, &qh, 4);
    }
}

// q8_0 and q8_1 share the rounding: d = amax / 127, q = roundf(x / d) (half away from zero).
template <typename B>
void quant_q8(const float* x, B* b, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += kQk) {
        float amax = 0.0f;
        for (int j = 0; j < kQk; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = fp32_to_fp16(d);
        int sum = 0;
        for (int j = 0; j < kQk; ++j) {
            b[i].qs[j] = int8_t(std::roundf(x[j] * id));
            sum += b[i].qs[j];
        }
        if constexpr (sizeof(B) == sizeof(BlockQ8_1)) b[i].s = fp32_to_fp16(float(sum) * d);
    }
}

// q8_K (activation type of the K-quants): symmetric, d = amax / 127, round half to even.
void quant_q8_k(const float* x, BlockQ8_K* b, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i, x += kQkK) {
        float amax = 0.0f;
        for (int j = 0; j < kQkK; ++j) amax = std::max(amax, std::fabs(x[j]));
        if (amax == 0.0f) {
            std::memset(&b[i], 0, sizeof(BlockQ8_K));
            continue;
        }
        const float iscale = 127.0f / amax;
        for (int j = 0; j < kQkK; ++j) {
            const int v = int(std::nearbyintf(iscale * x[j]));
            b[i].qs[j] = int8_t(std::clamp(v, -127, 127));
        }
        for (int g = 0; g < kQkK / 16; ++g) {
            int s = 0;
            for (int l = 0; l < 16; ++l) s += b[i].qs[16 * g + l];
            b[i].bsums[g] = int16_t(s);
        }
        b[i].d = 1.0f / iscale;
    }
}

// ---- dot products (integer per block, as ggml; accumulation in double) ----

double dot_q4_0_q8_0(const BlockQ4_0* w, const BlockQ8_0* x, int64_t nb) {
    double sum = 0;
    for (int64_t i = 0; i < nb; ++i) {
        int sumi = 0;
        for (int j = 0; j < kQk / 2; ++j) {
            sumi += ((w[i].qs[j] & 0x0f) - 8) * x[i].qs[j];
            sumi += ((w[i].qs[j] >> 4) - 8) * x[i].qs[j + kQk / 2];
        }
        sum += double(float(sumi) * (fp16_to_fp32(w[i].d) * fp16_to_fp32(x[i].d)));
    }
    return sum;
}

double dot_q4_1_q8_1(const BlockQ4_1* w, const BlockQ8_1* x, int64_t nb) {
    double sum = 0;
    for (int64_t i = 0; i < nb; ++i) {
        int sumi = 0;
        for (int j = 0; j < kQk / 2; ++j) {
            sumi += (w[i].qs[j] & 0x0f) * x[i].qs[j];
            sumi += (w[i].qs[j] >> 4) * x[i].qs[j + kQk / 2];
        }
        sum += double((fp16_to_fp32(w[i].d) * fp16_to_fp32(x[i].d)) * float(sumi) +
                      fp16_to_fp32(w[i].m) * fp16_to_fp32(x[i].s));
    }
    return sum;
}

double dot_q5_0_q8_0(const BlockQ5_0* w, const BlockQ8_0* x, int64_t nb) {
    double sum = 0;
    for (int64_t i = 0; i < nb; ++i) {
        const uint32_t qh = load_u32(w[i].qh);
        int sumi = 0;
        for (int j = 0; j < kQk / 2; ++j) {
            const int q0 = ((w[i].qs[j] & 0x0f) | int(((qh >> j) & 1u) << 4)) - 16;
            const int q1 = ((w[i].qs[j] >> 4) | int(((qh >> (j + 16)) & 1u) << 4)) - 16;
            sumi += q0 * x[i].qs[j] + q1 * x[i].qs[j + kQk / 2];
        }
        sum += double(float(sumi) * (fp16_to_fp32(w[i].d) * fp16_to_fp32(x[i].d)));
    }
    return sum;
}

double dot_q5_1_q8_1(const BlockQ5_1* w, const BlockQ8_1* x, int64_t nb) {
    double sum = 0;
    for (int64_t i = 0; i < nb; ++i) {
        const uint32_t qh = load_u32(w[i].qh);
        int sumi = 0;
        for (int j = 0; j < kQk / 2; ++j) {
            const int q0 = (w[i].qs[j] & 0x0f) | int(((qh >> j) & 1u) << 4);
            const int q1 = (w[i].qs[j] >> 4) | int(((qh >> (j + 16)) & 1u) << 4);
            sumi += q0 * x[i].qs[j] + q1 * x[i].qs[j + kQk / 2];
        }
        sum += double((fp16_to_fp32(w[i].d) * fp16_to_fp32(x[i].d)) * float(sumi) +
                      fp16_to_fp32(w[i].m) * fp16_to_fp32(x[i].s));
    }
    return sum;
}

double dot_q8_0_q8_0(const BlockQ8_0* w, const BlockQ8_0* x, int64_t nb) {
    double sum = 0;
    for (int64_t i = 0; i < nb; ++i) {
        int sumi = 0;
        for (int j = 0; j < kQk; ++j) sumi += w[i].qs[j] * x[i].qs[j];
        sum += double(float(sumi) * (fp16_to_fp32(w[i].d) * fp16_to_fp32(x[i].d)));
    }
    return sum;
}

// q4_K / q5_K: sum_j d*sc_j * sum(q*y) - dmin*m_j * sum(y), the second term through q8_K's bsums.
template <bool kFive, typename B>
double dot_q45_k_q8_k(const B* w, const BlockQ8_K* x, int64_t nb) {
    double sum = 0;
    for (int64_t i = 0; i < nb; ++i) {
        int sumi = 0, summ = 0;
        for (int k = 0; k < 4; ++k) {
            for (int half = 0; half < 2; ++half) {
                const int j = 2 * k + half;
                uint8_t sc, m;
                unpack_scale_min_k4(j, w[i].scales, &sc, &m);
                int s = 0;
                for (int l = 0; l < 32; ++l) {
                    const uint8_t byte = w[i].qs[32 * k + l];
                    int q = half ? (byte >> 4) : (byte & 0x0f);
                    if constexpr (kFive) q |= ((w[i].qh[l] >> j) & 1) << 4;
                    s += q * x[i].qs[32 * j + l];
                }
                sumi += int(sc) * s;
                summ += int(m) * (x[i].bsums[2 * j] + x[i].bsums[2 * j + 1]);
            }
        }
        const float d = x[i].d * fp16_to_fp32(w[i].d);
        const float dmin = x[i].d * fp16_to_fp32(w[i].dmin);
        sum += double(d * float(sumi) - dmin * float(summ));
    }
    return sum;
}

double dot_q6_k_q8_k(const BlockQ6_K* w, const BlockQ8_K* x, int64_t nb) {
    double sum = 0;
    for (int64_t i = 0; i < nb; ++i) {
        int sumi = 0;
        for (int h = 0; h < 2; ++h) {
            const uint8_t* ql = w[i].ql + 64 * h;
            const uint8_t* qh = w[i].qh + 32 * h;
            const int8_t* y = x[i].qs + 128 * h;
            int s16[8] = {};  // per 16-element group of this half
            for (int l = 0; l < 32; ++l) {
                const int q0 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q1 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q2 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q3 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                s16[l / 16 + 0] += q0 * y[l];
                s16[l / 16 + 2] += q1 * y[l + 32];
                s16[l / 16 + 4] += q2 * y[l + 64];
                s16[l / 16 + 6] += q3 * y[l + 96];
            }
            for (int g = 0; g < 8; ++g) sumi += w[i].scales[8 * h + g] * s16[g];
        }
        sum += double((x[i].d * fp16_to_fp32(w[i].d)) * float(sumi));
    }
    return sum;
}


// q2_K: sum_g d*sc_g * sum(q*y) - dmin*m_g * sum(y), the second term through q8_K's bsums.
double dot_q2_k_q8_k(const BlockQ2_K* w, const BlockQ8_K* x, int64_t nb) {
    double sum = 0;
    for (int64_t i = 0; i < nb; ++i) {
        int sumi = 0, summ = 0;
        for (int h = 0; h < 2; ++h) {
            for (int s = 0; s < 4; ++s) {
                for (int half = 0; half < 2; ++half) {
                    const int g = 8 * h + 2 * s + half;
                    int p = 0;
                    for (int l = 16 * half; l < 16 * half + 16; ++l)
                        p += ((w[i].qs[32 * h + l] >> (2 * s)) & 3) * x[i].qs[128 * h + 32 * s + l];
                    sumi += (w[i].scales[g] & 0x0f) * p;
                    summ += (w[i].scales[g] >> 4) * x[i].bsums[g];
                }
            }
        }
        const float d = x[i].d * fp16_to_fp32(w[i].d);
        const float dmin = x[i].d * fp16_to_fp32(w[i].dmin);
        sum += double(d * float(sumi) - dmin * float(summ));
    }
    return sum;
}

double dot_q3_k_q8_k(const BlockQ3_K* w, const BlockQ8_K* x, int64_t nb) {
    double sum = 0;
    for (int64_t i = 0; i < nb; ++i) {
        uint8_t ls[16];
        unpack_scales_q3_k(w[i].scales, ls);
        int sumi = 0;
        for (int h = 0; h < 2; ++h) {
            for (int s = 0; s < 4; ++s) {
                for (int half = 0; half < 2; ++half) {
                    int p = 0;
                    for (int l = 16 * half; l < 16 * half + 16; ++l)
                        p += q3_k_value(w[i], h, s, l) * x[i].qs[128 * h + 32 * s + l];
                    sumi += (int(ls[8 * h + 2 * s + half]) - 32) * p;
                }
            }
        }
        sum += double((x[i].d * fp16_to_fp32(w[i].d)) * float(sumi));
    }
    return sum;
}

double dot_iq4_nl_q8_0(const BlockIQ4_NL* w, const BlockQ8_0* x, int64_t nb) {
    double sum = 0;
    for (int64_t i = 0; i < nb; ++i) {
        int sumi = 0;
        for (int j = 0; j < kQk / 2; ++j) {
            sumi += kIq4nlValues[w[i].qs[j] & 0x0f] * x[i].qs[j];
            sumi += kIq4nlValues[w[i].qs[j] >> 4] * x[i].qs[j + kQk / 2];
        }
        sum += double(float(sumi) * (fp16_to_fp32(w[i].d) * fp16_to_fp32(x[i].d)));
    }
    return sum;
}

double dot_iq4_xs_q8_k(const BlockIQ4_XS* w, const BlockQ8_K* x, int64_t nb) {
    double sum = 0;
    for (int64_t i = 0; i < nb; ++i) {
        int sumi = 0;
        for (int j = 0; j < 8; ++j) {
            const uint8_t* q = w[i].qs + 16 * j;
            const int8_t* y = x[i].qs + 32 * j;
            int p = 0;
            for (int l = 0; l < 16; ++l) p += kIq4nlValues[q[l] & 0x0f] * y[l] + kIq4nlValues[q[l] >> 4] * y[l + 16];
            sumi += (iq4_xs_scale(w[i], j) - 32) * p;
        }
        sum += double((x[i].d * fp16_to_fp32(w[i].d)) * float(sumi));
    }
    return sum;
}

}  // namespace

// ---- public ----

void dequantize_row_ref(DType t, const void* src, float* dst, int64_t n) {
    const DTypeInfo* info = dtype_info(t);
    HKV_ASSERT(info && n % info->block_size == 0, "dequantize_row_ref: bad type %u or n %lld",
               unsigned(t), (long long)n);
    const int64_t nb = n / info->block_size;
    switch (t) {
        case DType::kF32: std::memcpy(dst, src, size_t(n) * 4); return;
        case DType::kF16: {
            const uint16_t* s = static_cast<const uint16_t*>(src);
            for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(s[i]);
            return;
        }
        case DType::kBF16: {
            const uint16_t* s = static_cast<const uint16_t*>(src);
            for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(s[i]);
            return;
        }
        case DType::kQ4_0: dequant_q4_0(static_cast<const BlockQ4_0*>(src), dst, nb); return;
        case DType::kQ4_1: dequant_q4_1(static_cast<const BlockQ4_1*>(src), dst, nb); return;
        case DType::kQ5_0: dequant_q5_0(static_cast<const BlockQ5_0*>(src), dst, nb); return;
        case DType::kQ5_1: dequant_q5_1(static_cast<const BlockQ5_1*>(src), dst, nb); return;
        case DType::kQ8_0: dequant_q8(static_cast<const BlockQ8_0*>(src), dst, nb); return;
        case DType::kQ8_1: dequant_q8(static_cast<const BlockQ8_1*>(src), dst, nb); return;
        case DType::kQ4_K: dequant_q4_k(static_cast<const BlockQ4_K*>(src), dst, nb); return;
        case DType::kQ5_K: dequant_q5_k(static_cast<const BlockQ5_K*>(src), dst, nb); return;
        case DType::kQ6_K: dequant_q6_k(static_cast<const BlockQ6_K*>(src), dst, nb); return;
        case DType::kQ8_K: dequant_q8_k(static_cast<const BlockQ8_K*>(src), dst, nb); return;
        case DType::kQ2_K: dequant_q2_k(static_cast<const BlockQ2_K*>(src), dst, nb); return;
        case DType::kQ3_K: dequant_q3_k(static_cast<const BlockQ3_K*>(src), dst, nb); return;
        case DType::kIQ4_NL: dequant_iq4_nl(static_cast<const BlockIQ4_NL*>(src), dst, nb); return;
        case DType::kIQ4_XS: dequant_iq4_xs(static_cast<const BlockIQ4_XS*>(src), dst, nb); return;
        default: break;
    }
    HKV_ASSERT(false, "dequantize_row_ref: unsupported type %s", dtype_name(t));
}

void quantize_row_ref(DType t, const float* src, void* dst, int64_t n) {
    const DTypeInfo* info = dtype_info(t);
    HKV_ASSERT(info && n % info->block_size == 0, "quantize_row_ref: bad type %u or n %lld",
               unsigned(t), (long long)n);
    const int64_t nb = n / info->block_size;
    switch (t) {
        case DType::kF32: std::memcpy(dst, src, size_t(n) * 4); return;
        case DType::kF16: {
            uint16_t* d = static_cast<uint16_t*>(dst);
            for (int64_t i = 0; i < n; ++i) d[i] = fp32_to_fp16(src[i]);
            return;
        }
        case DType::kBF16: {
            uint16_t* d = static_cast<uint16_t*>(dst);
            for (int64_t i = 0; i < n; ++i) d[i] = fp32_to_bf16(src[i]);
            return;
        }
        case DType::kQ4_0: quant_q4_0(src, static_cast<BlockQ4_0*>(dst), nb); return;
        case DType::kQ4_1: quant_q4_1(src, static_cast<BlockQ4_1*>(dst), nb); return;
        case DType::kQ5_0: quant_q5_0(src, static_cast<BlockQ5_0*>(dst), nb); return;
        case DType::kQ5_1: quant_q5_1(src, static_cast<BlockQ5_1*>(dst), nb); return;
        case DType::kQ8_0: quant_q8(src, static_cast<BlockQ8_0*>(dst), nb); return;
        case DType::kQ8_1: quant_q8(src, static_cast<BlockQ8_1*>(dst), nb); return;
        case DType::kQ4_K: quantize_q4_k_ref(src, static_cast<BlockQ4_K*>(dst), nb); return;
        case DType::kQ5_K: quantize_q5_k_ref(src, static_cast<BlockQ5_K*>(dst), nb); return;
        case DType::kQ6_K: quantize_q6_k_ref(src, static_cast<BlockQ6_K*>(dst), nb); return;
        case DType::kQ8_K: quant_q8_k(src, static_cast<BlockQ8_K*>(dst), nb); return;
        case DType::kQ2_K: quantize_q2_k_ref(src, static_cast<BlockQ2_K*>(dst), nb); return;
        case DType::kQ3_K: quantize_q3_k_ref(src, static_cast<BlockQ3_K*>(dst), nb); return;
        case DType::kIQ4_NL: quantize_iq4_nl_ref(src, static_cast<BlockIQ4_NL*>(dst), nb); return;
        case DType::kIQ4_XS: quantize_iq4_xs_ref(src, static_cast<BlockIQ4_XS*>(dst), nb); return;
        default: break;
    }
    HKV_ASSERT(false, "quantize_row_ref: unsupported type %s", dtype_name(t));
}

DType vec_dot_type(DType t) {
    switch (t) {
        case DType::kQ4_0:
        case DType::kQ5_0:
        case DType::kQ8_0:
        case DType::kIQ4_NL: return DType::kQ8_0;
        case DType::kQ4_1:
        case DType::kQ5_1: return DType::kQ8_1;
        case DType::kQ2_K:
        case DType::kQ3_K:
        case DType::kQ4_K:
        case DType::kQ5_K:
        case DType::kQ6_K:
        case DType::kIQ4_XS: return DType::kQ8_K;
        case DType::kF16: return DType::kF16;
        case DType::kBF16: return DType::kBF16;
        default: return DType::kF32;
    }
}

float vec_dot_ref(DType t, int64_t n, const void* w, const void* xq) {
    const DTypeInfo* info = dtype_info(t);
    HKV_ASSERT(info && n % info->block_size == 0, "vec_dot_ref: bad type %u or n %lld",
               unsigned(t), (long long)n);
    const int64_t nb = n / info->block_size;
    switch (t) {
        case DType::kF32: {
            const float* a = static_cast<const float*>(w);
            const float* b = static_cast<const float*>(xq);
            double s = 0;
            for (int64_t i = 0; i < n; ++i) s += double(a[i]) * double(b[i]);
            return float(s);
        }
        case DType::kF16:
        case DType::kBF16: {
            const uint16_t* a = static_cast<const uint16_t*>(w);
            const uint16_t* b = static_cast<const uint16_t*>(xq);
            const bool half = t == DType::kF16;
            double s = 0;
            for (int64_t i = 0; i < n; ++i) {
                const float fa = half ? fp16_to_fp32(a[i]) : bf16_to_fp32(a[i]);
                const float fb = half ? fp16_to_fp32(b[i]) : bf16_to_fp32(b[i]);
                s += double(fa) * double(fb);
            }
            return float(s);
        }
        case DType::kQ4_0:
            return float(dot_q4_0_q8_0(static_cast<const BlockQ4_0*>(w), static_cast<const BlockQ8_0*>(xq), nb));
        case DType::kQ4_1:
            return float(dot_q4_1_q8_1(static_cast<const BlockQ4_1*>(w), static_cast<const BlockQ8_1*>(xq), nb));
        case DType::kQ5_0:
            return float(dot_q5_0_q8_0(static_cast<const BlockQ5_0*>(w), static_cast<const BlockQ8_0*>(xq), nb));
        case DType::kQ5_1:
            return float(dot_q5_1_q8_1(static_cast<const BlockQ5_1*>(w), static_cast<const BlockQ8_1*>(xq), nb));
        case DType::kQ8_0:
            return float(dot_q8_0_q8_0(static_cast<const BlockQ8_0*>(w), static_cast<const BlockQ8_0*>(xq), nb));
        case DType::kQ4_K:
            return float(dot_q45_k_q8_k<false>(static_cast<const BlockQ4_K*>(w),
                                               static_cast<const BlockQ8_K*>(xq), nb));
        case DType::kQ5_K:
            return float(dot_q45_k_q8_k<true>(static_cast<const BlockQ5_K*>(w),
                                              static_cast<const BlockQ8_K*>(xq), nb));
        case DType::kQ6_K:
            return float(dot_q6_k_q8_k(static_cast<const BlockQ6_K*>(w), static_cast<const BlockQ8_K*>(xq), nb));
        case DType::kQ2_K:
            return float(dot_q2_k_q8_k(static_cast<const BlockQ2_K*>(w), static_cast<const BlockQ8_K*>(xq), nb));
        case DType::kQ3_K:
            return float(dot_q3_k_q8_k(static_cast<const BlockQ3_K*>(w), static_cast<const BlockQ8_K*>(xq), nb));
        case DType::kIQ4_NL:
            return float(dot_iq4_nl_q8_0(static_cast<const BlockIQ4_NL*>(w), static_cast<const BlockQ8_0*>(xq), nb));
        case DType::kIQ4_XS:
            return float(dot_iq4_xs_q8_k(static_cast<const BlockIQ4_XS*>(w), static_cast<const BlockQ8_K*>(xq), nb));
        default: break;
    }
    HKV_ASSERT(false, "vec_dot_ref: unsupported type %s", dtype_name(t));
    return 0.0f;
}

}  // namespace hkv
