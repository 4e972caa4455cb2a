// backend/cpu/quant_blocks.h — GGUF/ggml quantization block layouts, bit for bit.
//
// Every struct is exactly the on-disk block of its ggml type (ggml-common.h), so a GGUF tensor's bytes
// can be reinterpreted as an array of these blocks. Halves are stored as raw uint16_t bits (IEEE f16);
// convert with fp16_to_fp32 / fp32_to_fp16 from core/fp16.h. Sizes are checked against dtype.cpp's table
// in quant_ref.cpp (static_assert here, runtime check in tests).
//
// Element order inside a block (what dequantize produces), with q the stored unsigned quant:
//   q4_0: y[j] = d * (q[j] - 8),  q[j] = qs[j] & 15 for j < 16, qs[j-16] >> 4 for j >= 16
//   q4_1: y[j] = d * q[j] + m                 (same nibble order as q4_0)
//   q5_0: y[j] = d * ((nibble | bit_j(qh) << 4) - 16)   qh is a little-endian uint32, bit j for element j
//   q5_1: y[j] = d * (nibble | bit_j(qh) << 4) + m
//   q8_0: y[j] = d * qs[j];   q8_1 adds s = d * sum(qs) (used by the q4_1/q5_1 dot product)
//   q4_K: 8 sub-blocks of 32 with 6-bit (scale, min) packed in scales[12]; y = d*sc*q - dmin*m.
//         qs[32*k + l] holds element 64k + l (low nibble) and 64k + 32 + l (high nibble).
//   q5_K: as q4_K plus qh[32]: bit i of qh[l] is the 5th bit of element 32i + l.
//   q6_K: 16 sub-blocks of 16 with int8 scales; two halves of 128 elements. In half h, for l < 32:
//         element 128h + 32k + l has low 4 bits from ql[64h + l + 32*(k&1)] (low nibble if k < 2, else
//         high), high 2 bits from (qh[32h + l] >> 2k) & 3, value (q - 32), scale scales[8h + 2k + l/16].
//   q8_K: float d (not half), 256 int8, bsums[16] = sums of consecutive groups of 16 quants.
//   q2_K: 16 groups of 16 with 4-bit (scale, min) in scales[g] (low, high nibble); y = d*sc*q - dmin*m,
//         q in 0..3. In half h (128 elements), for s < 4, l < 32: element 128h + 32s + l has
//         q = (qs[32h + l] >> 2s) & 3 and group 8h + 2s + l/16.
//   q3_K: 16 groups of 16 with signed 6-bit scales (unpack_scales_q3_k, minus 32); y = d*sc*(u - 4)
//         with u in 0..7: element 128h + 32s + l has low bits (qs[32h + l] >> 2s) & 3 and high bit
//         (hmask[l] >> (4h + s)) & 1 (set = +4).
//   iq4_nl: 32 elements, y[j] = d * kIq4nlValues[nibble j] (nibble order of q4_0).
//   iq4_xs: 8 sub-blocks of 32 as iq4_nl with a 6-bit scale each: ls_j = low nibble j of
//         scales_l (byte j/2, nibble j%2) | 2 bits j of scales_h << 4; y = d * (ls_j - 32) * value.
#pragma once

#include <cstdint>

namespace hkv {

constexpr int kQk = 32;    // block size of the legacy types (q4_0 .. q8_1)
constexpr int kQkK = 256;  // super-block size of the K-quants
constexpr int kKScaleSize = 12;

struct BlockQ4_0 {
    uint16_t d;            // f16 scale
    uint8_t qs[kQk / 2];   // nibbles
};
struct BlockQ4_1 {
    uint16_t d;            // f16 scale
    uint16_t m;            // f16 min
    uint8_t qs[kQk / 2];
};
struct BlockQ5_0 {
    uint16_t d;
    uint8_t qh[4];         // 5th bits, little-endian uint32
    uint8_t qs[kQk / 2];
};
struct BlockQ5_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qh[4];
    uint8_t qs[kQk / 2];
};
struct BlockQ8_0 {
    uint16_t d;
    int8_t qs[kQk];
};
struct BlockQ8_1 {
    uint16_t d;
    uint16_t s;            // f16: d * sum(qs)
    int8_t qs[kQk];
};
struct BlockQ4_K {
    uint16_t d;            // f16 super-scale of the sub-block scales
    uint16_t dmin;         // f16 super-scale of the sub-block mins
    uint8_t scales[kKScaleSize];  // 8 x (6-bit scale, 6-bit min), see unpack_scale_min_k4
    uint8_t qs[kQkK / 2];
};
struct BlockQ5_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[kKScaleSize];
    uint8_t qh[kQkK / 8];
    uint8_t qs[kQkK / 2];
};
struct BlockQ6_K {
    uint8_t ql[kQkK / 2];   // low 4 bits
    uint8_t qh[kQkK / 4];   // high 2 bits
    int8_t scales[kQkK / 16];
    uint16_t d;             // f16
};
struct BlockQ8_K {
    float d;
    int8_t qs[kQkK];
    int16_t bsums[kQkK / 16];
};

struct BlockQ2_K {
    uint8_t scales[kQkK / 16];  // low nibble scale, high nibble min, per group of 16
    uint8_t qs[kQkK / 4];       // 2-bit quants
    uint16_t d;                 // f16 super-scale of the scales
    uint16_t dmin;              // f16 super-scale of the mins
};
struct BlockQ3_K {
    uint8_t hmask[kQkK / 8];    // high bits
    uint8_t qs[kQkK / 4];       // low 2 bits
    uint8_t scales[12];         // 16 x 6-bit scales, see unpack_scales_q3_k
    uint16_t d;                 // f16
};
struct BlockIQ4_NL {
    uint16_t d;                 // f16
    uint8_t qs[kQk / 2];        // indices into kIq4nlValues
};
struct BlockIQ4_XS {
    uint16_t d;                 // f16
    uint16_t scales_h;          // 2 high bits of each of the 8 sub-block scales
    uint8_t scales_l[kQkK / 64];  // 4 low bits of each sub-block scale
    uint8_t qs[kQkK / 2];       // indices into kIq4nlValues
};

// The 16 non-linear levels of iq4_nl / iq4_xs (ggml's kvalues_iq4nl), ascending.
inline constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};
// The same levels as f32, for SIMD lookups (hq4's AVX-512 permute).
struct Iq4nlLevelsF32 {
    alignas(64) float v[16];
};
inline constexpr Iq4nlLevelsF32 kIq4nlLevelsF32 = [] {
    Iq4nlLevelsF32 t{};
    for (int i = 0; i < 16; ++i) t.v[i] = float(kIq4nlValues[i]);
    return t;
}();

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockIQ4_NL) == 18);
static_assert(sizeof(BlockIQ4_XS) == 136);
static_assert(alignof(BlockQ4_0) == 2 && alignof(BlockQ6_K) == 2 && alignof(BlockQ8_K) == 4);

// The j-th (j in [0, 8)) 6-bit scale and min of a q4_K/q5_K block. Layout of scales[12]:
//   bytes 0-3: low 6 bits = scale j (j < 4), top 2 bits = bits 4-5 of scale j+4
//   bytes 4-7: low 6 bits = min j (j < 4),   top 2 bits = bits 4-5 of min j+4
//   bytes 8-11: low nibble = bits 0-3 of scale j+4, high nibble = bits 0-3 of min j+4
inline void unpack_scale_min_k4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = uint8_t((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
        *m = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

// Inverse of unpack_scale_min_k4 for all 8 sub-blocks (sc[j], m[j] < 64).
inline void pack_scale_min_k4(const uint8_t* sc, const uint8_t* m, uint8_t* q) {
    for (int j = 0; j < 4; ++j) {
        q[j] = uint8_t((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        q[j + 4] = uint8_t((m[j] & 63) | ((m[j + 4] >> 4) << 6));
        q[j + 8] = uint8_t((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
    }
}

// The 16 scales of a q3_K block as stored (0..63; the value used is this minus 32). Layout of
// scales[12]: bytes 0-7 hold the low 4 bits (scale j < 8: low nibble of byte j; j >= 8: high nibble of
// byte j - 8); bytes 8-11 the high 2 bits (scale j: bits 2(j/4)..2(j/4)+1 of byte 8 + j%4).
inline void unpack_scales_q3_k(const uint8_t* q, uint8_t out[16]) {
    for (int j = 0; j < 16; ++j) {
        const int lo = j < 8 ? (q[j] & 0x0f) : (q[j - 8] >> 4);
        const int hi = (q[8 + j % 4] >> (2 * (j / 4))) & 3;
        out[j] = uint8_t(lo | (hi << 4));
    }
}
// Inverse of unpack_scales_q3_k (ls[j] < 64).
inline void pack_scales_q3_k(const uint8_t* ls, uint8_t* q) {
    for (int j = 0; j < 12; ++j) q[j] = 0;
    for (int j = 0; j < 16; ++j) {
        q[j % 8] = uint8_t(q[j % 8] | ((ls[j] & 0x0f) << (j < 8 ? 0 : 4)));
        q[8 + j % 4] = uint8_t(q[8 + j % 4] | ((ls[j] >> 4) << (2 * (j / 4))));
    }
}

}  // namespace hkv
