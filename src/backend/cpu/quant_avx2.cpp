// backend/cpu/quant_avx2.cpp — AVX2/FMA/F16C kernels (the project's floor ISA).
//
// Each weight type has a small kernel struct: load_act() reads one activation block into registers
// once, block() adds one weight block's contribution to a row accumulator, finish() reduces it.
// dot_rows<K, NR> runs NR weight rows over the same activation blocks, so vec_dot is NR = 1 and
// vec_dot_rows takes rows four at a time. Integer dot products use the unsigned x signed byte
// multiply (vpmaddubsw): the weight quants are kept unsigned and the offset (-8, -16, -32) is
// subtracted through the activation sum, so no product saturates (max |pair| is 2*63*127).
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "backend/cpu/quant_internal.h"
#include "backend/cpu/quant_rows.h"

namespace hkv {
namespace {

inline float half_to_float(uint16_t h) { return _cvtsh_ss(h); }
inline uint16_t float_to_half(float f) { return uint16_t(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT)); }

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
inline int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

// sum of u8 x s8 products, as 8 int32 lanes
inline __m256i dot_u8s8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// 16 bytes of nibbles -> 32 bytes: low nibbles (elements 0..15) then high nibbles (16..31)
inline __m256i unpack_nibbles(const uint8_t* qs) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

// 32 bits -> 32 bytes, byte j = 0x10 if bit j is set
inline __m256i bits_to_0x10(const uint8_t* qh4) {
    uint32_t bits;
    std::memcpy(&bits, qh4, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                           0x0101010101010101, 0x0000000000000000);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(int(bits)), shuf);
    const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201));
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// ---- kernels: legacy types ----

struct ActQ8 {        // one q8_0 / q8_1 activation block
    __m256i y;        // 32 int8
    __m256i ysum;     // sum(y) spread over 8 int32 lanes (for the unsigned-weight offset)
    float d, s;       // scale; for q8_1, d * sum(y)
};

template <typename YB>
inline ActQ8 load_act_q8(const YB* b) {
    ActQ8 a;
    a.y = load256(b->qs);
    a.ysum = dot_u8s8(_mm256_set1_epi8(1), a.y);
    a.d = half_to_float(b->d);
    if constexpr (sizeof(YB) == sizeof(BlockQ8_1)) a.s = half_to_float(b->s); else a.s = 0;
    return a;
}

struct KQ4_0 {
    using WB = BlockQ4_0; using YB = BlockQ8_0; using Act = ActQ8; using Acc = __m256;
    static Act load_act(const YB* b) { return load_act_q8(b); }
    static void block(const WB* b, const Act& a, Acc& acc) {
        __m256i p = dot_u8s8(unpack_nibbles(b->qs), a.y);
        p = _mm256_sub_epi32(p, _mm256_slli_epi32(a.ysum, 3));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(half_to_float(b->d) * a.d), _mm256_cvtepi32_ps(p), acc);
    }
    static float finish(const Acc& acc) { return hsum(acc); }
};

struct KQ4_1 {
    using WB = BlockQ4_1; using YB = BlockQ8_1; using Act = ActQ8; using Acc = __m256;
    static Act load_act(const YB* b) { return load_act_q8(b); }
    static void block(const WB* b, const Act& a, Acc& acc) {
        const __m256i p = dot_u8s8(unpack_nibbles(b->qs), a.y);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(half_to_float(b->d) * a.d), _mm256_cvtepi32_ps(p), acc);
        // m * s added to lane 0 only
        acc = _mm256_add_ps(acc, _mm256_castps128_ps256(_mm_set_ss(half_to_float(b->m) * a.s)));
    }
    static float finish(const Acc& acc) { return hsum(acc); }
};

struct KQ5_0 {
    using WB = BlockQ5_0; using YB = BlockQ8_0; using Act = ActQ8; using Acc = __m256;
    static Act load_act(const YB* b) { return load_act_q8(b); }
    static void block(const WB* b, const Act& a, Acc& acc) {
        const __m256i q = _mm256_or_si256(unpack_nibbles(b->qs), bits_to_0x10(b->qh));
        __m256i p = dot_u8s8(q, a.y);
        p = _mm256_sub_epi32(p, _mm256_slli_epi32(a.ysum, 4));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(half_to_float(b->d) * a.d), _mm256_cvtepi32_ps(p), acc);
    }
    static float finish(const Acc& acc) { return hsum(acc); }
};

struct KQ5_1 {
    using WB = BlockQ5_1; using YB = BlockQ8_1; using Act = ActQ8; using Acc = __m256;
    static Act load_act(const YB* b) { return load_act_q8(b); }
    static void block(const WB* b, const Act& a, Acc& acc) {
        const __m256i q = _mm256_or_si256(unpack_nibbles(b->qs), bits_to_0x10(b->qh));
        const __m256i p = dot_u8s8(q, a.y);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(half_to_float(b->d) * a.d), _mm256_cvtepi32_ps(p), acc);
        acc = _mm256_add_ps(acc, _mm256_castps128_ps256(_mm_set_ss(half_to_float(b->m) * a.s)));
    }
    static float finish(const Acc& acc) { return hsum(acc); }
};

struct KQ8_0 {
    using WB = BlockQ8_0; using YB = BlockQ8_0; using Act = ActQ8; using Acc = __m256;
    static Act load_act(const YB* b) {
        Act a;
        a.y = load256(b->qs);
        a.d = half_to_float(b->d);
        return a;
    }
    static void block(const WB* b, const Act& a, Acc& acc) {
        const __m256i w = load256(b->qs);
        // |w| (unsigned) x sign(y, w): same products, fits vpmaddubsw. y is never -128 (ours).
        const __m256i p = dot_u8s8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a.y, w));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(half_to_float(b->d) * a.d), _mm256_cvtepi32_ps(p), acc);
    }
    static float finish(const Acc& acc) { return hsum(acc); }
};

// ---- kernels: K-quants (activation read from L1 per row; 256 bytes do not fit in registers) ----

// 6-bit scales and mins of q4_K/q5_K: bytes 0..7 scales, 8..15 mins.
inline void unpack_k4_scales(const uint8_t* q, uint8_t out[16]) {
    uint32_t a, b, c;
    std::memcpy(&a, q, 4);
    std::memcpy(&b, q + 4, 4);
    std::memcpy(&c, q + 8, 4);
    const uint32_t w[4] = {a & 0x3f3f3f3fu, (c & 0x0f0f0f0fu) | ((a >> 2) & 0x30303030u),
                           b & 0x3f3f3f3fu, ((c >> 4) & 0x0f0f0f0fu) | ((b >> 2) & 0x30303030u)};
    std::memcpy(out, w, 16);
}

struct AccK {
    __m256 v;   // d-scaled integer dot
    __m256 m;   // dmin-scaled mins term (subtracted)
};

template <bool kFive>
struct KQ45_K {
    using WB = std::conditional_t<kFive, BlockQ5_K, BlockQ4_K>;
    using YB = BlockQ8_K; using Act = const YB*; using Acc = AccK;
    static Act load_act(const YB* b) { return b; }
    static void block(const WB* b, Act y, Acc& acc) {
        alignas(16) uint8_t sm[16];
        unpack_k4_scales(b->scales, sm);
        const __m256i m4 = _mm256_set1_epi8(0x0f);
        __m256i sumi = _mm256_setzero_si256();
        __m256i qh;
        if constexpr (kFive) qh = load256(b->qh);
        for (int k = 0; k < 4; ++k) {
            const __m256i q = load256(b->qs + 32 * k);
            __m256i lo = _mm256_and_si256(q, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            if constexpr (kFive) {
                const __m256i one = _mm256_set1_epi8(1);
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(qh, one), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 1), one), 4));
                qh = _mm256_srli_epi16(qh, 2);
            }
            const __m256i p0 = _mm256_maddubs_epi16(lo, load256(y->qs + 64 * k));
            const __m256i p1 = _mm256_maddubs_epi16(hi, load256(y->qs + 64 * k + 32));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p0, _mm256_set1_epi16(sm[2 * k])));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p1, _mm256_set1_epi16(sm[2 * k + 1])));
        }
        // mins: lane j = m_j * (bsums[2j] + bsums[2j+1])
        const __m128i mins8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(sm + 8));
        const __m128i mins_dup = _mm_unpacklo_epi8(mins8, mins8);  // m0 m0 m1 m1 ...
        const __m256i mm = _mm256_madd_epi16(load256(y->bsums), _mm256_cvtepu8_epi16(mins_dup));
        acc.v = _mm256_fmadd_ps(_mm256_set1_ps(y->d * half_to_float(b->d)), _mm256_cvtepi32_ps(sumi), acc.v);
        acc.m = _mm256_fmadd_ps(_mm256_set1_ps(y->d * half_to_float(b->dmin)), _mm256_cvtepi32_ps(mm), acc.m);
    }
    static float finish(const Acc& acc) { return hsum(_mm256_sub_ps(acc.v, acc.m)); }
};

struct KQ6_K {
    using WB = BlockQ6_K; using YB = BlockQ8_K; using Act = const YB*; using Acc = __m256;
    static Act load_act(const YB* b) { return b; }
    static void block(const WB* b, Act y, Acc& acc) {
        const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(0x03);
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; ++h) {
            const __m256i ql0 = load256(b->ql + 64 * h), ql1 = load256(b->ql + 64 * h + 32);
            const __m256i qh = load256(b->qh + 32 * h);
            __m256i q[4];
            q[0] = _mm256_and_si256(ql0, m4);
            q[1] = _mm256_and_si256(ql1, m4);
            q[2] = _mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4);
            q[3] = _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4);
            q[0] = _mm256_or_si256(q[0], _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
            q[1] = _mm256_or_si256(q[1], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m3), 4));
            q[2] = _mm256_or_si256(q[2], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m3), 4));
            q[3] = _mm256_or_si256(q[3], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m3), 4));
            for (int k = 0; k < 4; ++k) {
                const int8_t* sc = b->scales + 8 * h + 2 * k;
                const __m256i scv = _mm256_set_m128i(_mm_set1_epi16(sc[1]), _mm_set1_epi16(sc[0]));
                const __m256i p = _mm256_maddubs_epi16(q[k], load256(y->qs + 128 * h + 32 * k));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scv));
            }
        }
        // the -32 offset: 32 * sum_g sc_g * bsums_g
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b->scales)));
        const __m256i off = _mm256_madd_epi16(sc16, load256(y->bsums));
        sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(off, 5));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y->d * half_to_float(b->d)), _mm256_cvtepi32_ps(sumi), acc);
    }
    static float finish(const Acc& acc) { return hsum(acc); }
};

// ---- kernels: q2_K, q3_K (2/3-bit groups of 16) and the non-linear iq4_nl / iq4_xs ----

// [v x 8 in the low 128 bits, w x 8 in the high 128 bits] as 16-bit lanes
inline __m256i scales_pair16(int v, int w) { return _mm256_set_m128i(_mm_set1_epi16(short(w)), _mm_set1_epi16(short(v))); }

// q2_K (kThree = false) and q3_K: 2-bit fields per 32-element step, scales applied per group of 16.
// q3_K's quants are used unsigned (u = value + 4, 0..7, its third bit from hmask) and the offset
// 4 * sum_g sc_g * bsums_g is subtracted once per block; q2_K's mins go through the bsums too.
template <bool kThree>
struct KQ23_K {
    using WB = std::conditional_t<kThree, BlockQ3_K, BlockQ2_K>;
    using YB = BlockQ8_K; using Act = const YB*; using Acc = AccK;
    static Act load_act(const YB* b) { return b; }
    static void block(const WB* b, Act y, Acc& acc) {
        alignas(32) int16_t sc[16];  // group scales (q3_K signed)
        if constexpr (kThree) q3_k_scales_i16(b->scales, sc);
        else for (int g = 0; g < 16; ++g) sc[g] = int16_t(b->scales[g] & 0x0f);
        const __m256i m3 = _mm256_set1_epi8(3);
        __m256i hm;
        if constexpr (kThree) hm = load256(b->hmask);
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; ++h) {
            const __m256i q = load256(b->qs + 32 * h);
            for (int s = 0; s < 4; ++s) {
                __m256i u = _mm256_and_si256(_mm256_srli_epi16(q, 2 * s), m3);
                if constexpr (kThree) {
                    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + s), _mm256_set1_epi8(1));
                    u = _mm256_or_si256(u, _mm256_slli_epi16(hi, 2));
                }
                const __m256i p = _mm256_maddubs_epi16(u, load256(y->qs + 128 * h + 32 * s));
                const int g = 8 * h + 2 * s;  // groups of the low / high 16 elements
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scales_pair16(sc[g], sc[g + 1])));
            }
        }
        if constexpr (kThree) {
            const __m256i off = _mm256_madd_epi16(load256(sc), load256(y->bsums));
            sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(off, 2));
        } else {  // mins: lane g = m_g * bsums_g, pairs summed
            const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b->scales));
            const __m128i mins8 = _mm_and_si128(_mm_srli_epi16(sc8, 4), _mm_set1_epi8(0x0f));
            const __m256i mm = _mm256_madd_epi16(load256(y->bsums), _mm256_cvtepu8_epi16(mins8));
            acc.m = _mm256_fmadd_ps(_mm256_set1_ps(y->d * half_to_float(b->dmin)), _mm256_cvtepi32_ps(mm), acc.m);
        }
        acc.v = _mm256_fmadd_ps(_mm256_set1_ps(y->d * half_to_float(b->d)), _mm256_cvtepi32_ps(sumi), acc.v);
    }
    static float finish(const Acc& acc) { return hsum(_mm256_sub_ps(acc.v, acc.m)); }
};

// 32 iq4 levels (int8) of one 16-byte group: low nibbles, then high nibbles
inline __m256i iq4_levels(const uint8_t* qs) {
    const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)));
    return _mm256_shuffle_epi8(table, unpack_nibbles(qs));
}

struct KIQ4_NL {
    using WB = BlockIQ4_NL; using YB = BlockQ8_0; using Act = ActQ8; using Acc = __m256;
    static Act load_act(const YB* b) { return KQ8_0::load_act(b); }
    static void block(const WB* b, const Act& a, Acc& acc) {
        const __m256i w = iq4_levels(b->qs);  // never 0, so sign() keeps every product
        const __m256i p = dot_u8s8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a.y, w));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(half_to_float(b->d) * a.d), _mm256_cvtepi32_ps(p), acc);
    }
    static float finish(const Acc& acc) { return hsum(acc); }
};

struct KIQ4_XS {
    using WB = BlockIQ4_XS; using YB = BlockQ8_K; using Act = const YB*; using Acc = __m256;
    static Act load_act(const YB* b) { return b; }
    static void block(const WB* b, Act y, Acc& acc) {
        int16_t sc[8];
        iq4_xs_scales_i16(b, sc);
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < 8; ++j) {
            const __m256i w = iq4_levels(b->qs + 16 * j);
            const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(load256(y->qs + 32 * j), w));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, _mm256_set1_epi16(sc[j])));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y->d * half_to_float(b->d)), _mm256_cvtepi32_ps(sumi), acc);
    }
    static float finish(const Acc& acc) { return hsum(acc); }
};

// ---- float types ----

inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const uint16_t* p, bool bf16) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    if (bf16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
}

template <typename T, int NR>
void dot_rows_float(int64_t n, const void* w, size_t w_stride, const void* xq, float* out, bool bf16) {
    const T* x = static_cast<const T*>(xq);
    const uint8_t* wb = static_cast<const uint8_t*>(w);
    __m256 acc[NR][2];
    for (int r = 0; r < NR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    int64_t i = 0;
    auto ld = [&](const T* p) { if constexpr (sizeof(T) == 4) return load8(p); else return load8(p, bf16); };
    auto cvt1 = [&](T v) -> float {
        if constexpr (sizeof(T) == 4) return v;
        else return bf16 ? _mm_cvtss_f32(_mm_castsi128_ps(_mm_cvtsi32_si128(int(uint32_t(v) << 16)))) : half_to_float(v);
    };
    RowPrefetch<NR> prefetch(wb, w_stride, n / 16);
    for (; i + 16 <= n; i += 16) {
        prefetch();
        const __m256 x0 = ld(x + i), x1 = ld(x + i + 8);
        for (int r = 0; r < NR; ++r) {
            const T* wr = reinterpret_cast<const T*>(wb + size_t(r) * w_stride);
            acc[r][0] = _mm256_fmadd_ps(ld(wr + i), x0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(ld(wr + i + 8), x1, acc[r][1]);
        }
    }
    for (int r = 0; r < NR; ++r) {
        const T* wr = reinterpret_cast<const T*>(wb + size_t(r) * w_stride);
        float s = hsum(_mm256_add_ps(acc[r][0], acc[r][1]));
        for (int64_t j = i; j < n; ++j) s += cvt1(wr[j]) * cvt1(x[j]);
        out[r] = s;
    }
}

// ---- dispatch tables ----

using RowsFn = void (*)(int64_t, const void*, size_t, const void*, float*);

template <int NR> void rows_f32(int64_t n, const void* w, size_t s, const void* x, float* o) { dot_rows_float<float, NR>(n, w, s, x, o, false); }
template <int NR> void rows_f16(int64_t n, const void* w, size_t s, const void* x, float* o) { dot_rows_float<uint16_t, NR>(n, w, s, x, o, false); }
template <int NR> void rows_bf16(int64_t n, const void* w, size_t s, const void* x, float* o) { dot_rows_float<uint16_t, NR>(n, w, s, x, o, true); }

// {one row, four rows} for a type; nullptr = not a weight type here
void rows_fns(DType t, RowsFn* one, RowsFn* four) {
    switch (t) {
        case DType::kF32: *one = rows_f32<1>; *four = rows_f32<4>; return;
        case DType::kF16: *one = rows_f16<1>; *four = rows_f16<4>; return;
        case DType::kBF16: *one = rows_bf16<1>; *four = rows_bf16<4>; return;
        case DType::kQ4_0: *one = dot_rows<KQ4_0, 1>; *four = dot_rows<KQ4_0, 4>; return;
        case DType::kQ4_1: *one = dot_rows<KQ4_1, 1>; *four = dot_rows<KQ4_1, 4>; return;
        case DType::kQ5_0: *one = dot_rows<KQ5_0, 1>; *four = dot_rows<KQ5_0, 4>; return;
        case DType::kQ5_1: *one = dot_rows<KQ5_1, 1>; *four = dot_rows<KQ5_1, 4>; return;
        case DType::kQ8_0: *one = dot_rows<KQ8_0, 1>; *four = dot_rows<KQ8_0, 4>; return;
        case DType::kQ4_K: *one = dot_rows<KQ45_K<false>, 1>; *four = dot_rows<KQ45_K<false>, 4>; return;
        case DType::kQ5_K: *one = dot_rows<KQ45_K<true>, 1>; *four = dot_rows<KQ45_K<true>, 4>; return;
        case DType::kQ6_K: *one = dot_rows<KQ6_K, 1>; *four = dot_rows<KQ6_K, 4>; return;
        case DType::kQ2_K: *one = dot_rows<KQ23_K<false>, 1>; *four = dot_rows<KQ23_K<false>, 4>; return;
        case DType::kQ3_K: *one = dot_rows<KQ23_K<true>, 1>; *four = dot_rows<KQ23_K<true>, 4>; return;
        case DType::kIQ4_NL: *one = dot_rows<KIQ4_NL, 1>; *four = dot_rows<KIQ4_NL, 4>; return;
        case DType::kIQ4_XS: *one = dot_rows<KIQ4_XS, 1>; *four = dot_rows<KIQ4_XS, 4>; return;
        default: *one = *four = nullptr; return;
    }
}

float vec_dot_avx2(DType t, int64_t n, const void* w, const void* xq) {
    RowsFn one, four;
    rows_fns(t, &one, &four);
    if (!one) return vec_dot_ref(t, n, w, xq);
    float r;
    one(n, w, 0, xq, &r);
    return r;
}

void vec_dot_rows_avx2(DType t, int64_t n, const void* w, size_t w_stride, int64_t nr, const void* xq,
                       float* out) {
    RowsFn one, four;
    rows_fns(t, &one, &four);
    const uint8_t* wb = static_cast<const uint8_t*>(w);
    int64_t r = 0;
    if (one) {
        for (; r + 4 <= nr; r += 4) four(n, wb + size_t(r) * w_stride, w_stride, xq, out + r);
        for (; r < nr; ++r) one(n, wb + size_t(r) * w_stride, w_stride, xq, out + r);
    } else {
        for (; r < nr; ++r) out[r] = vec_dot_ref(t, n, wb + size_t(r) * w_stride, xq);
    }
}

// ---- activation quantizers (bit-identical to quantize_row_ref) ----

// roundf (half away from zero) of 8 floats
inline __m256i round_away(__m256 v) {
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 frac = _mm256_sub_ps(v, t);  // exact
    const __m256 sign_mask = _mm256_set1_ps(-0.0f);
    const __m256 afrac = _mm256_andnot_ps(sign_mask, frac);
    const __m256 one_signed = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(v, sign_mask));
    const __m256 bump = _mm256_and_ps(_mm256_cmp_ps(afrac, _mm256_set1_ps(0.5f), _CMP_GE_OQ), one_signed);
    return _mm256_cvttps_epi32(_mm256_add_ps(t, bump));
}

inline float hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// 32 int32 in four vectors -> 32 int8 in order
inline __m256i pack_i32_to_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
    const __m256i v = _mm256_packs_epi16(ab, cd);  // lane-interleaved: fix the dword order
    return _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

template <typename B>
void quant_q8_avx2(const float* x, B* b, int64_t nb) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int64_t i = 0; i < nb; ++i, x += kQk) {
        __m256 v[4];
        __m256 mx = _mm256_setzero_ps();
        for (int k = 0; k < 4; ++k) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            mx = _mm256_max_ps(mx, _mm256_and_ps(v[k], abs_mask));
        }
        const float d = hmax(mx) / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = float_to_half(d);
        const __m256 idv = _mm256_set1_ps(id);
        __m256i q[4];
        for (int k = 0; k < 4; ++k) q[k] = round_away(_mm256_mul_ps(v[k], idv));
        const __m256i packed = pack_i32_to_i8(q[0], q[1], q[2], q[3]);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(b[i].qs), packed);
        if constexpr (sizeof(B) == sizeof(BlockQ8_1)) {
            const int sum = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
            b[i].s = float_to_half(float(sum) * d);
        }
    }
}

void quant_q8_k_avx2(const float* x, BlockQ8_K* b, int64_t nb) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int64_t i = 0; i < nb; ++i, x += kQkK) {
        __m256 mx = _mm256_setzero_ps();
        for (int k = 0; k < kQkK / 8; ++k) mx = _mm256_max_ps(mx, _mm256_and_ps(_mm256_loadu_ps(x + 8 * k), abs_mask));
        const float amax = hmax(mx);
        if (amax == 0.0f) {
            std::memset(&b[i], 0, sizeof(BlockQ8_K));
            continue;
        }
        const float iscale = 127.0f / amax;
        const __m256 is = _mm256_set1_ps(iscale);
        const __m256i lim = _mm256_set1_epi32(127), nlim = _mm256_set1_epi32(-127);
        for (int g = 0; g < kQkK / 32; ++g) {
            __m256i q[4];
            for (int k = 0; k < 4; ++k) {
                q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(is, _mm256_loadu_ps(x + 32 * g + 8 * k)));
                q[k] = _mm256_max_epi32(nlim, _mm256_min_epi32(lim, q[k]));
            }
            b[i].bsums[2 * g] = int16_t(hsum_i32(_mm256_add_epi32(q[0], q[1])));
            b[i].bsums[2 * g + 1] = int16_t(hsum_i32(_mm256_add_epi32(q[2], q[3])));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(b[i].qs + 32 * g), pack_i32_to_i8(q[0], q[1], q[2], q[3]));
        }
        b[i].d = 1.0f / iscale;
    }
}

void quantize_row_avx2(DType t, const float* src, void* dst, int64_t n) {
    switch (t) {
        case DType::kQ8_0: quant_q8_avx2(src, static_cast<BlockQ8_0*>(dst), n / kQk); return;
        case DType::kQ8_1: quant_q8_avx2(src, static_cast<BlockQ8_1*>(dst), n / kQk); return;
        case DType::kQ8_K: quant_q8_k_avx2(src, static_cast<BlockQ8_K*>(dst), n / kQkK); return;
        case DType::kF16: {
            uint16_t* d = static_cast<uint16_t*>(dst);
            int64_t i = 0;
            for (; i + 8 <= n; i += 8) {
                const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
                _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), h);
            }
            for (; i < n; ++i) d[i] = float_to_half(src[i]);
            return;
        }
        default: quantize_row_ref(t, src, dst, n); return;  // f32 copy, bf16, weight types
    }
}

void dequantize_row_avx2(DType t, const void* src, float* dst, int64_t n) {
    if (t == DType::kF16 || t == DType::kBF16) {
        const uint16_t* s = static_cast<const uint16_t*>(src);
        const bool bf = t == DType::kBF16;
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load8(s + i, bf));
        if (i < n) dequantize_row_ref(t, s + i, dst + i, n - i);
        return;
    }
    dequantize_row_ref(t, src, dst, n);
}

void gemm_avx2(DType t, int64_t n, const void* w, size_t w_stride, int64_t nr, const void* xq,
               size_t xq_stride, int64_t m, float* y, size_t y_stride) {
    gemm_by_rows(quant_kernels_avx2(), t, n, w, w_stride, nr, xq, xq_stride, m, y, y_stride);
}

}  // namespace

const QuantKernels& quant_kernels_avx2() {
    static const QuantKernels k{Isa::kAvx2, dequantize_row_avx2, quantize_row_avx2, vec_dot_avx2,
                                vec_dot_rows_avx2, gemm_avx2};
    return k;
}

}  // namespace hkv
