// backend/cpu/kv_hq4.cpp — the hq4 KV row format (kv_hq4.h): rotation, quantization, decoding.
#include "backend/cpu/kv_hq4.h"

#include <array>
#include <cmath>

#include "backend/cpu/quant.h"
#include "backend/cpu/quant_blocks.h"
#include "core/assert.h"
#include "core/fp16.h"

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

// Nearest level index of v for every half-unit interval [h / 2 - 128, (h + 1) / 2 - 128), h < 512: the
// midpoints between kIq4nlValues are multiples of 0.5, so each interval has one nearest level.
struct LevelTable {
    uint8_t idx[512];
    LevelTable() {
        for (int h = 0; h < 512; ++h) {
            const float v = float(h) * 0.5f - 128.0f + 0.25f;  // the interval's centre
            int best = 0;
            for (int l = 1; l < 16; ++l)
                if (std::fabs(v - float(kIq4nlValues[l])) < std::fabs(v - float(kIq4nlValues[best]))) best = l;
            idx[h] = uint8_t(best);
        }
    }
    int nearest(float v) const {  // v = x / d, any float
        const float h = std::floor(2.0f * v) + 256.0f;
        return idx[!(h > 0.0f) ? 0 : h >= 511.0f ? 511 : int(h)];  // NaN (a broken row): level 0
    }
};
const LevelTable kLevels;

// One block of 32 rotated values: the scale d minimizing sum (x - d * level)^2 over the levels chosen
// by rounding x / d, among 2 x kSteps candidates around -127 / max and 113 / max (max the value of
// largest magnitude: on the table's widest level, or its widest level of that sign), each refitted by
// least squares; d stored as f16 and the levels chosen again against the stored d.
void quantize_block(const float* x, BlockIQ4_NL* b) {
    constexpr int kSteps = 4;
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQk; ++j)
        if (std::fabs(x[j]) > amax) amax = std::fabs(x[j]), max = x[j];
    float best_d = 0.0f, best_score = -1.0f;
    for (int side = 0; amax > 0.0f && side < 2; ++side) {
        for (int step = -kSteps; step <= kSteps; ++step) {
            const float iscale = (side == 0 ? -127.0f - float(step) : 113.0f + float(step)) / max;
            float sum_xv = 0.0f, sum_v2 = 0.0f;
            for (int j = 0; j < kQk; ++j) {
                const float v = float(kIq4nlValues[kLevels.nearest(iscale * x[j])]);
                sum_xv += x[j] * v, sum_v2 += v * v;
            }
            // error at d = sum_xv / sum_v2 is sum x^2 - sum_xv^2 / sum_v2
            if (sum_v2 > 0.0f && sum_xv * sum_xv / sum_v2 > best_score) {
                best_score = sum_xv * sum_xv / sum_v2;
                best_d = sum_xv / sum_v2;
            }
        }
    }
    b->d = fp32_to_fp16(best_d);
    const float d = fp16_to_fp32(b->d), id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < kQk / 2; ++j) {
        b->qs[j] = uint8_t(kLevels.nearest(id * x[j]) | kLevels.nearest(id * x[j + kQk / 2]) << 4);
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
    BlockIQ4_NL* b = static_cast<BlockIQ4_NL*>(dst);
    for (int64_t i = 0; i < n / kQk; ++i) quantize_block(y + i * kQk, b + i);
}

void hq4_dequantize_rotated(const void* src, float* dst, int64_t n) {
    dequantize_row_ref(DType::kIQ4_NL, src, dst, n);
}

void hq4_dequantize_row(const void* src, float* dst, int64_t n) {
    hq4_dequantize_rotated(src, dst, n);
    hq4_unrotate(dst, n);
}

}  // namespace hkv
