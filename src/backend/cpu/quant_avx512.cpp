// backend/cpu/quant_avx512.cpp — AVX-512 (F/BW/VL/DQ) kernels, with an AVX512-VNNI variant.
//
// Compiled with AVX-512 flags and reached only through quant_kernels_avx512() after runtime
// detection. NOTE: this file deliberately uses no inline functions or templates from shared headers
// (fp16.h, <algorithm>, ...): an out-of-line copy compiled here could be picked by the linker for
// AVX2-only callers. Everything here is in an anonymous namespace or is an intrinsic; the one shared
// header with templates, quant_rows.h (dot_rows, RowPrefetch), keeps them in an anonymous namespace too.
//
// Layout of the work: the legacy 32-element blocks use 256-bit vectors (one block per vector) with
// vpdpbusd; the K-quants process 64 elements (two sub-blocks) per 512-bit vector and apply the
// sub-block scales in the integer domain with vpdpwssd (16-bit pair sums x 16-bit scales).
// kVnni = false replaces both with vpmaddubsw/vpmaddwd for AVX-512 CPUs without VNNI.
// GCC 12 reports its own intrinsics' deliberately undefined upper halves (_mm512_cast*256*).
#if !defined(__clang__)  // clang has no -Wmaybe-uninitialized
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "backend/cpu/quant_internal.h"
#include "backend/cpu/quant_rows.h"

namespace hkv {
namespace {

inline float half_to_float(uint16_t h) { return _cvtsh_ss(h); }

inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m512i load512(const void* p) { return _mm512_loadu_si512(p); }

// acc + sum of u8 x s8 products (4 per int32 lane)
template <bool kVnni>
inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s) {
    if constexpr (kVnni) return _mm256_dpbusd_epi32(acc, u, s);
    else return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}
// acc + sum of s16 x s16 products (2 per int32 lane)
template <bool kVnni>
inline __m512i dpwssd(__m512i acc, __m512i a, __m512i b) {
    if constexpr (kVnni) return _mm512_dpwssd_epi32(acc, a, b);
    else return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
}
template <bool kVnni>
inline __m256i dpwssd256(__m256i acc, __m256i a, __m256i b) {
    if constexpr (kVnni) return _mm256_dpwssd_epi32(acc, a, b);
    else return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
}

inline __m256i unpack_nibbles(const uint8_t* qs) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(v), _mm_srli_epi16(v, 4), 1);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

// 32 bits -> 32 bytes, byte j = 0x10 if bit j is set (mask register makes this one instruction)
inline __m256i bits_to_0x10(const uint8_t* qh4) {
    uint32_t bits;
    std::memcpy(&bits, qh4, 4);
    return _mm256_maskz_mov_epi8(__mmask32(bits), _mm256_set1_epi8(0x10));
}

// ---- legacy types ----

struct ActQ8 {
    __m256i y;
    __m256i ysum;  // sum(y) over int32 lanes
    float d, s;
};

template <bool kVnni, typename YB>
inline ActQ8 load_act_q8(const YB* b) {
    ActQ8 a;
    a.y = load256(b->qs);
    a.ysum = dpbusd<kVnni>(_mm256_setzero_si256(), _mm256_set1_epi8(1), a.y);
    a.d = half_to_float(b->d);
    if constexpr (sizeof(YB) == sizeof(BlockQ8_1)) a.s = half_to_float(b->s); else a.s = 0;
    return a;
}

struct AccL {
    __m256 v;
    float s;  // m * s terms of q4_1 / q5_1
};

template <bool kVnni, typename WBt, typename YBt, int kOffsetShift, bool kFive>
struct KLegacy {  // q4_0 (shift 3), q5_0 (shift 4), q4_1, q5_1 (no offset, min term)
    using WB = WBt; using YB = YBt; using Act = ActQ8; using Acc = AccL;
    static Act load_act(const YB* b) { return load_act_q8<kVnni>(b); }
    static void block(const WB* b, const Act& a, Acc& acc) {
        __m256i q = unpack_nibbles(b->qs);
        if constexpr (kFive) q = _mm256_or_si256(q, bits_to_0x10(b->qh));
        __m256i init = _mm256_setzero_si256();
        if constexpr (kOffsetShift > 0) init = _mm256_sub_epi32(init, _mm256_slli_epi32(a.ysum, kOffsetShift));
        const __m256i p = dpbusd<kVnni>(init, q, a.y);
        acc.v = _mm256_fmadd_ps(_mm256_set1_ps(half_to_float(b->d) * a.d), _mm256_cvtepi32_ps(p), acc.v);
        if constexpr (kOffsetShift == 0) acc.s += half_to_float(b->m) * a.s;
    }
    static float finish(const Acc& acc) { return hsum256(acc.v) + acc.s; }
};

template <bool kVnni>
struct KQ8_0 {
    using WB = BlockQ8_0; using YB = BlockQ8_0; using Act = ActQ8; using Acc = AccL;
    static Act load_act(const YB* b) {
        Act a;
        a.y = load256(b->qs);
        a.d = half_to_float(b->d);
        return a;
    }
    static void block(const WB* b, const Act& a, Acc& acc) {
        const __m256i w = load256(b->qs);
        const __m256i p = dpbusd<kVnni>(_mm256_setzero_si256(), _mm256_abs_epi8(w), _mm256_sign_epi8(a.y, w));
        acc.v = _mm256_fmadd_ps(_mm256_set1_ps(half_to_float(b->d) * a.d), _mm256_cvtepi32_ps(p), acc.v);
    }
    static float finish(const Acc& acc) { return hsum256(acc.v); }
};

// ---- K-quants ----

// The 12 scale bytes of a q4_K/q5_K block -> bytes [sc0..sc7, m0..m7], without leaving registers.
// Loads 16 bytes at q: the 4 after the scales (the block's first quants or qh) are ignored.
inline __m128i unpack_k4_scales(const uint8_t* q) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));  // dwords [a, b, c, -]
    // [a, c, b, c >> 4] & [3f, 0f, 3f, 0f]  |  ([a, a, b, b] >> 2) & [0, 30, 0, 30]
    const __m128i x = _mm_srlv_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0)), _mm_setr_epi32(0, 0, 0, 4));
    const __m128i y = _mm_srli_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0)), 2);
    return _mm_or_si128(_mm_and_si128(x, _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f)),
                        _mm_and_si128(y, _mm_setr_epi32(0, 0x30303030, 0, 0x30303030)));
}

// 16-bit scales sc0..sc7 in every 128-bit lane, and the byte shuffle that spreads scale 2k over the
// low 256 bits and 2k + 1 over the high 256 bits (sub-blocks 2k and 2k + 1 of a 64-element step).
inline __m512i k4_scales16(__m128i sm) { return _mm512_broadcast_i32x4(_mm_cvtepu8_epi16(sm)); }
inline __m512i k4_scale_shuffle(int k) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(short((4 * k + 1) << 8 | 4 * k))),
                              _mm256_set1_epi16(short((4 * k + 3) << 8 | (4 * k + 2))), 1);
}
// mins m0..m7 each repeated for the two 16-element bsums of its sub-block, 16-bit
inline __m256i k4_mins16(__m128i sm) {
    const __m128i m = _mm_unpackhi_epi64(sm, sm);
    return _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m, m));
}

struct AccK {
    __m512 v;  // d-scaled integer dot
    __m256 m;  // dmin-scaled mins (q4_K/q5_K), subtracted
};

inline float finish_k(const AccK& acc) {
    const __m256 v = _mm256_add_ps(_mm512_castps512_ps256(acc.v), _mm512_extractf32x8_ps(acc.v, 1));
    return hsum256(_mm256_sub_ps(v, acc.m));
}

// [x in the low 256 bits, y in the high 256 bits]
inline __m512i concat(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }

template <bool kVnni, bool kFive>
struct KQ45_K {
    using WB = std::conditional_t<kFive, BlockQ5_K, BlockQ4_K>;
    using YB = BlockQ8_K; using Act = const YB*; using Acc = AccK;
    static Act load_act(const YB* b) { return b; }
    static void block(const WB* b, Act y, Acc& acc) {
        const __m128i sm = unpack_k4_scales(b->scales);
        const __m512i sc16 = k4_scales16(sm);
        const __m512i m4 = _mm512_set1_epi8(0x0f);
        __m512i sumi = _mm512_setzero_si512();
        __m512i qh;
        if constexpr (kFive) {
            const __m256i h = load256(b->qh);
            qh = concat(h, _mm256_srli_epi16(h, 1));  // bit 2k for sub-block 2k, bit 2k+1 for 2k+1
        }
        for (int k = 0; k < 4; ++k) {
            const __m256i q = load256(b->qs + 32 * k);
            __m512i qq = _mm512_and_si512(concat(q, _mm256_srli_epi16(q, 4)), m4);
            if constexpr (kFive) {
                qq = _mm512_or_si512(qq, _mm512_slli_epi16(_mm512_and_si512(qh, _mm512_set1_epi8(1)), 4));
                qh = _mm512_srli_epi16(qh, 2);
            }
            const __m512i p = _mm512_maddubs_epi16(qq, load512(y->qs + 64 * k));
            sumi = dpwssd<kVnni>(sumi, p, _mm512_shuffle_epi8(sc16, k4_scale_shuffle(k)));
        }
        const __m256i mm = _mm256_madd_epi16(load256(y->bsums), k4_mins16(sm));
        acc.v = _mm512_fmadd_ps(_mm512_set1_ps(y->d * half_to_float(b->d)), _mm512_cvtepi32_ps(sumi), acc.v);
        acc.m = _mm256_fmadd_ps(_mm256_set1_ps(y->d * half_to_float(b->dmin)), _mm256_cvtepi32_ps(mm), acc.m);
    }
    static float finish(const Acc& acc) { return finish_k(acc); }
};

template <bool kVnni>
struct KQ6_K {
    using WB = BlockQ6_K; using YB = BlockQ8_K; using Act = const YB*; using Acc = AccK;
    static Act load_act(const YB* b) { return b; }
    static void block(const WB* b, Act y, Acc& acc) {
        const __m512i m4 = _mm512_set1_epi8(0x0f), m3 = _mm512_set1_epi8(0x03);
        const __m256i sc16_256 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b->scales)));
        const __m512i sc16 = _mm512_castsi256_si512(sc16_256);
        __m512i sumi = _mm512_setzero_si512();
        for (int h = 0; h < 2; ++h) {
            const __m512i ql = load512(b->ql + 64 * h);
            const __m256i qh256 = load256(b->qh + 32 * h);
            const __m512i qh = concat(qh256, _mm256_srli_epi16(qh256, 2));
            // elements 0..63 of the half: low nibbles + bits (0,1)|(2,3); 64..127: high nibbles + (4,5)|(6,7)
            const __m512i qa = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_slli_epi16(_mm512_and_si512(qh, m3), 4));
            const __m512i qb = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                               _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(qh, 4), m3), 4));
            const __m512i pa = _mm512_maddubs_epi16(qa, load512(y->qs + 128 * h));
            const __m512i pb = _mm512_maddubs_epi16(qb, load512(y->qs + 128 * h + 64));
            // 16-bit lane i covers elements 2i, 2i+1 -> scale group i / 8
            const __m512i lane_grp = _mm512_srli_epi16(
                _mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16,
                                 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), 3);
            const __m512i ia = _mm512_add_epi16(lane_grp, _mm512_set1_epi16(short(8 * h)));
            const __m512i ib = _mm512_add_epi16(lane_grp, _mm512_set1_epi16(short(8 * h + 4)));
            sumi = dpwssd<kVnni>(sumi, pa, _mm512_permutexvar_epi16(ia, sc16));
            sumi = dpwssd<kVnni>(sumi, pb, _mm512_permutexvar_epi16(ib, sc16));
        }
        // the -32 offset through the activation's group sums
        const __m256i off = dpwssd256<kVnni>(_mm256_setzero_si256(), sc16_256, load256(y->bsums));
        sumi = _mm512_sub_epi32(sumi, _mm512_zextsi256_si512(_mm256_slli_epi32(off, 5)));
        acc.v = _mm512_fmadd_ps(_mm512_set1_ps(y->d * half_to_float(b->d)), _mm512_cvtepi32_ps(sumi), acc.v);
    }
    static float finish(const Acc& acc) { return finish_k(acc); }
};

// ---- q2_K, q3_K: 64 elements (four groups of 16) per 512-bit step, scales through vpdpwssd ----

// 16-bit lane i of a maddubs result over 64 elements covers elements 2i, 2i+1: group base + i / 8
inline __m512i group_lanes16(int base) {
    const __m512i lane = _mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16,
                                          15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    return _mm512_add_epi16(_mm512_srli_epi16(lane, 3), _mm512_set1_epi16(short(base)));
}

// The four 2-bit fields of q (bits 2s..2s+1 of each byte) as [fields 0 | 1] and [fields 2 | 3].
inline void split_2bit(__m256i q, __m512i& q01, __m512i& q23) {
    const __m512i m3 = _mm512_set1_epi8(3);
    q01 = _mm512_and_si512(concat(q, _mm256_srli_epi16(q, 2)), m3);
    q23 = _mm512_and_si512(concat(_mm256_srli_epi16(q, 4), _mm256_srli_epi16(q, 6)), m3);
}

// q2_K (kThree = false) and q3_K; q3_K's quants unsigned (u = value + 4, third bit from hmask)
// with the offset 4 * sum_g sc_g * bsums_g subtracted once; q2_K's mins through the bsums.
template <bool kVnni, bool kThree>
struct KQ23_K {
    using WB = std::conditional_t<kThree, BlockQ3_K, BlockQ2_K>;
    using YB = BlockQ8_K; using Act = const YB*; using Acc = AccK;
    static Act load_act(const YB* b) { return b; }
    static void block(const WB* b, Act y, Acc& acc) {
        const __m128i m4 = _mm_set1_epi8(0x0f);
        __m256i sc16_256;  // the 16 group scales, 16-bit (q3_K signed)
        __m128i sc8;
        if constexpr (kThree) {
            alignas(32) int16_t sc[16];
            q3_k_scales_i16(b->scales, sc);
            sc16_256 = load256(sc);
        } else {
            sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b->scales));
            sc16_256 = _mm256_cvtepu8_epi16(_mm_and_si128(sc8, m4));
        }
        const __m512i sc16 = _mm512_castsi256_si512(sc16_256);
        __m256i hm;
        if constexpr (kThree) hm = load256(b->hmask);
        __m512i sumi = _mm512_setzero_si512();
        for (int h = 0; h < 2; ++h) {
            __m512i q01, q23;
            split_2bit(load256(b->qs + 32 * h), q01, q23);
            if constexpr (kThree) {
                const __m512i one = _mm512_set1_epi8(1);
                const __m512i h01 = _mm512_and_si512(concat(_mm256_srli_epi16(hm, 4 * h), _mm256_srli_epi16(hm, 4 * h + 1)), one);
                const __m512i h23 = _mm512_and_si512(concat(_mm256_srli_epi16(hm, 4 * h + 2), _mm256_srli_epi16(hm, 4 * h + 3)), one);
                q01 = _mm512_or_si512(q01, _mm512_slli_epi16(h01, 2));
                q23 = _mm512_or_si512(q23, _mm512_slli_epi16(h23, 2));
            }
            const __m512i p01 = _mm512_maddubs_epi16(q01, load512(y->qs + 128 * h));
            const __m512i p23 = _mm512_maddubs_epi16(q23, load512(y->qs + 128 * h + 64));
            sumi = dpwssd<kVnni>(sumi, p01, _mm512_permutexvar_epi16(group_lanes16(8 * h), sc16));
            sumi = dpwssd<kVnni>(sumi, p23, _mm512_permutexvar_epi16(group_lanes16(8 * h + 4), sc16));
        }
        if constexpr (kThree) {
            const __m256i off = dpwssd256<kVnni>(_mm256_setzero_si256(), sc16_256, load256(y->bsums));
            sumi = _mm512_sub_epi32(sumi, _mm512_zextsi256_si512(_mm256_slli_epi32(off, 2)));
        } else {
            const __m256i mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), m4));
            const __m256i mm = _mm256_madd_epi16(load256(y->bsums), mins16);
            acc.m = _mm256_fmadd_ps(_mm256_set1_ps(y->d * half_to_float(b->dmin)), _mm256_cvtepi32_ps(mm), acc.m);
        }
        acc.v = _mm512_fmadd_ps(_mm512_set1_ps(y->d * half_to_float(b->d)), _mm512_cvtepi32_ps(sumi), acc.v);
    }
    static float finish(const Acc& acc) { return finish_k(acc); }
};

// ---- iq4_nl (32-element blocks, 256-bit as q8_0) and iq4_xs (four sub-blocks per 512-bit step) ----

inline __m128i iq4_table() { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)); }

template <bool kVnni>
struct KIQ4_NL {
    using WB = BlockIQ4_NL; using YB = BlockQ8_0; using Act = ActQ8; using Acc = AccL;
    static Act load_act(const YB* b) { return KQ8_0<kVnni>::load_act(b); }
    static void block(const WB* b, const Act& a, Acc& acc) {
        const __m256i w = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(iq4_table()), unpack_nibbles(b->qs));
        const __m256i p = dpbusd<kVnni>(_mm256_setzero_si256(), _mm256_abs_epi8(w), _mm256_sign_epi8(a.y, w));
        acc.v = _mm256_fmadd_ps(_mm256_set1_ps(half_to_float(b->d) * a.d), _mm256_cvtepi32_ps(p), acc.v);
    }
    static float finish(const Acc& acc) { return hsum256(acc.v); }
};

template <bool kVnni>
struct KIQ4_XS {
    using WB = BlockIQ4_XS; using YB = BlockQ8_K; using Act = const YB*; using Acc = AccK;
    static Act load_act(const YB* b) { return b; }
    static void block(const WB* b, Act y, Acc& acc) {
        int16_t sc[8];
        iq4_xs_scales_i16(b, sc);
        const __m512i table = _mm512_broadcast_i32x4(iq4_table());
        const __m512i m4 = _mm512_set1_epi8(0x0f);
        __m512i sumi = _mm512_setzero_si512();
        for (int half = 0; half < 2; ++half) {
            // 128-bit lane k of lo / hi: sub-block 4 half + k, its elements 0..15 / 16..31
            const __m512i q = load512(b->qs + 64 * half);
            const __m512i wlo = _mm512_shuffle_epi8(table, _mm512_and_si512(q, m4));
            const __m512i whi = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(q, 4), m4));
            const __m512i y0 = load512(y->qs + 128 * half), y1 = load512(y->qs + 128 * half + 64);
            const __m512i ylo = _mm512_shuffle_i64x2(y0, y1, _MM_SHUFFLE(2, 0, 2, 0));
            const __m512i yhi = _mm512_shuffle_i64x2(y0, y1, _MM_SHUFFLE(3, 1, 3, 1));
            // sign of the weight moved onto the activation (w is never 0, y never -128)
            const __m512i slo = _mm512_mask_sub_epi8(ylo, _mm512_movepi8_mask(wlo), _mm512_setzero_si512(), ylo);
            const __m512i shi = _mm512_mask_sub_epi8(yhi, _mm512_movepi8_mask(whi), _mm512_setzero_si512(), yhi);
            const __m512i s16 = concat(_mm256_set_m128i(_mm_set1_epi16(sc[4 * half + 1]), _mm_set1_epi16(sc[4 * half])),
                                       _mm256_set_m128i(_mm_set1_epi16(sc[4 * half + 3]), _mm_set1_epi16(sc[4 * half + 2])));
            sumi = dpwssd<kVnni>(sumi, _mm512_maddubs_epi16(_mm512_abs_epi8(wlo), slo), s16);
            sumi = dpwssd<kVnni>(sumi, _mm512_maddubs_epi16(_mm512_abs_epi8(whi), shi), s16);
        }
        acc.v = _mm512_fmadd_ps(_mm512_set1_ps(y->d * half_to_float(b->d)), _mm512_cvtepi32_ps(sumi), acc.v);
    }
    static float finish(const Acc& acc) { return finish_k(acc); }
};

// ---- float types: 16 lanes, scalar tail ----

template <int kKind>  // 0 f32, 1 f16, 2 bf16
inline __m512 load16(const void* p) {
    if constexpr (kKind == 0) return _mm512_loadu_ps(p);
    const __m256i h = load256(p);
    if constexpr (kKind == 1) return _mm512_cvtph_ps(h);
    else return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
template <int kKind>
inline float load1(const void* p, int64_t i) {
    if constexpr (kKind == 0) return static_cast<const float*>(p)[i];
    const uint16_t v = static_cast<const uint16_t*>(p)[i];
    if constexpr (kKind == 1) return half_to_float(v);
    else return _mm_cvtss_f32(_mm_castsi128_ps(_mm_cvtsi32_si128(int(uint32_t(v) << 16))));
}

template <int kKind, int NR>
void dot_rows_float(int64_t n, const void* w, size_t w_stride, const void* xq, float* out) {
    constexpr size_t kElt = kKind == 0 ? 4 : 2;
    const uint8_t* x = static_cast<const uint8_t*>(xq);
    const uint8_t* wb = static_cast<const uint8_t*>(w);
    __m512 acc[NR][2];
    for (int r = 0; r < NR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    int64_t i = 0;
    RowPrefetch<NR> prefetch(wb, w_stride, n / 32);
    for (; i + 32 <= n; i += 32) {
        prefetch();
        const __m512 x0 = load16<kKind>(x + i * kElt), x1 = load16<kKind>(x + (i + 16) * kElt);
        for (int r = 0; r < NR; ++r) {
            const uint8_t* wr = wb + size_t(r) * w_stride;
            acc[r][0] = _mm512_fmadd_ps(load16<kKind>(wr + i * kElt), x0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(load16<kKind>(wr + (i + 16) * kElt), x1, acc[r][1]);
        }
    }
    for (int r = 0; r < NR; ++r) {
        const uint8_t* wr = wb + size_t(r) * w_stride;
        float s = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]));
        for (int64_t j = i; j < n; ++j) s += load1<kKind>(wr, j) * load1<kKind>(x, j);
        out[r] = s;
    }
}

// ---- tables ----

using RowsFn = void (*)(int64_t, const void*, size_t, const void*, float*);

template <bool kVnni>
void rows_fns(DType t, RowsFn* one, RowsFn* four) {
    using Q4_0 = KLegacy<kVnni, BlockQ4_0, BlockQ8_0, 3, false>;
    using Q4_1 = KLegacy<kVnni, BlockQ4_1, BlockQ8_1, 0, false>;
    using Q5_0 = KLegacy<kVnni, BlockQ5_0, BlockQ8_0, 4, true>;
    using Q5_1 = KLegacy<kVnni, BlockQ5_1, BlockQ8_1, 0, true>;
    switch (t) {
        case DType::kF32: *one = dot_rows_float<0, 1>; *four = dot_rows_float<0, 4>; return;
        case DType::kF16: *one = dot_rows_float<1, 1>; *four = dot_rows_float<1, 4>; return;
        case DType::kBF16: *one = dot_rows_float<2, 1>; *four = dot_rows_float<2, 4>; return;
        case DType::kQ4_0: *one = dot_rows<Q4_0, 1>; *four = dot_rows<Q4_0, 4>; return;
        case DType::kQ4_1: *one = dot_rows<Q4_1, 1>; *four = dot_rows<Q4_1, 4>; return;
        case DType::kQ5_0: *one = dot_rows<Q5_0, 1>; *four = dot_rows<Q5_0, 4>; return;
        case DType::kQ5_1: *one = dot_rows<Q5_1, 1>; *four = dot_rows<Q5_1, 4>; return;
        case DType::kQ8_0: *one = dot_rows<KQ8_0<kVnni>, 1>; *four = dot_rows<KQ8_0<kVnni>, 4>; return;
        case DType::kQ4_K: *one = dot_rows<KQ45_K<kVnni, false>, 1>; *four = dot_rows<KQ45_K<kVnni, false>, 4>; return;
        case DType::kQ5_K: *one = dot_rows<KQ45_K<kVnni, true>, 1>; *four = dot_rows<KQ45_K<kVnni, true>, 4>; return;
        case DType::kQ6_K: *one = dot_rows<KQ6_K<kVnni>, 1>; *four = dot_rows<KQ6_K<kVnni>, 4>; return;
        case DType::kQ2_K: *one = dot_rows<KQ23_K<kVnni, false>, 1>; *four = dot_rows<KQ23_K<kVnni, false>, 4>; return;
        case DType::kQ3_K: *one = dot_rows<KQ23_K<kVnni, true>, 1>; *four = dot_rows<KQ23_K<kVnni, true>, 4>; return;
        case DType::kIQ4_NL: *one = dot_rows<KIQ4_NL<kVnni>, 1>; *four = dot_rows<KIQ4_NL<kVnni>, 4>; return;
        case DType::kIQ4_XS: *one = dot_rows<KIQ4_XS<kVnni>, 1>; *four = dot_rows<KIQ4_XS<kVnni>, 4>; return;
        default: *one = *four = nullptr; return;
    }
}

template <bool kVnni>
float vec_dot_avx512(DType t, int64_t n, const void* w, const void* xq) {
    RowsFn one, four;
    rows_fns<kVnni>(t, &one, &four);
    if (!one) return quant_kernels_avx2().vec_dot(t, n, w, xq);
    float r;
    one(n, w, 0, xq, &r);
    return r;
}

template <bool kVnni>
void vec_dot_rows_avx512(DType t, int64_t n, const void* w, size_t w_stride, int64_t nr, const void* xq,
                         float* out) {
    RowsFn one, four;
    rows_fns<kVnni>(t, &one, &four);
    if (!one) {
        quant_kernels_avx2().vec_dot_rows(t, n, w, w_stride, nr, xq, out);
        return;
    }
    const uint8_t* wb = static_cast<const uint8_t*>(w);
    int64_t r = 0;
    for (; r + 4 <= nr; r += 4) four(n, wb + size_t(r) * w_stride, w_stride, xq, out + r);
    for (; r < nr; ++r) one(n, wb + size_t(r) * w_stride, w_stride, xq, out + r);
}

// ---- prefill GEMM: one weight row against NC activation rows, each weight block unpacked once ----
//
// The unpacked block (nibbles / 6-bit values as u8, sub-block scales permuted to 16-bit lanes) stays
// in registers while NC activation rows stream past it; only maddubs + dpwssd and the per-block
// float update are paid per (weight row, activation row) pair. Results equal vec_dot up to float
// summation order (the min term of q4_K is folded into the same accumulator).

template <bool kVnni, int NC>
void gemm_q4_k_row(int64_t nb, const BlockQ4_K* w, const uint8_t* xq, size_t xq_stride, float* out,
                   size_t out_stride) {
    __m512 acc[NC];
    for (int c = 0; c < NC; ++c) acc[c] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    for (int64_t ib = 0; ib < nb; ++ib) {
        const BlockQ4_K* b = w + ib;
        const __m128i sm = unpack_k4_scales(b->scales);
        const __m512i sc16 = k4_scales16(sm);
        __m512i q[4], s[4];
        for (int k = 0; k < 4; ++k) {
            const __m256i qk = load256(b->qs + 32 * k);
            q[k] = _mm512_and_si512(concat(qk, _mm256_srli_epi16(qk, 4)), m4);
            s[k] = _mm512_shuffle_epi8(sc16, k4_scale_shuffle(k));
        }
        const __m256i mins16 = k4_mins16(sm);
        const float dw = half_to_float(b->d), dmw = half_to_float(b->dmin);
        for (int c = 0; c < NC; ++c) {
            const BlockQ8_K* y = reinterpret_cast<const BlockQ8_K*>(xq + size_t(c) * xq_stride) + ib;
            __m512i sumi = _mm512_setzero_si512();
            for (int k = 0; k < 4; ++k)
                sumi = dpwssd<kVnni>(sumi, _mm512_maddubs_epi16(q[k], load512(y->qs + 64 * k)), s[k]);
            const __m256i mm = _mm256_madd_epi16(load256(y->bsums), mins16);
            acc[c] = _mm512_fmadd_ps(_mm512_set1_ps(y->d * dw), _mm512_cvtepi32_ps(sumi), acc[c]);
            acc[c] = _mm512_fmadd_ps(_mm512_set1_ps(-y->d * dmw), _mm512_zextps256_ps512(_mm256_cvtepi32_ps(mm)), acc[c]);
        }
    }
    for (int c = 0; c < NC; ++c) out[size_t(c) * out_stride] = _mm512_reduce_add_ps(acc[c]);
}

template <bool kVnni, int NC>
void gemm_q6_k_row(int64_t nb, const BlockQ6_K* w, const uint8_t* xq, size_t xq_stride, float* out,
                   size_t out_stride) {
    __m512 acc[NC];
    for (int c = 0; c < NC; ++c) acc[c] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0f), m3 = _mm512_set1_epi8(0x03);
    const __m512i lane_grp = _mm512_srli_epi16(
        _mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16,
                         15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), 3);
    for (int64_t ib = 0; ib < nb; ++ib) {
        const BlockQ6_K* b = w + ib;
        const __m256i sc16_256 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b->scales)));
        const __m512i sc16 = _mm512_castsi256_si512(sc16_256);
        __m512i qa[2], qb[2], sa[2], sb[2];
        for (int h = 0; h < 2; ++h) {
            const __m512i ql = load512(b->ql + 64 * h);
            const __m256i qh256 = load256(b->qh + 32 * h);
            const __m512i qh = concat(qh256, _mm256_srli_epi16(qh256, 2));
            qa[h] = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_slli_epi16(_mm512_and_si512(qh, m3), 4));
            qb[h] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                    _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(qh, 4), m3), 4));
            sa[h] = _mm512_permutexvar_epi16(_mm512_add_epi16(lane_grp, _mm512_set1_epi16(short(8 * h))), sc16);
            sb[h] = _mm512_permutexvar_epi16(_mm512_add_epi16(lane_grp, _mm512_set1_epi16(short(8 * h + 4))), sc16);
        }
        const float dw = half_to_float(b->d);
        for (int c = 0; c < NC; ++c) {
            const BlockQ8_K* y = reinterpret_cast<const BlockQ8_K*>(xq + size_t(c) * xq_stride) + ib;
            __m512i sumi = _mm512_setzero_si512();
            for (int h = 0; h < 2; ++h) {
                sumi = dpwssd<kVnni>(sumi, _mm512_maddubs_epi16(qa[h], load512(y->qs + 128 * h)), sa[h]);
                sumi = dpwssd<kVnni>(sumi, _mm512_maddubs_epi16(qb[h], load512(y->qs + 128 * h + 64)), sb[h]);
            }
            const __m256i off = dpwssd256<kVnni>(_mm256_setzero_si256(), sc16_256, load256(y->bsums));
            sumi = _mm512_sub_epi32(sumi, _mm512_zextsi256_si512(_mm256_slli_epi32(off, 5)));
            acc[c] = _mm512_fmadd_ps(_mm512_set1_ps(y->d * dw), _mm512_cvtepi32_ps(sumi), acc[c]);
        }
    }
    for (int c = 0; c < NC; ++c) out[size_t(c) * out_stride] = _mm512_reduce_add_ps(acc[c]);
}

// [sum p0, ..., sum p7] of eight int32 vectors
inline __m256i reduce8_epi32(const __m256i p[8]) {
    const __m256i u0 = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
    const __m256i u1 = _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]), _mm256_hadd_epi32(p[6], p[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(u0, u1, 0x20), _mm256_permute2x128_si256(u0, u1, 0x31));
}

// q8_0: 8 activation rows at once. The eight integer block dots are reduced into one vector (lane c
// = activation row c) so the float scale-and-accumulate is one FMA per block for all eight pairs;
// dy [nb, 8] holds the activation block scales. Integer block sums are exact, so the result equals
// vec_dot up to float summation order.
template <bool kVnni>
void gemm_q8_0_row8(int64_t nb, const BlockQ8_0* w, const uint8_t* xq, size_t xq_stride, const float* dy,
                    float* out, size_t out_stride) {
    __m256 acc = _mm256_setzero_ps();
    const BlockQ8_0* y[8];
    for (int c = 0; c < 8; ++c) y[c] = reinterpret_cast<const BlockQ8_0*>(xq + size_t(c) * xq_stride);
    for (int64_t ib = 0; ib < nb; ++ib) {
        const __m256i wv = load256(w[ib].qs);
        const __m256i aw = _mm256_abs_epi8(wv);
        __m256i p[8];
        for (int c = 0; c < 8; ++c)
            p[c] = dpbusd<kVnni>(_mm256_setzero_si256(), aw, _mm256_sign_epi8(load256(y[c][ib].qs), wv));
        const __m256 sc = _mm256_mul_ps(_mm256_set1_ps(half_to_float(w[ib].d)), _mm256_loadu_ps(dy + 8 * ib));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(reduce8_epi32(p)), sc, acc);
    }
    alignas(32) float t[8];
    _mm256_store_ps(t, acc);
    for (int c = 0; c < 8; ++c) out[size_t(c) * out_stride] = t[c];
}

template <bool kVnni>
const QuantKernels& kernels_self() { return quant_kernels_avx512(!kVnni); }

template <bool kVnni, typename WB, template <bool, int> class Row>
void gemm_k(int64_t n, const void* w, size_t w_stride, int64_t nr, const void* xq, size_t xq_stride,
            int64_t m, float* y, size_t y_stride) {
    const uint8_t* wb = static_cast<const uint8_t*>(w);
    const uint8_t* xb = static_cast<const uint8_t*>(xq);
    int64_t i = 0;
    for (; i + 8 <= m; i += 8)
        for (int64_t r = 0; r < nr; ++r)
            Row<kVnni, 8>::run(n / kQkK, reinterpret_cast<const WB*>(wb + size_t(r) * w_stride),
                               xb + size_t(i) * xq_stride, xq_stride, y + size_t(i) * y_stride + r, y_stride);
    for (; i < m; ++i)
        for (int64_t r = 0; r < nr; ++r)
            Row<kVnni, 1>::run(n / kQkK, reinterpret_cast<const WB*>(wb + size_t(r) * w_stride),
                               xb + size_t(i) * xq_stride, xq_stride, y + size_t(i) * y_stride + r, y_stride);
}
template <bool kVnni, int NC>
struct RowQ4K { static void run(int64_t nb, const BlockQ4_K* w, const uint8_t* x, size_t xs, float* o, size_t os) { gemm_q4_k_row<kVnni, NC>(nb, w, x, xs, o, os); } };
template <bool kVnni, int NC>
struct RowQ6K { static void run(int64_t nb, const BlockQ6_K* w, const uint8_t* x, size_t xs, float* o, size_t os) { gemm_q6_k_row<kVnni, NC>(nb, w, x, xs, o, os); } };

template <bool kVnni>
void gemm_q8_0(int64_t n, const void* w, size_t w_stride, int64_t nr, const void* xq, size_t xq_stride,
               int64_t m, float* y, size_t y_stride) {
    const int64_t nb = n / kQk;
    const uint8_t* wb = static_cast<const uint8_t*>(w);
    const uint8_t* xb = static_cast<const uint8_t*>(xq);
    // NOTE: a stack buffer, not std::vector (see the top of the file); rows longer than kMaxNb
    // blocks (n > 16384) take the row-by-row path.
    constexpr int64_t kMaxNb = 512;
    alignas(32) float dy[kMaxNb * 8];  // [nb, 8] activation scales of the current 8 rows
    int64_t i = 0;
    for (; nb <= kMaxNb && i + 8 <= m; i += 8) {
        for (int c = 0; c < 8; ++c) {
            const BlockQ8_0* yc = reinterpret_cast<const BlockQ8_0*>(xb + size_t(i + c) * xq_stride);
            for (int64_t ib = 0; ib < nb; ++ib) dy[8 * ib + c] = half_to_float(yc[ib].d);
        }
        for (int64_t r = 0; r < nr; ++r)
            gemm_q8_0_row8<kVnni>(nb, reinterpret_cast<const BlockQ8_0*>(wb + size_t(r) * w_stride),
                                  xb + size_t(i) * xq_stride, xq_stride, dy, y + size_t(i) * y_stride + r, y_stride);
    }
    for (; i < m; ++i)
        kernels_self<kVnni>().vec_dot_rows(DType::kQ8_0, n, w, w_stride, nr, xb + size_t(i) * xq_stride,
                                           y + size_t(i) * y_stride);
}

template <bool kVnni>
void gemm_avx512(DType t, int64_t n, const void* w, size_t w_stride, int64_t nr, const void* xq,
                 size_t xq_stride, int64_t m, float* y, size_t y_stride) {
    switch (t) {
        case DType::kQ4_K: return gemm_k<kVnni, BlockQ4_K, RowQ4K>(n, w, w_stride, nr, xq, xq_stride, m, y, y_stride);
        case DType::kQ6_K: return gemm_k<kVnni, BlockQ6_K, RowQ6K>(n, w, w_stride, nr, xq, xq_stride, m, y, y_stride);
        case DType::kQ8_0: return gemm_q8_0<kVnni>(n, w, w_stride, nr, xq, xq_stride, m, y, y_stride);
        default: return gemm_by_rows(kernels_self<kVnni>(), t, n, w, w_stride, nr, xq, xq_stride, m, y, y_stride);
    }
}

// Activation quantization is a small fraction of matmul time; the AVX2 versions (bit-identical to
// the reference) are reused rather than duplicated.
void quantize_row_avx512(DType t, const float* src, void* dst, int64_t n) {
    quant_kernels_avx2().quantize_row(t, src, dst, n);
}
void dequantize_row_avx512(DType t, const void* src, float* dst, int64_t n) {
    quant_kernels_avx2().dequantize_row(t, src, dst, n);
}

}  // namespace

const QuantKernels& quant_kernels_avx512(bool force_plain) {
    static const QuantKernels vnni{Isa::kAvx512, dequantize_row_avx512, quantize_row_avx512,
                                   vec_dot_avx512<true>, vec_dot_rows_avx512<true>, gemm_avx512<true>};
    static const QuantKernels plain{Isa::kAvx512, dequantize_row_avx512, quantize_row_avx512,
                                    vec_dot_avx512<false>, vec_dot_rows_avx512<false>, gemm_avx512<false>};
    return !force_plain && cpu_features().avx512vnni ? vnni : plain;
}

}  // namespace hkv
