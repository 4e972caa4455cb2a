// backend/cpu/repack_avx512.cpp — x16 kernels (repack.h) with AVX-512 VNNI.
//
// Compiled with AVX-512 flags and reached only through x16_kernels_for() after runtime detection;
// like quant_avx512.cpp it uses nothing inline or templated from shared headers (an out-of-line
// AVX-512 copy could be linked into AVX2 callers).
//
// One kernel call covers one group of 16 weight rows and NC (1..4) activation rows. The 16 rows
// are the 16 int32 lanes: each 64-byte weight vector holds 4 quants of every row, the matching 4
// activation bytes are broadcast, and vpdpbusd (u8 x s8) adds the four products into each lane.
//   q4_K: quants are u8 0..15; per 32-element sub-block two chains of 4 vpdpbusd (each lane below
//         2^15, so it is a valid int16) are scaled by the 6-bit sub-block scale with vpdpwssd; the
//         mins go through vpdpwssd on (min 2i, min 2i+1) x (bsum 2i, bsum 2i+1) pairs.
//   q6_K: quants u8 0..63; per 16-element sub-block one chain of 4 vpdpbusd times the int8 scale
//         (vpmulld); the -32 offset is 32 * sum_j scale_j * bsum_j (vpdpwssd on pairs).
//   q8_0: signed weights, so |w| (u8) x (x with the weight's sign) as in the row kernels.
// GCC 12 reports its own intrinsics' deliberately undefined upper halves (as in quant_avx512.cpp).
#if !defined(__clang__)  // clang has no -Wmaybe-uninitialized
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <immintrin.h>

#include <cstring>

#include "backend/cpu/quant_blocks.h"
#include "backend/cpu/repack.h"

namespace hkv {
namespace {

constexpr int R = kX16Rows;

inline __m512i load512(const void* p) { return _mm512_loadu_si512(p); }
inline __m512i bcast4(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}
inline __m512 f16x16(const uint8_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
// Bytes (a & 0x0f) | (b & 0x30): a 4-bit low part and a 2-bit high part already at bits 4-5.
inline __m512i lo4_hi2(__m512i a, __m512i b) {
    return _mm512_ternarylogic_epi32(_mm512_and_si512(a, _mm512_set1_epi8(0x0f)), b, _mm512_set1_epi8(0x30), 0xf8);
}
// 16 int16 pairs (a[r], b[r]) as the 16 int32 lanes, from two 16-byte vectors of u8 (kSigned: s8).
template <bool kSigned>
inline __m512i pairs16(__m128i a, __m128i b) {
    const __m256i ab = _mm256_set_m128i(_mm_unpackhi_epi8(a, b), _mm_unpacklo_epi8(a, b));
    if constexpr (kSigned) return _mm512_cvtepi8_epi16(ab);
    else return _mm512_cvtepu8_epi16(ab);
}

// The loop every kernel shares: acc[c] = the 16 outputs for activation row c, over the nb blocks of
// one group; K::block<NC>(b, yb, acc) adds one block (group bytes b, activation blocks yb[c]).
template <typename K, int NC>
void group_rows(int64_t nb, const uint8_t* g, const uint8_t* xq, size_t xq_stride, float* y, size_t y_stride) {
    __m512 acc[NC];
    for (int c = 0; c < NC; ++c) acc[c] = _mm512_setzero_ps();
    constexpr size_t kGB = R * sizeof(typename K::WB);  // bytes of one block of the 16 rows
    const size_t pf = NC == 1 ? kX16DecodePrefetch : 0;
    for (int64_t ib = 0; ib < nb; ++ib) {
        if (pf) {  // the block pf bytes ahead (in this group or the next: groups are contiguous)
            const char* p = reinterpret_cast<const char*>(g + size_t(ib) * kGB + pf);
            for (size_t o = 0; o < kGB; o += 64) _mm_prefetch(p + o, _MM_HINT_T0);
        }
        const typename K::YB* yb[NC];
        for (int c = 0; c < NC; ++c) yb[c] = reinterpret_cast<const typename K::YB*>(xq + size_t(c) * xq_stride) + ib;
        K::template block<NC>(g + size_t(ib) * R * sizeof(typename K::WB), yb, acc);
    }
    for (int c = 0; c < NC; ++c) _mm512_storeu_ps(y + size_t(c) * y_stride, acc[c]);
}

// ---- q4_K ----
struct Q4K {
    using WB = BlockQ4_K;
    using YB = BlockQ8_K;
    template <int NC>
    static void block(const uint8_t* b, const YB* const* yb, __m512* acc) {
        const __m512i m4 = _mm512_set1_epi8(0x0f);
        // lanes of the packed (bsum 2i, bsum 2i + 1) pairs after madd + packs: dwords 0, 1, 4, 5
        const __m512i pair_idx[4] = {_mm512_set1_epi32(0), _mm512_set1_epi32(1), _mm512_set1_epi32(4), _mm512_set1_epi32(5)};
        // scales and mins: 16 bytes (one per row) per sub-block, sub-blocks 0-3 / 4-7 in 128-bit lanes
        const __m512i lo0 = load512(b + 64), lo1 = load512(b + 128), hi = load512(b + 192);
        const __m512i sc03 = lo4_hi2(lo0, _mm512_slli_epi16(hi, 4));
        const __m512i mn03 = lo4_hi2(_mm512_srli_epi16(lo0, 4), _mm512_slli_epi16(hi, 2));
        const __m512i sc47 = lo4_hi2(lo1, hi);
        const __m512i mn47 = lo4_hi2(_mm512_srli_epi16(lo1, 4), _mm512_srli_epi16(hi, 2));
        __m512i isum[NC];
        for (int c = 0; c < NC; ++c) isum[c] = _mm512_setzero_si512();
        for (int j = 0; j < 8; ++j) {
            const __m512i scv = j < 4 ? sc03 : sc47;
            __m128i sc8;
            switch (j % 4) {
                case 0: sc8 = _mm512_extracti32x4_epi32(scv, 0); break;
                case 1: sc8 = _mm512_extracti32x4_epi32(scv, 1); break;
                case 2: sc8 = _mm512_extracti32x4_epi32(scv, 2); break;
                default: sc8 = _mm512_extracti32x4_epi32(scv, 3); break;
            }
            const __m512i sc = _mm512_cvtepu8_epi32(sc8);  // (scale, 0) int16 pairs
            const uint8_t* q = b + 256 + size_t(j) * 256;
            __m512i w[8];
            for (int p = 0; p < 4; ++p) {
                const __m512i v = load512(q + 64 * p);
                w[2 * p] = _mm512_and_si512(v, m4);
                w[2 * p + 1] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            }
            for (int c = 0; c < NC; ++c) {
                const int8_t* x = yb[c]->qs + 32 * j;
                __m512i s0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[0], bcast4(x));
                __m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[4], bcast4(x + 16));
                s0 = _mm512_dpbusd_epi32(s0, w[1], bcast4(x + 4));
                s1 = _mm512_dpbusd_epi32(s1, w[5], bcast4(x + 20));
                s0 = _mm512_dpbusd_epi32(s0, w[2], bcast4(x + 8));
                s1 = _mm512_dpbusd_epi32(s1, w[6], bcast4(x + 24));
                s0 = _mm512_dpbusd_epi32(s0, w[3], bcast4(x + 12));
                s1 = _mm512_dpbusd_epi32(s1, w[7], bcast4(x + 28));
                isum[c] = _mm512_dpwssd_epi32(isum[c], s0, sc);
                isum[c] = _mm512_dpwssd_epi32(isum[c], s1, sc);
            }
        }
        __m512i mpair[4];
        for (int i = 0; i < 4; ++i) {
            const __m512i mv = i < 2 ? mn03 : mn47;
            const __m128i a = i % 2 == 0 ? _mm512_extracti32x4_epi32(mv, 0) : _mm512_extracti32x4_epi32(mv, 2);
            const __m128i bb = i % 2 == 0 ? _mm512_extracti32x4_epi32(mv, 1) : _mm512_extracti32x4_epi32(mv, 3);
            mpair[i] = pairs16<false>(a, bb);
        }
        const __m512 d = f16x16(b), dmin = f16x16(b + 32);
        for (int c = 0; c < NC; ++c) {
            // (bsum 2j + bsum 2j + 1) for the 8 sub-blocks, as int16 pairs
            const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(yb[c]->bsums));
            const __m256i bsx = _mm256_madd_epi16(bs, _mm256_set1_epi16(1));
            const __m512i bp = _mm512_castsi256_si512(_mm256_packs_epi32(bsx, bsx));
            __m512i msum = _mm512_setzero_si512();
            for (int i = 0; i < 4; ++i) msum = _mm512_dpwssd_epi32(msum, mpair[i], _mm512_permutexvar_epi32(pair_idx[i], bp));
            const __m512 yd = _mm512_set1_ps(yb[c]->d);
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[c]), _mm512_mul_ps(d, yd), acc[c]);
            acc[c] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msum), _mm512_mul_ps(dmin, yd), acc[c]);
        }
    }
};

// ---- q6_K ----
struct Q6K {
    using WB = BlockQ6_K;
    using YB = BlockQ8_K;
    template <int NC>
    static void block(const uint8_t* b, const YB* const* yb, __m512* acc) {
        __m512i isum[NC];
        for (int c = 0; c < NC; ++c) isum[c] = _mm512_setzero_si512();
        for (int j = 0; j < 16; ++j) {
            const __m512i sc = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 32 + 16 * j)));
            const uint8_t* q = b + 288 + 192 * size_t(j);
            const __m512i l0 = load512(q), l1 = load512(q + 64), h = load512(q + 128);
            const __m512i u0 = lo4_hi2(l0, _mm512_slli_epi16(h, 4));
            const __m512i u1 = lo4_hi2(_mm512_srli_epi16(l0, 4), _mm512_slli_epi16(h, 2));
            const __m512i u2 = lo4_hi2(l1, h);
            const __m512i u3 = lo4_hi2(_mm512_srli_epi16(l1, 4), _mm512_srli_epi16(h, 2));
            for (int c = 0; c < NC; ++c) {
                const int8_t* x = yb[c]->qs + 16 * j;
                __m512i s0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u0, bcast4(x));
                __m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u2, bcast4(x + 8));
                s0 = _mm512_dpbusd_epi32(s0, u1, bcast4(x + 4));
                s1 = _mm512_dpbusd_epi32(s1, u3, bcast4(x + 12));
                isum[c] = _mm512_add_epi32(isum[c], _mm512_mullo_epi32(_mm512_add_epi32(s0, s1), sc));
            }
        }
        // the -32 offset: 32 * sum_j scale_j * bsum_j, on (scale 2i, scale 2i + 1) pairs
        __m512i spair[8];
        for (int i = 0; i < 8; ++i)
            spair[i] = pairs16<true>(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 32 + 32 * i)),
                                     _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 48 + 32 * i)));
        const __m512 d = f16x16(b);
        for (int c = 0; c < NC; ++c) {
            __m512i off = _mm512_setzero_si512();
            for (int i = 0; i < 8; ++i) {
                int32_t bp;
                std::memcpy(&bp, yb[c]->bsums + 2 * i, 4);
                off = _mm512_dpwssd_epi32(off, spair[i], _mm512_set1_epi32(bp));
            }
            const __m512i t = _mm512_sub_epi32(isum[c], _mm512_slli_epi32(off, 5));
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_mul_ps(d, _mm512_set1_ps(yb[c]->d)), acc[c]);
        }
    }
};

// ---- q8_0 ----
struct Q80 {
    using WB = BlockQ8_0;
    using YB = BlockQ8_0;
    template <int NC>
    static void block(const uint8_t* b, const YB* const* yb, __m512* acc) {
        const __m512i zero = _mm512_setzero_si512();
        __m512i s[NC];
        for (int c = 0; c < NC; ++c) s[c] = zero;
        for (int k = 0; k < 8; ++k) {
            const __m512i w = load512(b + 32 + 64 * k);
            const __m512i aw = _mm512_abs_epi8(w);
            const __mmask64 neg = _mm512_movepi8_mask(w);
            for (int c = 0; c < NC; ++c) {
                const __m512i x = bcast4(yb[c]->qs + 4 * k);
                s[c] = _mm512_dpbusd_epi32(s[c], aw, _mm512_mask_sub_epi8(x, neg, zero, x));
            }
        }
        const __m512 d = f16x16(b);
        for (int c = 0; c < NC; ++c) {
            const __m512 yd = _mm512_set1_ps(_cvtsh_ss(yb[c]->d));
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[c]), _mm512_mul_ps(d, yd), acc[c]);
        }
    }
};

// ---- driver ----

using GroupFn = void (*)(int64_t, const uint8_t*, const uint8_t*, size_t, float*, size_t);

template <typename K>
struct Fns {  // by number of activation rows per pass
    static constexpr GroupFn nc[5] = {nullptr, group_rows<K, 1>, group_rows<K, 2>, group_rows<K, 3>, group_rows<K, 4>};
};

void gemm_x16_vnni(DType t, int64_t n, const void* w, int64_t n_groups, const void* xq, size_t xq_stride,
                   int64_t m, float* y, size_t y_stride) {
    const GroupFn* fns;
    int64_t nb;
    switch (t) {
        case DType::kQ4_K: fns = Fns<Q4K>::nc, nb = n / kQkK; break;
        case DType::kQ6_K: fns = Fns<Q6K>::nc, nb = n / kQkK; break;
        case DType::kQ8_0: fns = Fns<Q80>::nc, nb = n / kQk; break;
        default: return;
    }
    const size_t gbytes = size_t(R) * dtype_row_size(t, n);  // one group of 16 rows
    const uint8_t* wb = static_cast<const uint8_t*>(w);
    const uint8_t* xb = static_cast<const uint8_t*>(xq);
    for (int64_t ig = 0; ig < n_groups; ++ig) {
        const uint8_t* g = wb + size_t(ig) * gbytes;
        for (int64_t i = 0; i < m; i += 4) {
            const int nc = int(m - i < 4 ? m - i : 4);
            fns[nc](nb, g, xb + size_t(i) * xq_stride, xq_stride, y + size_t(i) * y_stride + size_t(ig) * R, y_stride);
        }
    }
}

}  // namespace

const X16Kernels& x16_kernels_avx512_vnni() {
    static const X16Kernels k{Isa::kAvx512, gemm_x16_vnni};
    return k;
}

}  // namespace hkv
