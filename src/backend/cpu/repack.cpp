// backend/cpu/repack.cpp — the x16 layout (see repack.h): packing, unpacking, kernel dispatch.
//
// Packing moves 4 quants (32-bit words) at a time; it runs once per matrix at load. Unpacking (one
// row: embedding lookups of a tied output matrix, tests) goes element by element.
#include "backend/cpu/repack.h"

#include <cstring>

#include "backend/cpu/quant_blocks.h"
#include "core/assert.h"

namespace hkv {
namespace {

constexpr int R = kX16Rows;

inline uint32_t load_u32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}
inline void store_u32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }

// ---- GGUF element setters (unsigned quants), for unpacking ----
// q4_K: element i (0..255) of a block
inline void q4k_set(BlockQ4_K& b, int i, uint8_t q) {
    const int k = i / 64, l = i % 64;
    uint8_t& byte = b.qs[32 * k + (l < 32 ? l : l - 32)];
    byte = l < 32 ? uint8_t((byte & 0xf0) | q) : uint8_t((byte & 0x0f) | q << 4);
}
// q6_K: element i = 128h + 32k + l
inline void q6k_set(BlockQ6_K& b, int i, uint8_t q) {
    const int h = i / 128, k = (i % 128) / 32, l = i % 32;
    uint8_t& lo = b.ql[64 * h + l + 32 * (k & 1)];
    lo = k < 2 ? uint8_t((lo & 0xf0) | (q & 15)) : uint8_t((lo & 0x0f) | (q & 15) << 4);
    uint8_t& hi = b.qh[32 * h + l];
    hi = uint8_t((hi & ~(3 << (2 * k))) | ((q >> 4) & 3) << (2 * k));
}

// Group block sizes (bytes per 16 rows x one block).
constexpr size_t kQ8_0Group = R * sizeof(BlockQ8_0);  // 544
constexpr size_t kQ4KGroup = R * sizeof(BlockQ4_K);   // 2304
constexpr size_t kQ6KGroup = R * sizeof(BlockQ6_K);   // 3360
// Offsets inside a q4_K group block.
constexpr size_t kQ4KScLo = 64, kQ4KScHi = 192, kQ4KQs = 256;
// q6_K: d at 0, scales at 32, sub-block j at 288 + 192 j (lo[0], lo[1], hi: 64 bytes each)
constexpr size_t kQ6KSc = 32, kQ6KSub = 288;

template <typename B>
const B& row_block(const void* src, size_t stride, int r, int64_t ib) {
    return reinterpret_cast<const B*>(static_cast<const uint8_t*>(src) + size_t(r) * stride)[ib];
}

void pack_q8_0(int64_t nb, const void* src, size_t stride, uint8_t* dst) {
    for (int64_t ib = 0; ib < nb; ++ib, dst += kQ8_0Group) {
        uint16_t* d = reinterpret_cast<uint16_t*>(dst);
        for (int r = 0; r < R; ++r) {
            const BlockQ8_0& b = row_block<BlockQ8_0>(src, stride, r, ib);
            std::memcpy(d + r, &b.d, 2);
            for (int g = 0; g < kQk / 4; ++g) std::memcpy(dst + 32 + (g * R + r) * 4, b.qs + 4 * g, 4);
        }
    }
}
void unpack_q8_0(int64_t nb, const uint8_t* grp, int r, BlockQ8_0* out) {
    for (int64_t ib = 0; ib < nb; ++ib, grp += kQ8_0Group) {
        std::memcpy(&out[ib].d, grp + 2 * r, 2);
        for (int g = 0; g < kQk / 4; ++g) std::memcpy(out[ib].qs + 4 * g, grp + 32 + (g * R + r) * 4, 4);
    }
}

void pack_q4_k(int64_t nb, const void* src, size_t stride, uint8_t* dst) {
    for (int64_t ib = 0; ib < nb; ++ib, dst += kQ4KGroup) {
        for (int r = 0; r < R; ++r) {
            const BlockQ4_K& b = row_block<BlockQ4_K>(src, stride, r, ib);
            std::memcpy(dst + 2 * r, &b.d, 2);
            std::memcpy(dst + 32 + 2 * r, &b.dmin, 2);
            uint8_t sc[8], m[8];
            for (int j = 0; j < 8; ++j) unpack_scale_min_k4(j, b.scales, sc + j, m + j);
            for (int j = 0; j < 8; ++j) dst[kQ4KScLo + j * R + r] = uint8_t((sc[j] & 15) | (m[j] & 15) << 4);
            for (int j = 0; j < 4; ++j)
                dst[kQ4KScHi + j * R + r] =
                    uint8_t(sc[j] >> 4 | (m[j] >> 4) << 2 | (sc[j + 4] >> 4) << 4 | (m[j + 4] >> 4) << 6);
            // sub-block j = the low (j even) or high (j odd) nibbles of qs[32 (j / 2) .. + 31]
            for (int j = 0; j < 8; ++j) {
                const uint8_t* qs = b.qs + 32 * (j / 2);
                const int sh = 4 * (j % 2);
                for (int p = 0; p < 4; ++p) {
                    const uint32_t lo = (load_u32(qs + 8 * p) >> sh) & 0x0f0f0f0f;
                    const uint32_t hi = (load_u32(qs + 8 * p + 4) >> sh) & 0x0f0f0f0f;
                    store_u32(dst + kQ4KQs + ((j * 4 + p) * R + r) * 4, lo | hi << 4);
                }
            }
        }
    }
}

void unpack_q4_k(int64_t nb, const uint8_t* grp, int r, BlockQ4_K* out) {
    for (int64_t ib = 0; ib < nb; ++ib, grp += kQ4KGroup) {
        BlockQ4_K& b = out[ib];
        std::memcpy(&b.d, grp + 2 * r, 2);
        std::memcpy(&b.dmin, grp + 32 + 2 * r, 2);
        uint8_t sc[8], m[8];
        for (int j = 0; j < 8; ++j) {
            const uint8_t lo = grp[kQ4KScLo + j * R + r], hi = grp[kQ4KScHi + (j % 4) * R + r] >> (j < 4 ? 0 : 4);
            sc[j] = uint8_t((lo & 15) | (hi & 3) << 4);
            m[j] = uint8_t((lo >> 4) | ((hi >> 2) & 3) << 4);
        }
        pack_scale_min_k4(sc, m, b.scales);
        for (int j = 0; j < 8; ++j)
            for (int p = 0; p < 4; ++p)
                for (int e = 0; e < 4; ++e) {
                    const int i = 32 * j + 8 * p + e;
                    const uint8_t v = grp[kQ4KQs + ((j * 4 + p) * R + r) * 4 + e];
                    q4k_set(b, i, v & 15);
                    q4k_set(b, i + 4, v >> 4);
                }
    }
}

void pack_q6_k(int64_t nb, const void* src, size_t stride, uint8_t* dst) {
    for (int64_t ib = 0; ib < nb; ++ib, dst += kQ6KGroup) {
        for (int r = 0; r < R; ++r) {
            const BlockQ6_K& b = row_block<BlockQ6_K>(src, stride, r, ib);
            std::memcpy(dst + 2 * r, &b.d, 2);
            for (int j = 0; j < 16; ++j) dst[kQ6KSc + j * R + r] = uint8_t(b.scales[j]);
            // sub-block j = elements 128 h + 32 k + l, l in [16 (j % 2), +16), h = j / 8, k = j % 8 / 2:
            // low 4 bits in ql[64 h + 32 (k & 1) + l] (high nibble when k >= 2), high 2 bits at bit
            // 2k of qh[32 h + l]
            for (int j = 0; j < 16; ++j) {
                const int h = j / 8, k = (j % 8) / 2, l0 = 16 * (j % 2);
                const uint8_t* ql = b.ql + 64 * h + 32 * (k & 1) + l0;
                const uint8_t* qh = b.qh + 32 * h + l0;
                const int sl = k >= 2 ? 4 : 0, shh = 2 * k;
                uint32_t lo[4], hi[4];
                for (int i = 0; i < 4; ++i) {
                    lo[i] = (load_u32(ql + 4 * i) >> sl) & 0x0f0f0f0f;
                    hi[i] = (load_u32(qh + 4 * i) >> shh) & 0x03030303;
                }
                uint8_t* sub = dst + kQ6KSub + 192 * j + 4 * r;
                store_u32(sub, lo[0] | lo[1] << 4);
                store_u32(sub + 64, lo[2] | lo[3] << 4);
                store_u32(sub + 128, hi[0] | hi[1] << 2 | hi[2] << 4 | hi[3] << 6);
            }
        }
    }
}

void unpack_q6_k(int64_t nb, const uint8_t* grp, int r, BlockQ6_K* out) {
    for (int64_t ib = 0; ib < nb; ++ib, grp += kQ6KGroup) {
        BlockQ6_K& b = out[ib];
        std::memcpy(&b.d, grp + 2 * r, 2);
        for (int j = 0; j < 16; ++j) b.scales[j] = int8_t(grp[kQ6KSc + j * R + r]);
        for (int j = 0; j < 16; ++j) {
            const uint8_t* sub = grp + kQ6KSub + 192 * j;
            for (int e = 0; e < 4; ++e) {
                const uint8_t l0 = sub[r * 4 + e], l1 = sub[64 + r * 4 + e], h = sub[128 + r * 4 + e];
                const uint8_t q[4] = {uint8_t((l0 & 15) | (h & 3) << 4), uint8_t((l0 >> 4) | ((h >> 2) & 3) << 4),
                                      uint8_t((l1 & 15) | ((h >> 4) & 3) << 4), uint8_t((l1 >> 4) | ((h >> 6) & 3) << 4)};
                for (int k = 0; k < 4; ++k) q6k_set(b, 16 * j + 4 * k + e, q[k]);
            }
        }
    }
}

}  // namespace

bool x16_supported(DType t) { return t == DType::kQ8_0 || t == DType::kQ4_K || t == DType::kQ6_K; }

void x16_pack_group(DType t, int64_t n, const void* src, size_t src_stride, void* dst) {
    HKV_ASSERT(x16_supported(t) && dtype_row_ok(t, n), "x16 pack: type %s, n %lld", dtype_name(t), (long long)n);
    uint8_t* d = static_cast<uint8_t*>(dst);
    switch (t) {
        case DType::kQ8_0: return pack_q8_0(n / kQk, src, src_stride, d);
        case DType::kQ4_K: return pack_q4_k(n / kQkK, src, src_stride, d);
        default: return pack_q6_k(n / kQkK, src, src_stride, d);
    }
}

void x16_unpack_row(DType t, int64_t n, const void* group, int r, void* dst) {
    HKV_ASSERT(x16_supported(t) && dtype_row_ok(t, n) && r >= 0 && r < R, "x16 unpack: type %s, n %lld, row %d",
               dtype_name(t), (long long)n, r);
    const uint8_t* g = static_cast<const uint8_t*>(group);
    switch (t) {
        case DType::kQ8_0: return unpack_q8_0(n / kQk, g, r, static_cast<BlockQ8_0*>(dst));
        case DType::kQ4_K: return unpack_q4_k(n / kQkK, g, r, static_cast<BlockQ4_K*>(dst));
        default: return unpack_q6_k(n / kQkK, g, r, static_cast<BlockQ6_K*>(dst));
    }
}

const X16Kernels* x16_kernels_for(Isa isa) {
    const Isa best = cpu_isa();
    if (int(isa) > int(best)) isa = best;
    switch (isa) {
        case Isa::kAvx512:
            return cpu_features().avx512vnni ? &x16_kernels_avx512_vnni() : &x16_kernels_avx2();
        case Isa::kAvx2: return &x16_kernels_avx2();
        default: return nullptr;
    }
}

const X16Kernels* x16_kernels() {
    static const X16Kernels* k = x16_kernels_for(cpu_isa());
    return k;
}

}  // namespace hkv
