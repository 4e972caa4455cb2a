// backend/cpu/quant.h — weight types: block layouts, (de)quantization and dot products.
//
// Block layouts are bit-for-bit those of GGUF/ggml (see quant_blocks.h). A dot product between a
// weight row of type T and an activation row follows ggml's scheme: the activation is first
// quantized to vec_dot_type(T) (q8_0 for q4_0/q5_0/q8_0, q8_1 for q4_1/q5_1, q8_K for the K-quants,
// f16 for f16, bf16 for bf16, f32 for f32), then the integer/half dot runs block by block. Doing it the
// same way as the reference engine keeps logits comparable and is what makes decode fast.
//
// Two implementations of every kernel:
//   *_ref  — plain scalar C++, never optimized; the oracle the tests compare against.
//   the dispatched versions (quant_kernels()) — AVX2 floor, AVX-512/VNNI when the CPU has them,
//     chosen once at startup by cpu_isa(); results equal the reference up to float summation order.
// All functions are thread-safe (pure). n is always a multiple of the type's block size (caller checks
// with dtype_row_ok); pointers need no particular alignment.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/cpu.h"
#include "core/dtype.h"

namespace hkv {

// ---- reference (scalar) ----
// dst[n] = dequantized src row.
void dequantize_row_ref(DType t, const void* src, float* dst, int64_t n);
// Quantizes src[n] into dst (dtype_row_size(t, n) bytes). Supported for every type with
// info.supported plus q8_1 and q8_K (activation types). Round-trips within the format's error.
void quantize_row_ref(DType t, const float* src, void* dst, int64_t n);
// The activation type a weight row of type t is dotted with.
DType vec_dot_type(DType t);
// sum_i w[i] * x[i], w of type t, xq of type vec_dot_type(t), both n elements.
float vec_dot_ref(DType t, int64_t n, const void* w, const void* xq);

// ---- dispatched (SIMD) ----
struct QuantKernels {
    Isa isa;
    // Same contracts as the _ref functions above.
    void (*dequantize_row)(DType t, const void* src, float* dst, int64_t n);
    void (*quantize_row)(DType t, const float* src, void* dst, int64_t n);
    float (*vec_dot)(DType t, int64_t n, const void* w, const void* xq);
    // out[r] = vec_dot(t, n, w + r * w_stride, xq) for r in [0, nr): several rows share one pass over xq.
    // The SIMD versions prefetch the rows ahead as they go (decode's matvec streams weights from DRAM).
    void (*vec_dot_rows)(DType t, int64_t n, const void* w, size_t w_stride, int64_t nr,
                         const void* xq, float* out);
    // Prefill: y[i * y_stride + r] = vec_dot(t, n, w + r * w_stride, xq + i * xq_stride) for r in
    // [0, nr), i in [0, m). Each weight block is unpacked once and dotted with several activation
    // rows (the weight rows should fit in L2; matmul() tiles them).
    void (*gemm)(DType t, int64_t n, const void* w, size_t w_stride, int64_t nr, const void* xq,
                 size_t xq_stride, int64_t m, float* y, size_t y_stride);
};
// gemm() through vec_dot_rows() one activation row at a time (types without a dedicated kernel).
void gemm_by_rows(const QuantKernels& k, DType t, int64_t n, const void* w, size_t w_stride,
                  int64_t nr, const void* xq, size_t xq_stride, int64_t m, float* y, size_t y_stride);
// The kernels for cpu_isa() (or for `isa` explicitly, capped at what the CPU supports).
const QuantKernels& quant_kernels();
const QuantKernels& quant_kernels_for(Isa isa);

}  // namespace hkv
