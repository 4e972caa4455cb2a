// backend/cpu/attn_kernels.h — the inner loops of attention over f16, q8_0 and q4_0 KV rows, AVX-512
// versions.
//
// Called by attention() (attention.cpp) per tile of up to 64 slots when the CPU has AVX-512 and the
// row length Dp is a multiple of 16; attention.cpp keeps the masking, online softmax and split-K
// logic. Rows are read in place from the KV pages (krows[j] / vrows[j] -> one row of the kind) and
// converted in registers: kind 1 = f16 [Dp], 3 = q8_0 and 4 = q4_0 [Dp / 32 blocks of llama.cpp's
// layout] (each 16 values: int8 or nibbles - 8, times the block's f16 scale), 5 = hq4 [Dp / 32
// iq4_nl blocks of the rotated row, kv_hq4.h; the caller rotates q and un-rotates the PV sum].
#pragma once

#include <cstdint>

namespace hkv::attn512 {

// sc[r * sc_stride + j] = q[r, :] · k[j][:] for r < n_row (1..4), j < n. q: [n_row, Dp] f32 (the
// policies' exact dots, scores.h; attention() itself reads q8_0 / q4_0 / hq4 keys through qk_i8).
void qk(int kind, const float* q, int n_row, const void* const* krows, int n, int64_t Dp, float* sc, int sc_stride);

// Integer QK for q8_0 (kind 3), q4_0 (4) and hq4 (5; rotated queries) keys, with the query rows
// quantized per block of 32 (attention.cpp quantize_query): qi [n_row, Dp] int8, qd [n_row, Dp / 32]
// their scales, qc [n_row, Dp / 32] = -off * (sum of the block's qi), off = 8 for q4_0 (its
// nibbles are k + 8) and 128 for q8_0 and hq4 (their int8 values, hq4's the iq4_nl levels, are read
// as k + 128, unsigned). For every row r < n_row (any count) and key j < n: sc[r * sc_stride + j] =
// sum_b qd[r, b] * d_j[b] * (qi[r, b, :] · k_j[b, :]) with the integer dot exact. Keys go 16 at a time, transposed in registers so one VNNI dot per 4 columns
// serves 16 keys; needs AVX512-VNNI.
void qk_i8(int kind, const int8_t* qi, const float* qd, const int32_t* qc, int n_row, const void* const* krows,
           int n, int64_t Dp, float* sc, int sc_stride);

// acc[r, :] = alpha[r] * acc[r, :] + sum_j p[r * p_stride + j] * v[j][:] for r < n_row (1..4).
// acc: [n_row, Dp] f32.
void pv(int kind, const float* p, int p_stride, const float* alpha, int n_row, const void* const* vrows, int n,
        int64_t Dp, float* acc);

// The online softmax's two passes over a row of np scores (np <= 64, a multiple of 8): the largest
// (-inf for none), and s[j] = e^(s[j] - m) in place, returning their sum (e^-inf = 0).
float row_max(const float* s, int np);
float exp_shift_sum(float* s, int np, float m);

}  // namespace hkv::attn512
