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

// y[i] += a * x[i] over n floats (a fused multiply-add per element).
inline void axpy_f32(float a, const float* x, float* y, int32_t n) {
    const __m256 va = _mm256_set1_ps(a);
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; ++i) y[i] = std::fma(a, x[i], y[i]);
}

}  // namespace
}  // namespace hkv
