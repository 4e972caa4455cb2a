// backend/cpu/attn_avx512.cpp — AVX-512 QK dot products and PV accumulation over f16, q8_0 and q4_0
// KV rows (attn_kernels.h).
//
// Compiled with AVX-512 flags (the _avx512.cpp suffix) and reached only after runtime detection;
// like quant_avx512.cpp it uses nothing inline from shared headers. 16 f32 lanes per vector:
//   qk: blocks of (up to) 4 query rows x 4 keys, 16 accumulators over Dp / 16 FMA steps, reduced by
//       one transposing 16 -> 1 tree (8 + 4 + 2 + 1 shuffle/add pairs) instead of a horizontal sum
//       per dot; 1-3 leftover keys reduce one accumulator each.
//   pv: 64 columns (4 vectors) of up to 4 rows held in registers while the slots stream past.
// GCC 12 reports its own intrinsics' deliberately undefined upper halves (as in quant_avx512.cpp).
#if !defined(__clang__)  // clang has no -Wmaybe-uninitialized
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <immintrin.h>

#include <cstring>

#include "backend/cpu/attn_kernels.h"
#include "backend/cpu/quant_blocks.h"

namespace hkv::attn512 {
namespace {

// Sixteen values d .. d+15 (d a multiple of 16) of a row of kind 1 (f16), 3 (q8_0), 4 (q4_0) or 5
// (hq4) as f32. Block types: block d / 32 is (f16 scale, payload); q8_0 values are int8, q4_0 values
// the low (first half of the block) or high (second half) nibbles of its 16 bytes, minus 8; hq4
// values the iq4_nl levels those nibbles index (the rotated row's values, kv_hq4.h).
template <int kKind>
inline __m512 load16(const void* row, int64_t d) {
    if constexpr (kKind == 1) {
        return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(row) + d)));
    } else {
        constexpr int kBlockBytes = kKind == 3 ? 34 : 18;
        const uint8_t* b = static_cast<const uint8_t*>(row) + (d >> 5) * kBlockBytes;
        const __m512 scale = _mm512_cvtph_ps(_mm256_set1_epi16(static_cast<short>(*reinterpret_cast<const uint16_t*>(b))));
        if constexpr (kKind == 3) {
            const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2 + (d & 31)));
            return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(x)), scale);
        } else if constexpr (kKind == 5) {  // the nibbles index a 16-float table: one permute, no convert
            const __m512i w = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2)));
            const __m512i nib = (d & 31) ? _mm512_srli_epi32(w, 4) : _mm512_and_si512(w, _mm512_set1_epi32(15));
            const __m512 levels = _mm512_load_ps(kIq4nlLevelsF32.v);
            return _mm512_mul_ps(_mm512_permutexvar_ps(nib, levels), scale);
        } else {
            const __m512i w = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2)));
            const __m512i nib = (d & 31) ? _mm512_srli_epi32(w, 4) : _mm512_and_si512(w, _mm512_set1_epi32(15));
            return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(nib, _mm512_set1_epi32(8))), scale);
        }
    }
}

// Lane 4q + k of the result = sum of the 16 lanes of v[q + 4k].
inline __m512 reduce16(const __m512 v[16]) {
    __m512 w[8], x[4], y[2];
    for (int j = 0; j < 8; ++j)  // w[j]: lanes 0-7 partial v[2j], 8-15 partial v[2j+1]
        w[j] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * j], v[2 * j + 1], 0x44),
                             _mm512_shuffle_f32x4(v[2 * j], v[2 * j + 1], 0xEE));
    for (int j = 0; j < 4; ++j)  // x[j]: 128-bit lane q = partial v[4j + q]
        x[j] = _mm512_add_ps(_mm512_shuffle_f32x4(w[2 * j], w[2 * j + 1], 0x88),
                             _mm512_shuffle_f32x4(w[2 * j], w[2 * j + 1], 0xDD));
    for (int j = 0; j < 2; ++j)  // y[j], lane q: [0..1] partial v[8j + q], [2..3] partial v[8j + 4 + q]
        y[j] = _mm512_add_ps(_mm512_shuffle_ps(x[2 * j], x[2 * j + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(x[2 * j], x[2 * j + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    return _mm512_add_ps(_mm512_shuffle_ps(y[0], y[1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_ps(y[0], y[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

template <int R, int kKind>
void qk_rows(const float* q, const void* const* k, int n, int64_t Dp, float* sc, int sc_stride) {
    int j = 0;
    for (; j + 4 <= n; j += 4) {
        __m512 a[16];  // a[r + 4c] = partial q[r] · k[j + c]; rows >= R stay zero
        for (int i = 0; i < 16; ++i) a[i] = _mm512_setzero_ps();
        for (int64_t d = 0; d < Dp; d += 16) {
            __m512 kv[4];
            for (int c = 0; c < 4; ++c) kv[c] = load16<kKind>(k[j + c], d);
            for (int r = 0; r < R; ++r) {
                const __m512 qv = _mm512_loadu_ps(q + r * Dp + d);
                for (int c = 0; c < 4; ++c) a[r + 4 * c] = _mm512_fmadd_ps(qv, kv[c], a[r + 4 * c]);
            }
        }
        alignas(64) float t[16];  // t[4r + c] = q[r] · k[j + c]
        _mm512_store_ps(t, reduce16(a));
        for (int r = 0; r < R; ++r) std::memcpy(sc + r * sc_stride + j, t + 4 * r, 4 * sizeof(float));
    }
    for (; j < n; ++j) {
        __m512 a[R];
        for (int r = 0; r < R; ++r) a[r] = _mm512_setzero_ps();
        for (int64_t d = 0; d < Dp; d += 16) {
            const __m512 kv = load16<kKind>(k[j], d);
            for (int r = 0; r < R; ++r) a[r] = _mm512_fmadd_ps(_mm512_loadu_ps(q + r * Dp + d), kv, a[r]);
        }
        for (int r = 0; r < R; ++r) sc[r * sc_stride + j] = _mm512_reduce_add_ps(a[r]);
    }
}

// Columns [d0, d0 + 16 * NV) of R rows.
template <int R, int NV, int kKind>
void pv_cols(const float* p, int p_stride, const float* alpha, const void* const* v, int n, int64_t Dp,
             int64_t d0, float* acc) {
    __m512 a[R][NV];
    for (int r = 0; r < R; ++r) {
        const __m512 al = _mm512_set1_ps(alpha[r]);
        for (int c = 0; c < NV; ++c) a[r][c] = _mm512_mul_ps(_mm512_loadu_ps(acc + r * Dp + d0 + 16 * c), al);
    }
    for (int j = 0; j < n; ++j) {
        __m512 vv[NV];
        for (int c = 0; c < NV; ++c) vv[c] = load16<kKind>(v[j], d0 + 16 * c);
        for (int r = 0; r < R; ++r) {
            const __m512 pr = _mm512_set1_ps(p[r * p_stride + j]);
            for (int c = 0; c < NV; ++c) a[r][c] = _mm512_fmadd_ps(pr, vv[c], a[r][c]);
        }
    }
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < NV; ++c) _mm512_storeu_ps(acc + r * Dp + d0 + 16 * c, a[r][c]);
}

template <int R, int kKind>
void pv_rows(const float* p, int p_stride, const float* alpha, const void* const* v, int n, int64_t Dp,
             float* acc) {
    int64_t d = 0;
    for (; d + 64 <= Dp; d += 64) pv_cols<R, 4, kKind>(p, p_stride, alpha, v, n, Dp, d, acc);
    switch ((Dp - d) / 16) {
        case 3: pv_cols<R, 3, kKind>(p, p_stride, alpha, v, n, Dp, d, acc); break;
        case 2: pv_cols<R, 2, kKind>(p, p_stride, alpha, v, n, Dp, d, acc); break;
        case 1: pv_cols<R, 1, kKind>(p, p_stride, alpha, v, n, Dp, d, acc); break;
        default: break;
    }
}

template <int kKind>
void qk_kind(const float* q, int n_row, const void* const* krows, int n, int64_t Dp, float* sc, int sc_stride) {
    switch (n_row) {
        case 4: qk_rows<4, kKind>(q, krows, n, Dp, sc, sc_stride); break;
        case 3: qk_rows<3, kKind>(q, krows, n, Dp, sc, sc_stride); break;
        case 2: qk_rows<2, kKind>(q, krows, n, Dp, sc, sc_stride); break;
        case 1: qk_rows<1, kKind>(q, krows, n, Dp, sc, sc_stride); break;
        default: break;
    }
}

template <int kKind>
void pv_kind(const float* p, int p_stride, const float* alpha, int n_row, const void* const* vrows, int n,
             int64_t Dp, float* acc) {
    switch (n_row) {
        case 4: pv_rows<4, kKind>(p, p_stride, alpha, vrows, n, Dp, acc); break;
        case 3: pv_rows<3, kKind>(p, p_stride, alpha, vrows, n, Dp, acc); break;
        case 2: pv_rows<2, kKind>(p, p_stride, alpha, vrows, n, Dp, acc); break;
        case 1: pv_rows<1, kKind>(p, p_stride, alpha, vrows, n, Dp, acc); break;
        default: break;
    }
}

}  // namespace

void qk(int kind, const float* q, int n_row, const void* const* krows, int n, int64_t Dp, float* sc, int sc_stride) {
    switch (kind) {
        case 1: qk_kind<1>(q, n_row, krows, n, Dp, sc, sc_stride); break;
        case 3: qk_kind<3>(q, n_row, krows, n, Dp, sc, sc_stride); break;
        case 4: qk_kind<4>(q, n_row, krows, n, Dp, sc, sc_stride); break;
        case 5: qk_kind<5>(q, n_row, krows, n, Dp, sc, sc_stride); break;
        default: break;
    }
}

void pv(int kind, const float* p, int p_stride, const float* alpha, int n_row, const void* const* vrows, int n,
        int64_t Dp, float* acc) {
    switch (kind) {
        case 1: pv_kind<1>(p, p_stride, alpha, n_row, vrows, n, Dp, acc); break;
        case 3: pv_kind<3>(p, p_stride, alpha, n_row, vrows, n, Dp, acc); break;
        case 4: pv_kind<4>(p, p_stride, alpha, n_row, vrows, n, Dp, acc); break;
        case 5: pv_kind<5>(p, p_stride, alpha, n_row, vrows, n, Dp, acc); break;
        default: break;
    }
}

}  // namespace hkv::attn512
