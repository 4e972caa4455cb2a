// backend/cpu/repack_avx2.cpp — x16 kernels (repack.h) with AVX2 (also used by AVX-512 CPUs
// without VNNI).
//
// A 256-bit vector holds one half (8 rows) of each 64-byte group vector, so a group is computed as
// two halves of 8 rows (the second pass over a group reads it from cache). Products go through
// vpmaddubsw (u8 x s8 -> int16 pair sums) and vpmaddwd:
//   q4_K: the int16 pair sums of a whole 32-element sub-block stay below 2^15 (8 x 2 x 15 x 128), so
//         they are summed as int16 and scaled by one vpmaddwd with (scale, scale) pairs;
//   q6_K: two 4-element groups at a time (2 x 2 x 63 x 128 < 2^15), same scaling;
//   q8_0: |w| x (x with the weight's sign), one vpmaddwd by ones per group (127 x 127 x 2 needs
//         all of int16).
#include <immintrin.h>

#include <cstring>

#include "backend/cpu/quant_blocks.h"
#include "backend/cpu/repack.h"

namespace hkv {
namespace {

constexpr int R = kX16Rows;
constexpr int kNcMax = 2;  // activation rows per pass (16 ymm registers)

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m128i load64(const void* p) { return _mm_loadl_epi64(static_cast<const __m128i*>(p)); }
inline __m256i bcast4(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}
inline __m256 f16x8(const uint8_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
// (a & 0x0f) | (b & 0x30) bytewise
inline __m256i lo4_hi2(__m256i a, __m256i b) {
    return _mm256_or_si256(_mm256_and_si256(a, _mm256_set1_epi8(0x0f)), _mm256_and_si256(b, _mm256_set1_epi8(0x30)));
}
inline __m128i lo4_hi2(__m128i a, __m128i b) {
    return _mm_or_si128(_mm_and_si128(a, _mm_set1_epi8(0x0f)), _mm_and_si128(b, _mm_set1_epi8(0x30)));
}
// 8 int32 lanes v -> (v, v) int16 pairs (v fits int16)
inline __m256i dup16(__m256i v) { return _mm256_blend_epi16(v, _mm256_slli_epi32(v, 16), 0xaa); }
// 8 int16 pairs (a[r], b[r]) as int32 lanes from two 8-byte vectors
inline __m256i pairs_u8(__m128i a, __m128i b) { return _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(a, b)); }
inline __m256i pairs_s8(__m128i a, __m128i b) { return _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(a, b)); }
inline __m256i madd_ones(__m256i p) { return _mm256_madd_epi16(p, _mm256_set1_epi16(1)); }

// The loop every kernel shares, for the rows 8 hf .. 8 hf + 7 of one group: acc[c] = their outputs
// for activation row c, over the nb blocks; K::block<NC>(b, h8, yb, acc) adds one block (group bytes
// b, h8 = 8 hf, activation blocks yb[c]).
template <typename K, int NC>
void half_rows(int64_t nb, const uint8_t* g, int hf, const uint8_t* xq, size_t xq_stride, float* y, size_t y_stride) {
    __m256 acc[NC];
    for (int c = 0; c < NC; ++c) acc[c] = _mm256_setzero_ps();
    constexpr size_t kGB = R * sizeof(typename K::WB);  // bytes of one block of the 16 rows
    const size_t pf = NC == 1 && hf == 0 ? kX16DecodePrefetch : 0;
    for (int64_t ib = 0; ib < nb; ++ib) {
        if (pf) {  // the block pf bytes ahead (in this group or the next: groups are contiguous)
            const char* p = reinterpret_cast<const char*>(g + size_t(ib) * kGB + pf);
            for (size_t o = 0; o < kGB; o += 64) _mm_prefetch(p + o, _MM_HINT_T0);
        }
        const typename K::YB* yb[NC];
        for (int c = 0; c < NC; ++c) yb[c] = reinterpret_cast<const typename K::YB*>(xq + size_t(c) * xq_stride) + ib;
        K::template block<NC>(g + size_t(ib) * R * sizeof(typename K::WB), size_t(8 * hf), yb, acc);
    }
    for (int c = 0; c < NC; ++c) _mm256_storeu_ps(y + size_t(c) * y_stride, acc[c]);
}

// ---- q4_K ----
struct Q4K {
    using WB = BlockQ4_K;
    using YB = BlockQ8_K;
    template <int NC>
    static void block(const uint8_t* b, size_t h8, const YB* const* yb, __m256* acc) {
        const __m256i m4 = _mm256_set1_epi8(0x0f);
        __m128i sc8[8], mn8[8];
        for (int j = 0; j < 8; ++j) {
            const __m128i lo = load64(b + 64 + 16 * j + h8);
            __m128i hi = load64(b + 192 + 16 * (j % 4) + h8);
            if (j >= 4) hi = _mm_srli_epi16(hi, 4);
            sc8[j] = lo4_hi2(lo, _mm_slli_epi16(hi, 4));
            mn8[j] = lo4_hi2(_mm_srli_epi16(lo, 4), _mm_slli_epi16(hi, 2));
        }
        __m256i isum[NC];
        for (int c = 0; c < NC; ++c) isum[c] = _mm256_setzero_si256();
        for (int j = 0; j < 8; ++j) {
            const __m256i sc = dup16(_mm256_cvtepu8_epi32(sc8[j]));
            const uint8_t* q = b + 256 + 256 * size_t(j) + 4 * h8;
            __m256i w[8];
            for (int p = 0; p < 4; ++p) {
                const __m256i v = load256(q + 64 * p);
                w[2 * p] = _mm256_and_si256(v, m4);
                w[2 * p + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            }
            for (int c = 0; c < NC; ++c) {
                const int8_t* x = yb[c]->qs + 32 * j;
                __m256i p16 = _mm256_maddubs_epi16(w[0], bcast4(x));
                for (int k = 1; k < 8; ++k) p16 = _mm256_add_epi16(p16, _mm256_maddubs_epi16(w[k], bcast4(x + 4 * k)));
                isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(p16, sc));
            }
        }
        __m256i mpair[4];
        for (int i = 0; i < 4; ++i) mpair[i] = pairs_u8(mn8[2 * i], mn8[2 * i + 1]);
        const __m256 d = f16x8(b + 2 * h8), dmin = f16x8(b + 32 + 2 * h8);
        for (int c = 0; c < NC; ++c) {
            const __m256i bsx = madd_ones(load256(yb[c]->bsums));  // bsum 2j + bsum 2j+1, j = 0..7
            const __m256i bp = _mm256_packs_epi32(bsx, bsx);       // pairs i at dwords 0, 1, 4, 5
            __m256i msum = _mm256_setzero_si256();
            const int idx[4] = {0, 1, 4, 5};
            for (int i = 0; i < 4; ++i)
                msum = _mm256_add_epi32(msum, _mm256_madd_epi16(mpair[i], _mm256_permutevar8x32_epi32(bp, _mm256_set1_epi32(idx[i]))));
            const __m256 yd = _mm256_set1_ps(yb[c]->d);
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), _mm256_mul_ps(d, yd), acc[c]);
            acc[c] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_mul_ps(dmin, yd), acc[c]);
        }
    }
};

// ---- q6_K ----
struct Q6K {
    using WB = BlockQ6_K;
    using YB = BlockQ8_K;
    template <int NC>
    static void block(const uint8_t* b, size_t h8, const YB* const* yb, __m256* acc) {
        __m256i isum[NC];
        for (int c = 0; c < NC; ++c) isum[c] = _mm256_setzero_si256();
        for (int j = 0; j < 16; ++j) {
            const __m256i sc = dup16(_mm256_cvtepi8_epi32(load64(b + 32 + 16 * j + h8)));
            const uint8_t* q = b + 288 + 192 * size_t(j) + 4 * h8;
            const __m256i l0 = load256(q), l1 = load256(q + 64), h = load256(q + 128);
            const __m256i u0 = lo4_hi2(l0, _mm256_slli_epi16(h, 4));
            const __m256i u1 = lo4_hi2(_mm256_srli_epi16(l0, 4), _mm256_slli_epi16(h, 2));
            const __m256i u2 = lo4_hi2(l1, h);
            const __m256i u3 = lo4_hi2(_mm256_srli_epi16(l1, 4), _mm256_srli_epi16(h, 2));
            for (int c = 0; c < NC; ++c) {
                const int8_t* x = yb[c]->qs + 16 * j;
                const __m256i p01 = _mm256_add_epi16(_mm256_maddubs_epi16(u0, bcast4(x)), _mm256_maddubs_epi16(u1, bcast4(x + 4)));
                const __m256i p23 = _mm256_add_epi16(_mm256_maddubs_epi16(u2, bcast4(x + 8)), _mm256_maddubs_epi16(u3, bcast4(x + 12)));
                isum[c] = _mm256_add_epi32(isum[c], _mm256_add_epi32(_mm256_madd_epi16(p01, sc), _mm256_madd_epi16(p23, sc)));
            }
        }
        __m256i spair[8];  // (scale 2i, scale 2i + 1) per row
        for (int i = 0; i < 8; ++i) spair[i] = pairs_s8(load64(b + 32 + 32 * i + h8), load64(b + 48 + 32 * i + h8));
        const __m256 d = f16x8(b + 2 * h8);
        for (int c = 0; c < NC; ++c) {
            __m256i off = _mm256_setzero_si256();
            for (int i = 0; i < 8; ++i) {
                int32_t bp;
                std::memcpy(&bp, yb[c]->bsums + 2 * i, 4);
                off = _mm256_add_epi32(off, _mm256_madd_epi16(spair[i], _mm256_set1_epi32(bp)));
            }
            const __m256i t = _mm256_sub_epi32(isum[c], _mm256_slli_epi32(off, 5));
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(t), _mm256_mul_ps(d, _mm256_set1_ps(yb[c]->d)), acc[c]);
        }
    }
};

// ---- q8_0 ----
struct Q80 {
    using WB = BlockQ8_0;
    using YB = BlockQ8_0;
    template <int NC>
    static void block(const uint8_t* b, size_t h8, const YB* const* yb, __m256* acc) {
        __m256i s[NC];
        for (int c = 0; c < NC; ++c) s[c] = _mm256_setzero_si256();
        for (int k = 0; k < 8; ++k) {
            const __m256i w = load256(b + 32 + 64 * k + 4 * h8);
            const __m256i aw = _mm256_abs_epi8(w);
            for (int c = 0; c < NC; ++c)
                s[c] = _mm256_add_epi32(s[c], madd_ones(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(bcast4(yb[c]->qs + 4 * k), w))));
        }
        const __m256 d = f16x8(b + 2 * h8);
        for (int c = 0; c < NC; ++c) {
            const __m256 yd = _mm256_set1_ps(_cvtsh_ss(yb[c]->d));
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[c]), _mm256_mul_ps(d, yd), acc[c]);
        }
    }
};

// ---- driver ----

using HalfFn = void (*)(int64_t, const uint8_t*, int, const uint8_t*, size_t, float*, size_t);

void gemm_x16_avx2(DType t, int64_t n, const void* w, int64_t n_groups, const void* xq, size_t xq_stride,
                   int64_t m, float* y, size_t y_stride) {
    HalfFn f1, f2;
    int64_t nb;
    switch (t) {
        case DType::kQ4_K: f1 = half_rows<Q4K, 1>, f2 = half_rows<Q4K, 2>, nb = n / kQkK; break;
        case DType::kQ6_K: f1 = half_rows<Q6K, 1>, f2 = half_rows<Q6K, 2>, nb = n / kQkK; break;
        case DType::kQ8_0: f1 = half_rows<Q80, 1>, f2 = half_rows<Q80, 2>, nb = n / kQk; break;
        default: return;
    }
    const size_t gbytes = size_t(R) * dtype_row_size(t, n);  // one group of 16 rows
    const uint8_t* wb = static_cast<const uint8_t*>(w);
    const uint8_t* xb = static_cast<const uint8_t*>(xq);
    for (int64_t ig = 0; ig < n_groups; ++ig) {
        const uint8_t* g = wb + size_t(ig) * gbytes;
        for (int hf = 0; hf < 2; ++hf) {
            for (int64_t i = 0; i < m; i += kNcMax) {
                float* yi = y + size_t(i) * y_stride + size_t(ig) * R + size_t(8 * hf);
                (m - i >= 2 ? f2 : f1)(nb, g, hf, xb + size_t(i) * xq_stride, xq_stride, yi, y_stride);
            }
        }
    }
}

}  // namespace

const X16Kernels& x16_kernels_avx2() {
    static const X16Kernels k{Isa::kAvx2, gemm_x16_avx2};
    return k;
}

}  // namespace hkv
