// backend/cpu/kv_hq4.cpp — the hq4 KV row format (kv_hq4.h): rotation, quantization, decoding.
#include "backend/cpu/kv_hq4.h"

#include <array>
#include <cmath>

#include "backend/cpu/quant.h"
#include "core/assert.h"

namespace hkv {
namespace {

// Bits of S: bit i of word i / 64 set = sign -1. splitmix64 from a fixed seed; changing it changes
// the format (saved contexts of hq4 caches would decode to other values).
constexpr std::array<uint64_t, kHq4MaxDim / 64> make_sign_bits() {
    std::array<uint64_t, kHq4MaxDim / 64> w{};
    uint64_t s = 0x68716b34u;  // "hq4"
    for (uint64_t& x : w) {
        s += 0x9e3779b97f4a7c15ull;
        uint64_t z = s;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        x = z ^ (z >> 31);
    }
    return w;
}
constexpr std::array<uint64_t, kHq4MaxDim / 64> kSignBits = make_sign_bits();

// x[n] <- H x[n] (unnormalized Walsh-Hadamard, Sylvester order), n a power of two.
void fwht(float* x, int64_t n) {
    for (int64_t len = 1; len < n; len <<= 1) {
        for (int64_t i = 0; i < n; i += 2 * len) {
            for (int64_t j = i; j < i + len; ++j) {
                const float a = x[j], b = x[j + len];
                x[j] = a + b, x[j + len] = a - b;
            }
        }
    }
}

}  // namespace

bool hq4_dim_ok(int64_t n) { return n >= 32 && n <= kHq4MaxDim && (n & (n - 1)) == 0; }

float hq4_sign(int64_t i) { return (kSignBits[size_t(i >> 6)] >> (i & 63)) & 1 ? -1.0f : 1.0f; }

void hq4_rotate(float* x, int64_t n) {
    HKV_ASSERT(hq4_dim_ok(n), "hq4: row of %lld values", (long long)n);
    for (int64_t i = 0; i < n; ++i) x[i] *= hq4_sign(i);
    fwht(x, n);
    const float inv = 1.0f / std::sqrt(float(n));
    for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void hq4_unrotate(float* x, int64_t n) {
    HKV_ASSERT(hq4_dim_ok(n), "hq4: row of %lld values", (long long)n);
    fwht(x, n);
    const float inv = 1.0f / std::sqrt(float(n));
    for (int64_t i = 0; i < n; ++i) x[i] *= inv * hq4_sign(i);
}

void hq4_quantize_row(const float* src, void* dst, int64_t n) {
    HKV_ASSERT(hq4_dim_ok(n), "hq4: row of %lld values", (long long)n);
    float y[kHq4MaxDim];
    for (int64_t i = 0; i < n; ++i) y[i] = src[i];
    hq4_rotate(y, n);
    quantize_row_ref(DType::kIQ4_NL, y, dst, n);  // per block: the scale fitted by least squares
}

void hq4_dequantize_rotated(const void* src, float* dst, int64_t n) {
    dequantize_row_ref(DType::kIQ4_NL, src, dst, n);
}

void hq4_dequantize_row(const void* src, float* dst, int64_t n) {
    hq4_dequantize_rotated(src, dst, n);
    hq4_unrotate(dst, n);
}

}  // namespace hkv
