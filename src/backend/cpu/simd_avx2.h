// backend/cpu/simd_avx2.h — AVX2 helpers of the attention and row ops: a vectorised e^x, horizontal
// sum and max. In an anonymous namespace, as core/vec.h: every AVX2 file inlines its own copy.
#pragma once

#include <immintrin.h>

#include <cmath>

#include "backend/cpu/exp_poly.h"

namespace hkv {
namespace {

// ---- SIMD helpers ----
namespace simd {

// e^x, max relative error ~2e-7 over the float range: x = n*ln2 + r with |r| <= ln2/2, e^r by a
// degree-6 minimax polynomial (Cephes expf coefficients), 2^n through the exponent field.
// x < -87.34 gives 0 (true result is subnormal), x > 88.02 gives +inf, nan stays nan.
inline __m256 exp(__m256 x) {
    // hi keeps n <= 127 so 2^n stays a normal float
    const __m256 hi = _mm256_set1_ps(88.02f), lo = _mm256_set1_ps(-87.3365447504f);
    const __m256 xc = _mm256_max_ps(_mm256_min_ps(x, hi), lo);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(exp_poly::kLog2e)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(exp_poly::kLn2Hi), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(exp_poly::kLn2Lo), r);
    __m256 y = _mm256_set1_ps(exp_poly::kP[0]);
    for (int i = 1; i < exp_poly::kDegree; ++i) y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(exp_poly::kP[i]));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
    y = _mm256_andnot_ps(_mm256_cmp_ps(x, lo, _CMP_LT_OQ), y);                  // underflow -> 0
    y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));           // nan -> nan
}

inline float exp_scalar(float x) { return _mm256_cvtss_f32(exp(_mm256_set1_ps(x))); }

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

inline float hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}

}  // namespace simd

}  // namespace
}  // namespace hkv
