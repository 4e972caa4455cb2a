// core/vec.h — small f32 vector helpers shared by the backend and the policies, with a fixed
// summation order (AVX2 FMA lanes, then the lanes left to right, then the tail), so the same
// inputs always give the same bits whoever calls them. In an anonymous namespace, as
// backend/cpu/quant_rows.h: every file (AVX-512 ones included) inlines its own copy, and no
// linker-merged copy compiled for a wider ISA can reach an AVX2-only caller.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>

namespace hkv {
namespace {

// sum a[i] * b[i] over n floats.
inline float dot_f32(const float* a, const float* b, int32_t n) {
    __m256 acc = _mm256_setzero_ps();
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    alignas(32) float t[8];
    _mm256_store_ps(t, acc);
    float s = t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}

// out[j] = dot_f32(a, b + j * n, n) for the 8 rows j of b ([8, n], contiguous), bit for bit: each
// row's FMA chain runs in dot_f32's order, and an 8 x 8 transpose turns the lane sums into
// v0 + v1 + ... + v7 added left to right, lane j holding row j, as dot_f32's scalar sum does. The
// eight independent chains keep the FMA units busy where one dot_f32 waits on its own latency.
// n % 8 == 0.
inline void dot8_f32(const float* a, const float* b, int32_t n, float* out) {
    __m256 acc[8];
    for (int j = 0; j < 8; ++j) acc[j] = _mm256_setzero_ps();
    for (int32_t i = 0; i < n; i += 8) {
        const __m256 va = _mm256_loadu_ps(a + i);
        for (int j = 0; j < 8; ++j) acc[j] = _mm256_fmadd_ps(va, _mm256_loadu_ps(b + size_t(j) * size_t(n) + size_t(i)), acc[j]);
    }
    // transpose: t_k lane j = acc[j] lane k
    const __m256 u0 = _mm256_unpacklo_ps(acc[0], acc[1]), u1 = _mm256_unpackhi_ps(acc[0], acc[1]);
    const __m256 u2 = _mm256_unpacklo_ps(acc[2], acc[3]), u3 = _mm256_unpackhi_ps(acc[2], acc[3]);
    const __m256 u4 = _mm256_unpacklo_ps(acc[4], acc[5]), u5 = _mm256_unpackhi_ps(acc[4], acc[5]);
    const __m256 u6 = _mm256_unpacklo_ps(acc[6], acc[7]), u7 = _mm256_unpackhi_ps(acc[6], acc[7]);
    const __m256 w0 = _mm256_shuffle_ps(u0, u2, 0x44), w1 = _mm256_shuffle_ps(u0, u2, 0xEE);
    const __m256 w2 = _mm256_shuffle_ps(u1, u3, 0x44), w3 = _mm256_shuffle_ps(u1, u3, 0xEE);
    const __m256 w4 = _mm256_shuffle_ps(u4, u6, 0x44), w5 = _mm256_shuffle_ps(u4, u6, 0xEE);
    const __m256 w6 = _mm256_shuffle_ps(u5, u7, 0x44), w7 = _mm256_shuffle_ps(u5, u7, 0xEE);
    const __m256 t0 = _mm256_permute2f128_ps(w0, w4, 0x20), t4 = _mm256_permute2f128_ps(w0, w4, 0x31);
    const __m256 t1 = _mm256_permute2f128_ps(w1, w5, 0x20), t5 = _mm256_permute2f128_ps(w1, w5, 0x31);
    const __m256 t2 = _mm256_permute2f128_ps(w2, w6, 0x20), t6 = _mm256_permute2f128_ps(w2, w6, 0x31);
    const __m256 t3 = _mm256_permute2f128_ps(w3, w7, 0x20), t7 = _mm256_permute2f128_ps(w3, w7, 0x31);
    __m256 s = _mm256_add_ps(t0, t1);
    s = _mm256_add_ps(s, t2);
    s = _mm256_add_ps(s, t3);
    s = _mm256_add_ps(s, t4);
    s = _mm256_add_ps(s, t5);
    s = _mm256_add_ps(s, t6);
    s = _mm256_add_ps(s, t7);
    _mm256_storeu_ps(out, s);
}

// out[j] = dot_f32(a, b + j * n, n) for j in [0, m) (b: [m, n] contiguous), bit for bit: dot8_f32
// over whole groups of 8 rows when n % 8 == 0, dot_f32 for the rest.
inline void dots_f32(const float* a, const float* b, int32_t n, int64_t m, float* out) {
    int64_t j = 0;
    if (n % 8 == 0) {
        for (; j + 8 <= m; j += 8) dot8_f32(a, b + size_t(j) * size_t(n), n, out + j);
    }
    for (; j < m; ++j) out[j] = dot_f32(a, b + size_t(j) * size_t(n), n);
}

// y[i] += a * x[i] over n floats (a fused multiply-add per element).
inline void axpy_f32(float a, const float* x, float* y, int32_t n) {
    const __m256 va = _mm256_set1_ps(a);
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; ++i) y[i] = std::fma(a, x[i], y[i]);
}

}  // namespace
}  // namespace hkv
