// backend/cpu/attn_kernels.h — the inner loops of attention over f16 KV rows, AVX-512 versions.
//
// Called by attention() (ops.cpp) per tile of up to 64 slots when the CPU has AVX-512 and the row
// length Dp is a multiple of 16; ops.cpp keeps the masking, online softmax and split-K logic.
// Rows are read in place from the KV pages (krows[j] / vrows[j] -> [Dp] f16) and converted in registers.
#pragma once

#include <cstdint>

namespace hkv::attn512 {

// sc[r * sc_stride + j] = q[r, :] · k[j][:] for r < n_row (1..4), j < n. q: [n_row, Dp] f32.
void qk_f16(const float* q, int n_row, const void* const* krows, int n, int64_t Dp, float* sc, int sc_stride);

// acc[r, :] = alpha[r] * acc[r, :] + sum_j p[r * p_stride + j] * v[j][:] for r < n_row (1..4).
// acc: [n_row, Dp] f32.
void pv_f16(const float* p, int p_stride, const float* alpha, int n_row, const void* const* vrows, int n,
            int64_t Dp, float* acc);

}  // namespace hkv::attn512
