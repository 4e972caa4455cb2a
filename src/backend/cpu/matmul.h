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
#include "backend/cpu/ops.h"
#include "core/thread_pool.h"

namespace hkv {

// How a matrix's rows are laid out in memory.
enum class WeightLayout : uint8_t {
    kRows,  // GGUF: row after row
    kX16,   // groups of 16 rows interleaved for the x16 kernels (repack.h); n_out % 16 == 0
};

struct WeightView {
    const void* data = nullptr;  // [n_out, n_in] in `type`, laid out per `layout`
    DType type = DType::kF32;
    int64_t n_in = 0;            // ne[0]
    int64_t n_out = 0;           // ne[1]
    WeightLayout layout = WeightLayout::kRows;
    // Bytes of one row (in kX16, a group of 16 rows takes 16 row_bytes()).
    size_t row_bytes() const { return dtype_row_size(type, n_in); }
};

// dst[n_in] = row r of W dequantized (either layout): embedding lookups.
void weight_row_dequantize(const WeightView& w, int64_t r, float* dst);

// Scratch is resized as needed and may be reused across calls (no allocation once warm).
void matmul(ThreadPool& pool, const WeightView& w, const float* x, int64_t m, float* y,
            std::vector<uint8_t>& scratch);

// ---- decode (m = 1): several matvecs over one activation row in ONE pool run ----
// A decode step is a chain of small matvecs; each pool run is a fork-join (wake, work, join), so
// the per-layer run count is what limits a small model's decode. These fuse the matvecs that read
// the same input row: Q/K/V, and gate/up with SwiGLU applied in the same run.
struct MatvecOut {
    const WeightView* w = nullptr;  // [n_out, n_in]; every output of one call has the same n_in
    float* y = nullptr;             // [n_out]
    bool accumulate = false;        // y += W·x (residual add) instead of y = W·x
};
// y_i (+)= W_i · x for i in [0, n_outs), x: [n_in] f32, quantized once per distinct vec_dot_type.
// Work items are chunks of <= 64 rows of every output, handed out through one atomic counter.
// Each row's value is bit-identical to matmul(m = 1) (same kernel, chunks are multiples of 4 rows).
void matvec_multi(ThreadPool& pool, const MatvecOut* outs, int n_outs, const float* x,
                  std::vector<uint8_t>& scratch);
// out[r] = act((W_gate·x)[r]) * (W_up·x)[r] for r in [0, n_ff): the decode FFN's first half in
// one pool run (each chunk computes its gate and up rows, then glu() on them; act = silu is
// SwiGLU). x: [n_in], out: [n_ff]. Bit-identical to two matmul() calls followed by glu().
void matvec_swiglu(ThreadPool& pool, const WeightView& w_gate, const WeightView& w_up, const float* x,
                   float* out, std::vector<uint8_t>& scratch, GluAct act = GluAct::kSilu);

// Scalar reference: dequantize each weight row, quantize nothing, accumulate in double.
// (Differs from matmul() by the activation-quantization error; tests use a tolerance.)
void matmul_ref(const WeightView& w, const float* x, int64_t m, float* y);

// Same math as matmul() (activation quantized to vec_dot_type) but scalar: for exact-ish checks.
void matmul_ref_quantized(const WeightView& w, const float* x, int64_t m, float* y);

}  // namespace hkv
