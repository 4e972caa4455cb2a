// backend/cpu/quant_rows.h — the multi-row dot driver shared by quant_avx2.cpp and quant_avx512.cpp.
//
// Everything here is in an anonymous namespace on purpose: each including file gets its own copy
// compiled with its own ISA flags (internal linkage), so the linker can never hand an AVX-512 copy
// to an AVX2-only caller. Include it only from the per-ISA kernel files.
#pragma once

#include <xmmintrin.h>

#include <cstddef>
#include <cstdint>

#include "backend/cpu/quant_blocks.h"

namespace hkv {
namespace {

// NR = 4 is the decode path, which streams every weight from DRAM once: each four-row pass
// prefetches the four rows two passes ahead (w + 8 * w_stride ...), a few lines per step spread
// over its n_steps steps. (One burst of ~70 prefetches before each pass filled the line-fill buffers
// and stalled the core.) Prefetching past the last row is harmless: a hint never faults.
template <int NR>
struct RowPrefetch {
    const char* p;
    size_t len, step, off = 0;
    RowPrefetch(const void* w, size_t w_stride, int64_t n_steps)
        : p(static_cast<const char*>(w) + 2 * NR * w_stride), len(NR * w_stride + 64),
          step(n_steps > 0 ? ((len + size_t(n_steps) - 1) / size_t(n_steps) + 63) & ~size_t(63) : 0) {}
    void operator()() {
        if constexpr (NR == 4) {
            const size_t e = off + step < len ? off + step : len;
            for (; off < e; off += 64) _mm_prefetch(p + off, _MM_HINT_T0);
        }
    }
};

// out[r] = dot(row r of w, xq) for r in [0, NR), with the block kernel K (K::WB weight block,
// K::YB activation block, K::Act = K::load_act(yb), K::block(wb, act, acc), K::finish(acc); K::Acc
// value-initializes to zero). Two accumulator sets (even / odd blocks) so that one row's chain of
// FMAs does not serialize; the row loops are unrolled so that the accumulators stay in registers.
template <typename K, int NR>
void dot_rows(int64_t n, const void* w, size_t w_stride, const void* xq, float* out) {
    constexpr int64_t kBlock = sizeof(typename K::YB) == sizeof(BlockQ8_K) ? kQkK : kQk;
    const int64_t nb = n / kBlock;
    const auto* y = static_cast<const typename K::YB*>(xq);
    const uint8_t* wb = static_cast<const uint8_t*>(w);
    RowPrefetch<NR> prefetch(wb, w_stride, nb);
    auto row = [&](int r) { return reinterpret_cast<const typename K::WB*>(wb + size_t(r) * w_stride); };
    typename K::Acc acc0[NR]{}, acc1[NR]{};
    int64_t ib = 0;
    for (; ib + 2 <= nb; ib += 2) {
        prefetch();
        const typename K::Act a0 = K::load_act(y + ib);
#pragma GCC unroll 4
        for (int r = 0; r < NR; ++r) K::block(row(r) + ib, a0, acc0[r]);
        prefetch();
        const typename K::Act a1 = K::load_act(y + ib + 1);
#pragma GCC unroll 4
        for (int r = 0; r < NR; ++r) K::block(row(r) + ib + 1, a1, acc1[r]);
    }
    if (ib < nb) {
        const typename K::Act a0 = K::load_act(y + ib);
#pragma GCC unroll 4
        for (int r = 0; r < NR; ++r) K::block(row(r) + ib, a0, acc0[r]);
    }
#pragma GCC unroll 4
    for (int r = 0; r < NR; ++r) out[r] = K::finish(acc0[r]) + K::finish(acc1[r]);
}

// Scalar helpers of the low-bit kernels, here so that both ISA files compile their own copy.
// q3_K: the 16 signed group scales (stored value - 32), see quant_blocks.h unpack_scales_q3_k.
inline void q3_k_scales_i16(const uint8_t* q, int16_t out[16]) {
    for (int j = 0; j < 16; ++j) {
        const int lo = j < 8 ? (q[j] & 0x0f) : (q[j - 8] >> 4);
        const int hi = (q[8 + j % 4] >> (2 * (j / 4))) & 3;
        out[j] = int16_t((lo | (hi << 4)) - 32);
    }
}
// iq4_xs: the 8 signed sub-block scales (stored value - 32).
inline void iq4_xs_scales_i16(const BlockIQ4_XS* b, int16_t out[8]) {
    for (int j = 0; j < 8; ++j) {
        const int ls = ((b->scales_l[j / 2] >> (4 * (j % 2))) & 0x0f) | (((b->scales_h >> (2 * j)) & 3) << 4);
        out[j] = int16_t(ls - 32);
    }
}

}  // namespace
}  // namespace hkv
