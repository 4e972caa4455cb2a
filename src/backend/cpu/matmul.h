// backend/cpu/matmul.h — y = x · Wᵀ for weights of any supported type, multi-threaded.
//
// Shapes (ggml convention, row-major in memory):
//   W: [n_out, n_in]  type w.type, each row dtype_row_size(type, n_in) bytes (GGUF tensor ne = {n_in, n_out})
//   x: [m, n_in]      f32
//   y: [m, n_out]     f32
// m = 1 is decode (matvec: weights read once, activation quantized once); m > 1 is prefill (blocked
// so a tile of weight rows is reused across many activation rows).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "core/thread_pool.h"

namespace hkv {

struct WeightView {
    const void* data = nullptr;  // [n_out, n_in] in `type`
    DType type = DType::kF32;
    int64_t n_in = 0;            // ne[0]
    int64_t n_out = 0;           // ne[1]
    size_t row_bytes() const { return dtype_row_size(type, n_in); }
};

// Scratch is resized as needed and may be reused across calls (no allocation once warm).
void matmul(ThreadPool& pool, const WeightView& w, const float* x, int64_t m, float* y,
            std::vector<uint8_t>& scratch);

// Scalar reference: dequantize each weight row, quantize nothing, accumulate in double.
// (Differs from matmul() by the activation-quantization error; tests use a tolerance.)
void matmul_ref(const WeightView& w, const float* x, int64_t m, float* y);

// Same math as matmul() (activation quantized to vec_dot_type) but scalar: for exact-ish checks.
void matmul_ref_quantized(const WeightView& w, const float* x, int64_t m, float* y);

}  // namespace hkv
