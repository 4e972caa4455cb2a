// backend/cpu/attn_avx512.cpp — AVX-512 QK dot products and PV accumulation over f16, q8_0, q4_0 and
// hq4 KV rows (attn_kernels.h).
//
// Compiled with AVX-512 flags (the _avx512.cpp suffix) and reached only after runtime detection;
// like quant_avx512.cpp it uses nothing inline from shared headers. 16 f32 lanes per vector:
//   qk: blocks of (up to) 4 query rows x 4 keys, 16 accumulators over Dp / 16 FMA steps, reduced by
//       one transposing 16 -> 1 tree (8 + 4 + 2 + 1 shuffle/add pairs) instead of a horizontal sum
//       per dot; 1-3 leftover keys reduce one accumulator each.
//   pv: 64 columns (4 vectors) of up to 4 rows held in registers while the slots stream past; for
//       q8_0 / q4_0 rows the block scales are multiplied into the softmax weights first.
//   qk_i8: q8_0 / q4_0 keys against block-quantized queries, 16 keys transposed in registers (a
//       16 x 16 transpose of 4-byte words), then one VNNI dot (vpdpbusd) per 4 columns and row.
// GCC 12 reports its own intrinsics' deliberately undefined upper halves (as in quant_avx512.cpp).
#if !defined(__clang__)  // clang has no -Wmaybe-uninitialized
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/attn_kernels.h"
#include "backend/cpu/exp_poly.h"
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

// Sixteen values d .. d+15 of a q8_0 (kKind 3), q4_0 (4) or hq4 (5) row without the block's scale
// (int8, nibble - 8, or the nibble's iq4_nl level) as f32; pv_cols multiplies the scale into the
// softmax weights instead.
template <int kKind>
inline __m512 load16_unscaled(const void* row, int64_t d) {
    constexpr int kBlockBytes = kKind == 3 ? 34 : 18;
    const uint8_t* b = static_cast<const uint8_t*>(row) + (d >> 5) * kBlockBytes + 2;
    if constexpr (kKind == 3)
        return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + (d & 31)))));
    const __m512i w = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b)));
    const __m512i nib = (d & 31) ? _mm512_srli_epi32(w, 4) : _mm512_and_si512(w, _mm512_set1_epi32(15));
    if constexpr (kKind == 5) return _mm512_permutexvar_ps(nib, _mm512_load_ps(kIq4nlLevelsF32.v));
    return _mm512_cvtepi32_ps(_mm512_sub_epi32(nib, _mm512_set1_epi32(8)));
}

// Columns [d0, d0 + 16 * NV) of R rows. For q8_0 / q4_0 / hq4 rows (kFold) the weights w[r][h][j] =
// p[r, j] * d_j(block d0 / 32 + h) are formed once per call, so a slot costs one int -> f32
// conversion per 16 values and one FMA per row (as f16 rows do), not a scale multiply per 16 values;
// d0 is then a multiple of 32.
template <int R, int NV, int kKind>
void pv_cols(const float* p, int p_stride, const float* alpha, const void* const* v, int n, int64_t Dp,
             int64_t d0, float* acc) {
    constexpr bool kFold = kKind >= 3;
    constexpr int kBlockBytes = kKind == 3 ? 34 : 18;
    constexpr int kNb = kFold ? (16 * NV + 31) / 32 : 1;  // blocks the columns touch
    alignas(64) float w[kFold ? R : 1][kNb][kFold ? 64 : 1];  // [R][kNb][kTile] when folding
    if constexpr (kFold) {
        for (int h = 0; h < kNb; ++h) {
            for (int j0 = 0; j0 < n; j0 += 16) {
                const int m = std::min(16, n - j0);
                alignas(32) uint16_t sh[16] = {};
                for (int j = 0; j < m; ++j)
                    std::memcpy(&sh[j], static_cast<const uint8_t*>(v[j0 + j]) + (d0 / 32 + h) * kBlockBytes, 2);
                const __m512 dv = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(sh)));
                const __mmask16 mk = static_cast<__mmask16>((1u << m) - 1);
                for (int r = 0; r < R; ++r)
                    _mm512_store_ps(&w[r][h][j0], _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, p + r * p_stride + j0), dv));
            }
        }
    }
    __m512 a[R][NV];
    for (int r = 0; r < R; ++r) {
        const __m512 al = _mm512_set1_ps(alpha[r]);
        for (int c = 0; c < NV; ++c) a[r][c] = _mm512_mul_ps(_mm512_loadu_ps(acc + r * Dp + d0 + 16 * c), al);
    }
    for (int j = 0; j < n; ++j) {
        __m512 vv[NV];
        if constexpr (kFold) {
            for (int c = 0; c < NV; ++c) vv[c] = load16_unscaled<kKind>(v[j], d0 + 16 * c);
            for (int r = 0; r < R; ++r)
                for (int c = 0; c < NV; ++c) a[r][c] = _mm512_fmadd_ps(_mm512_set1_ps(w[r][c / 2][j]), vv[c], a[r][c]);
        } else {
            for (int c = 0; c < NV; ++c) vv[c] = load16<kKind>(v[j], d0 + 16 * c);
            for (int r = 0; r < R; ++r) {
                const __m512 pr = _mm512_set1_ps(p[r * p_stride + j]);
                for (int c = 0; c < NV; ++c) a[r][c] = _mm512_fmadd_ps(pr, vv[c], a[r][c]);
            }
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

// ---- integer QK (qk_i8) ----

// Columns [64c, 64c + 64) of a q8_0 (kKind 3), q4_0 (4) or hq4 (5) key row as unsigned bytes in
// column order: q8_0 values + 128, q4_0 nibbles, hq4's iq4_nl levels + 128. two = false: only block 2c exists (Dp % 64 == 32); the
// upper 32 bytes are not read from the row (nothing past it) and not used.
template <int kKind>
inline __m512i key_bytes64(const void* row, int64_t c, bool two) {
    if constexpr (kKind == 3) {
        const uint8_t* b = static_cast<const uint8_t*>(row) + 2 * c * 34 + 2;
        const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
        const __m256i hi = two ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 34)) : _mm256_setzero_si256();
        const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
        return _mm512_xor_si512(z, _mm512_set1_epi8(static_cast<char>(0x80)));
    } else {
        const uint8_t* b = static_cast<const uint8_t*>(row) + 2 * c * 18 + 2;
        const __m128i x0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b));
        const __m128i x1 = two ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 18)) : _mm_setzero_si128();
        const __m256i t = _mm256_inserti128_si256(_mm256_castsi128_si256(x0), x1, 1);  // [x0, x1]
        const __m256i m = _mm256_set1_epi8(15);
        const __m256i lo = _mm256_and_si256(t, m);                         // [b0 d0-15, b1 d0-15]
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(t, 4), m);  // [b0 d16-31, b1 d16-31]
        const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
        const __m512i nib = _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));  // [b0 lo, b0 hi, b1 lo, b1 hi]
        if constexpr (kKind == 4) return nib;
        const __m512i levels = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)));
        return _mm512_xor_si512(_mm512_shuffle_epi8(levels, nib), _mm512_set1_epi8(static_cast<char>(0x80)));
    }
}

// In place: r[j] (16 words of key j) -> r[w] (word w of keys 0..15, lane = key).
inline void transpose16(__m512i r[16]) {
    __m512i a[16], b[16];
    for (int i = 0; i < 8; ++i) {
        a[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        a[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; ++i) {  // b[4i + m], 128-bit lane L: word 4L + m of keys 4i .. 4i + 3
        b[4 * i] = _mm512_unpacklo_epi64(a[4 * i], a[4 * i + 2]);
        b[4 * i + 1] = _mm512_unpackhi_epi64(a[4 * i], a[4 * i + 2]);
        b[4 * i + 2] = _mm512_unpacklo_epi64(a[4 * i + 1], a[4 * i + 3]);
        b[4 * i + 3] = _mm512_unpackhi_epi64(a[4 * i + 1], a[4 * i + 3]);
    }
    for (int m = 0; m < 4; ++m) {  // a 4 x 4 transpose of 128-bit lanes
        const __m512i c0 = _mm512_shuffle_i32x4(b[m], b[4 + m], 0x44), c1 = _mm512_shuffle_i32x4(b[m], b[4 + m], 0xEE);
        const __m512i c2 = _mm512_shuffle_i32x4(b[8 + m], b[12 + m], 0x44), c3 = _mm512_shuffle_i32x4(b[8 + m], b[12 + m], 0xEE);
        r[m] = _mm512_shuffle_i32x4(c0, c2, 0x88), r[4 + m] = _mm512_shuffle_i32x4(c0, c2, 0xDD);
        r[8 + m] = _mm512_shuffle_i32x4(c1, c3, 0x88), r[12 + m] = _mm512_shuffle_i32x4(c1, c3, 0xDD);
    }
}

// Scores of keys k[0..15] (n_key <= 16 of them real; the caller pads with valid rows) for every row.
template <int kKind>
void qk_i8_16(const int8_t* qi, const float* qd, const int32_t* qc, int n_row, const void* const* k, int n_key,
              int64_t Dp, float* sc, int sc_stride) {
    constexpr int kBlockBytes = kKind == 3 ? 34 : 18;
    const int64_t nb = Dp / 32;
    const __mmask16 keep = static_cast<__mmask16>((1u << n_key) - 1);
    for (int64_t c = 0; 2 * c < nb; ++c) {
        const bool two = 2 * c + 1 < nb;
        __m512i kt[16];
        for (int j = 0; j < 16; ++j) kt[j] = key_bytes64<kKind>(k[j], c, two);
        transpose16(kt);
        __m512 dk[2];  // the 16 keys' scales of blocks 2c, 2c + 1
        for (int h = 0; h < (two ? 2 : 1); ++h) {
            alignas(32) uint16_t s[16];
            for (int j = 0; j < 16; ++j)
                std::memcpy(&s[j], static_cast<const uint8_t*>(k[j]) + (2 * c + h) * kBlockBytes, 2);
            dk[h] = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(s)));
        }
        for (int r = 0; r < n_row; ++r) {
            const int8_t* qr = qi + r * Dp + 64 * c;
            float* out = sc + r * sc_stride;
            __m512 s = c == 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(keep, out);
            for (int h = 0; h < (two ? 2 : 1); ++h) {
                const int64_t blk = 2 * c + h;
                __m512i acc = _mm512_set1_epi32(qc[r * nb + blk]);
                for (int w = 8 * h; w < 8 * h + 8; ++w) {
                    int32_t qw;
                    std::memcpy(&qw, qr + 4 * w, 4);
                    acc = _mm512_dpbusd_epi32(acc, kt[w], _mm512_set1_epi32(qw));
                }
                const __m512 scale = _mm512_mul_ps(dk[h], _mm512_set1_ps(qd[r * nb + blk]));
                s = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), scale, s);
            }
            _mm512_mask_storeu_ps(out, keep, s);
        }
    }
}

// e^x, 16 lanes: 2^n e^r with n = round(x log2 e) and the polynomial of simd::exp (simd_avx2.h);
// scalef applies 2^n, so large |x| needs no clamping; below the smallest normal result (x < lo) 0,
// -inf included; NaN stays NaN.
inline __m512 exp16(__m512 x) {
    const __m512 lo = _mm512_set1_ps(-87.3365447504f);
    const __m512 xc = _mm512_max_ps(x, lo);
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(exp_poly::kLog2e)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(exp_poly::kLn2Hi), xc);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(exp_poly::kLn2Lo), r);
    __m512 y = _mm512_set1_ps(exp_poly::kP[0]);
    for (int i = 1; i < exp_poly::kDegree; ++i) y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(exp_poly::kP[i]));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    y = _mm512_scalef_ps(y, n);
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, lo, _CMP_NLT_UQ), y);  // x < lo -> 0 (NaN kept: unordered)
}

}  // namespace

float row_max(const float* s, int np) {
    __m512 m = _mm512_set1_ps(-INFINITY);
    int j = 0;
    for (; j + 16 <= np; j += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(s + j));
    if (j < np) m = _mm512_mask_max_ps(m, static_cast<__mmask16>((1u << (np - j)) - 1), m, _mm512_loadu_ps(s + j));
    return _mm512_reduce_max_ps(m);
}

float exp_shift_sum(float* s, int np, float m) {
    const __m512 vm = _mm512_set1_ps(m);
    __m512 sum = _mm512_setzero_ps();
    int j = 0;
    for (; j + 16 <= np; j += 16) {
        const __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(s + j), vm));
        _mm512_storeu_ps(s + j, e);
        sum = _mm512_add_ps(sum, e);
    }
    if (j < np) {
        const __mmask16 k = static_cast<__mmask16>((1u << (np - j)) - 1);
        const __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + j), vm));
        _mm512_mask_storeu_ps(s + j, k, e);
        sum = _mm512_mask_add_ps(sum, k, sum, e);
    }
    return _mm512_reduce_add_ps(sum);
}

void qk_i8(int kind, const int8_t* qi, const float* qd, const int32_t* qc, int n_row, const void* const* krows,
           int n, int64_t Dp, float* sc, int sc_stride) {
    for (int j = 0; j < n; j += 16) {
        const int n_key = std::min(16, n - j);
        const void* k[16];
        for (int i = 0; i < 16; ++i) k[i] = krows[j + std::min(i, n_key - 1)];
        switch (kind) {
            case 3: qk_i8_16<3>(qi, qd, qc, n_row, k, n_key, Dp, sc + j, sc_stride); break;
            case 4: qk_i8_16<4>(qi, qd, qc, n_row, k, n_key, Dp, sc + j, sc_stride); break;
            default: qk_i8_16<5>(qi, qd, qc, n_row, k, n_key, Dp, sc + j, sc_stride); break;
        }
    }
}

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
