// backend/cpu/ops.cpp — fast row ops (rmsnorm, softmax, swiglu, add), RoPE and KV row conversion.
//
// AVX2 + FMA + F16C (the project floor). HKV_ISA=scalar routes to the references. Numerics follow
// ggml where it matters for matching its logits: rmsnorm and softmax sums in double, silu as
// x / (1 + exp(-x)) with a true division, RoPE angles built the way ggml's rope cache builds them.
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "backend/cpu/kv_hq4.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/quant.h"
#include "backend/cpu/simd_avx2.h"
#include "core/assert.h"
#include "core/cpu.h"
#include "core/fp16.h"

namespace hkv {

namespace {

bool use_ref() { return cpu_isa() == Isa::kScalar; }


inline double hsum_pd(__m256d v) {
    const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

}  // namespace

void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps) {
    if (use_ref()) return ref::rmsnorm(x, w, y, n, eps);
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    __m256d a2 = _mm256_setzero_pd(), a3 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
        const __m256d d0 = _mm256_cvtps_pd(_mm256_castps256_ps128(v0));
        const __m256d d1 = _mm256_cvtps_pd(_mm256_extractf128_ps(v0, 1));
        const __m256d d2 = _mm256_cvtps_pd(_mm256_castps256_ps128(v1));
        const __m256d d3 = _mm256_cvtps_pd(_mm256_extractf128_ps(v1, 1));
        a0 = _mm256_fmadd_pd(d0, d0, a0);
        a1 = _mm256_fmadd_pd(d1, d1, a1);
        a2 = _mm256_fmadd_pd(d2, d2, a2);
        a3 = _mm256_fmadd_pd(d3, d3, a3);
    }
    double sum = hsum_pd(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
    for (; i < n; ++i) sum += double(x[i]) * double(x[i]);
    const float mean = float(sum / double(n));
    const float scale = 1.0f / std::sqrt(mean + eps);
    const __m256 vs = _mm256_set1_ps(scale);
    i = 0;
    if (w) {
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs),
                                                  _mm256_loadu_ps(w + i)));
        for (; i < n; ++i) y[i] = (x[i] * scale) * w[i];
    } else {
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vs));
        for (; i < n; ++i) y[i] = x[i] * scale;
    }
}

void softmax(float* x, int64_t n) {
    if (n <= 0) return;
    if (use_ref()) return ref::softmax(x, n);
    __m256 vm = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
    float mx = simd::hmax(vm);
    for (; i < n; ++i) mx = std::max(mx, x[i]);
    const __m256 vmx = _mm256_set1_ps(mx);
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = simd::exp(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmx));
        _mm256_storeu_ps(x + i, e);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double sum = hsum_pd(_mm256_add_pd(s0, s1));
    for (; i < n; ++i) {
        x[i] = simd::exp_scalar(x[i] - mx);
        sum += x[i];
    }
    const float inv = float(1.0 / sum);
    const __m256 vinv = _mm256_set1_ps(inv);
    i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vinv));
    for (; i < n; ++i) x[i] *= inv;
}

void swiglu(float* gate, const float* up, int64_t n) {
    if (use_ref()) return ref::swiglu(gate, up, n);
    const __m256 one = _mm256_set1_ps(1.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i);
        const __m256 e = simd::exp(_mm256_sub_ps(_mm256_setzero_ps(), g));
        const __m256 silu = _mm256_div_ps(g, _mm256_add_ps(one, e));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(silu, _mm256_loadu_ps(up + i)));
    }
    for (; i < n; ++i) {
        const float g = gate[i];
        gate[i] = g / (1.0f + simd::exp_scalar(-g)) * up[i];
    }
}

void geglu(float* gate, const float* up, int64_t n) {
    if (use_ref()) return ref::geglu(gate, up, n);
    // gelu(x) = x / (1 + e^(-2z)), z = sqrt(2/pi) (x + 0.044715 x^3): tanh through one exp
    const float k2 = -2.0f * 0.7978845608028654f, c = 0.044715f;
    const __m256 one = _mm256_set1_ps(1.0f), vk2 = _mm256_set1_ps(k2), vc = _mm256_set1_ps(c);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(gate + i);
        const __m256 inner = _mm256_fmadd_ps(_mm256_mul_ps(vc, x), _mm256_mul_ps(x, x), x);
        const __m256 e = simd::exp(_mm256_mul_ps(vk2, inner));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(_mm256_div_ps(x, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
    }
    for (; i < n; ++i) {
        const float x = gate[i];
        gate[i] = x / (1.0f + simd::exp_scalar(k2 * (x + c * x * x * x))) * up[i];
    }
}

void add_inplace(float* y, const float* x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
    for (; i < n; ++i) y[i] += x[i];
}

// Per token: cos/sin of the n_rot/2 angles are computed once (same formulas as ref::rope) and
// applied to every head. kNorm uses tables expanded to pairs so one FMA rotates 4 pairs.
void rope(const RopeParams& p, float* x, const int32_t* pos, int64_t n_tok, int64_t n_head,
          int64_t head_dim) {
    if (use_ref()) return ref::rope(p, x, pos, n_tok, n_head, head_dim);
    HKV_ASSERT(p.n_rot > 0 && p.n_rot % 2 == 0 && p.n_rot <= head_dim, "bad n_rot %d",
               int(p.n_rot));
    const int64_t half = p.n_rot / 2;
    const float theta_scale = std::pow(p.freq_base, -2.0f / float(p.n_rot));
    // kNeox: cs/sn [half]; kNorm: cs = (c0,c0,c1,c1,..), sn = (-s0,s0,-s1,s1,..) [n_rot]
    std::vector<float> cs(size_t(p.n_rot)), sn(size_t(p.n_rot));
    for (int64_t it = 0; it < n_tok; ++it) {
        float theta = float(pos[it]);
        for (int64_t i = 0; i < half; ++i) {
            const float ff = p.freq_factors ? p.freq_factors[i] : 1.0f;
            const float th = p.freq_scale * (theta / ff);
            const float c = std::cos(th) * p.attn_factor, s = std::sin(th) * p.attn_factor;
            theta *= theta_scale;
            if (p.style == RopeStyle::kNorm) {
                cs[size_t(2 * i)] = c, cs[size_t(2 * i + 1)] = c;
                sn[size_t(2 * i)] = -s, sn[size_t(2 * i + 1)] = s;
            } else {
                cs[size_t(i)] = c, sn[size_t(i)] = s;
            }
        }
        for (int64_t ih = 0; ih < n_head; ++ih) {
            float* r = x + (it * n_head + ih) * head_dim;  // [head_dim]
            if (p.style == RopeStyle::kNorm) {
                int64_t d = 0;
                for (; d + 8 <= p.n_rot; d += 8) {
                    const __m256 v = _mm256_loadu_ps(r + d);
                    const __m256 sw = _mm256_permute_ps(v, 0xB1);  // (b, a) per pair
                    const __m256 t = _mm256_mul_ps(sw, _mm256_loadu_ps(sn.data() + d));
                    _mm256_storeu_ps(r + d, _mm256_fmadd_ps(v, _mm256_loadu_ps(cs.data() + d), t));
                }
                for (; d < p.n_rot; d += 2) {
                    const float a = r[d], b = r[d + 1], c = cs[size_t(d)], s = sn[size_t(d + 1)];
                    r[d] = a * c - b * s;
                    r[d + 1] = a * s + b * c;
                }
            } else {
                float* r1 = r + half;
                int64_t i = 0;
                for (; i + 8 <= half; i += 8) {
                    const __m256 a = _mm256_loadu_ps(r + i), b = _mm256_loadu_ps(r1 + i);
                    const __m256 c = _mm256_loadu_ps(cs.data() + i);
                    const __m256 s = _mm256_loadu_ps(sn.data() + i);
                    _mm256_storeu_ps(r + i, _mm256_fmsub_ps(a, c, _mm256_mul_ps(b, s)));
                    _mm256_storeu_ps(r1 + i, _mm256_fmadd_ps(a, s, _mm256_mul_ps(b, c)));
                }
                for (; i < half; ++i) {
                    const float a = r[i], b = r1[i], c = cs[size_t(i)], s = sn[size_t(i)];
                    r[i] = a * c - b * s;
                    r1[i] = a * s + b * c;
                }
            }
        }
    }
}

void exp_shifted(float* x, int64_t n, float sub) {
    const __m256 vs = _mm256_set1_ps(sub);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, simd::exp(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs)));
    for (; i < n; ++i) x[i] = simd::exp_scalar(x[i] - sub);
}

void kv_convert_row(DType kv_type, const float* src, void* dst, int64_t n) {
    switch (kv_type) {
        case DType::kF32: std::memcpy(dst, src, size_t(n) * sizeof(float)); return;
        case DType::kF16: {
            uint16_t* d = static_cast<uint16_t*>(dst);  // [n] f16
            int64_t i = 0;
            for (; i + 8 <= n; i += 8)
                _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i),
                                 _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
            for (; i < n; ++i) d[i] = fp32_to_fp16(src[i]);
            return;
        }
        case DType::kBF16: {
            uint16_t* d = static_cast<uint16_t*>(dst);  // [n] bf16
            const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
            const __m256i inf = _mm256_set1_epi32(0x7f800000);
            const __m256i bias = _mm256_set1_epi32(0x7fff), one = _mm256_set1_epi32(1);
            const __m256i qbit = _mm256_set1_epi32(0x40);
            int64_t i = 0;
            for (; i + 16 <= n; i += 16) {
                __m256i h[2];
                for (int k = 0; k < 2; ++k) {
                    const __m256i x = _mm256_castps_si256(_mm256_loadu_ps(src + i + 8 * k));
                    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), one);
                    const __m256i r = _mm256_srli_epi32(
                        _mm256_add_epi32(x, _mm256_add_epi32(bias, lsb)), 16);
                    const __m256i nan_mask = _mm256_cmpgt_epi32(_mm256_and_si256(x, abs_mask), inf);
                    const __m256i qn = _mm256_or_si256(_mm256_srli_epi32(x, 16), qbit);
                    h[k] = _mm256_blendv_epi8(r, qn, nan_mask);
                }
                // packus works per 128-bit lane: (a0 b0 | a1 b1) -> reorder to (a0 a1 b0 b1)
                const __m256i pk = _mm256_permute4x64_epi64(_mm256_packus_epi32(h[0], h[1]), 0xD8);
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i), pk);
            }
            for (; i < n; ++i) d[i] = fp32_to_bf16(src[i]);
            return;
        }
        case DType::kQ8_0:  // llama.cpp's quantize_row_q8_0 / q4_0 rounding (quant_ref.cpp)
        case DType::kQ4_0: quant_kernels().quantize_row(kv_type, src, dst, n); return;
        case DType::kHQ4: hq4_quantize_row(src, dst, n); return;  // rotated, then iq4_nl blocks
        default: HKV_ASSERT(false, "kv type %s unsupported", dtype_name(kv_type));
    }
}

}  // namespace hkv
