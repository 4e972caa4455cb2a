// backend/cpu/kv_hq4.h — hq4, heterokv's rotated 4-bit KV row format (issue 19 item 4).
//
// A row x of n values (n = head_dim, a power of two from 32 to kHq4MaxDim) is stored as its
// rotation y = R x, R = H S / sqrt(n): S the diagonal of fixed pseudo-random signs hq4_sign(i)
// (part of the format: saved contexts hold rotated rows), H the n x n Walsh-Hadamard matrix
// (Sylvester order, entries ±1, H H = n I), so R is orthogonal and R^T = S H / sqrt(n). y is cut
// into n / 32 blocks, each stored as iq4_nl (quant_blocks.h BlockIQ4_NL: f16 scale d + 16 bytes of
// nibbles, y[j] = d * kIq4nlValues[nibble j], nibble order of q4_0): 18 bytes per 32 values, the
// bytes of q4_0.
//
// Why: the rotation spreads a row's outlier channels over all its values, which come out close to
// Gaussian with no block dominated by one value; iq4_nl's non-uniform levels (denser near zero)
// fit that distribution with less error than q4_0's 16 uniform levels (docs/accuracy.md).
//
// Attention reads the blocks in the rotated domain without un-rotating any row: q·k = (R q)·(R k)
// (each query row rotated once) and sum_i p_i v_i = R^T sum_i p_i (R v_i) (the output row
// un-rotated once). The policies' readers (kv_read_row) un-rotate: they see x's decoded values.
#pragma once

#include <cstdint>

namespace hkv {

constexpr int64_t kHq4MaxDim = 1024;

// Whether rows of n values can be hq4 (n a power of two in [32, kHq4MaxDim]).
bool hq4_dim_ok(int64_t n);
// The sign of S at index i (i < kHq4MaxDim): +1 or -1 (a fixed splitmix64 sequence).
float hq4_sign(int64_t i);
// x[n] <- R x[n] and x[n] <- R^T x[n], in place (n as hq4_dim_ok). O(n log n).
void hq4_rotate(float* x, int64_t n);
void hq4_unrotate(float* x, int64_t n);
// dst (n / 32 blocks of 18 bytes) <- the hq4 row of src[n].
void hq4_quantize_row(const float* src, void* dst, int64_t n);
// dst[n] <- the decoded row (R^T of the blocks' values): what the cache holds for x.
void hq4_dequantize_row(const void* src, float* dst, int64_t n);
// dst[n] <- the blocks' values, still rotated (R x's approximation).
void hq4_dequantize_rotated(const void* src, float* dst, int64_t n);

}  // namespace hkv
