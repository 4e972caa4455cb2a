// backend/cpu/quant.cpp — kernel tables and runtime dispatch (cpu_isa() picks once).
#include "backend/cpu/quant.h"

#include "backend/cpu/quant_internal.h"
#include "core/cpu.h"

namespace hkv {
namespace {

void vec_dot_rows_scalar(DType t, int64_t n, const void* w, size_t w_stride, int64_t nr, const void* xq,
                         float* out) {
    const uint8_t* wb = static_cast<const uint8_t*>(w);
    for (int64_t r = 0; r < nr; ++r) out[r] = vec_dot_ref(t, n, wb + size_t(r) * w_stride, xq);
}

void gemm_scalar(DType t, int64_t n, const void* w, size_t w_stride, int64_t nr, const void* xq,
                 size_t xq_stride, int64_t m, float* y, size_t y_stride) {
    gemm_by_rows(quant_kernels_scalar(), t, n, w, w_stride, nr, xq, xq_stride, m, y, y_stride);
}

}  // namespace

void gemm_by_rows(const QuantKernels& k, DType t, int64_t n, const void* w, size_t w_stride,
                  int64_t nr, const void* xq, size_t xq_stride, int64_t m, float* y, size_t y_stride) {
    const uint8_t* xb = static_cast<const uint8_t*>(xq);
    for (int64_t i = 0; i < m; ++i) k.vec_dot_rows(t, n, w, w_stride, nr, xb + size_t(i) * xq_stride, y + size_t(i) * y_stride);
}

const QuantKernels& quant_kernels_scalar() {
    static const QuantKernels k{Isa::kScalar, dequantize_row_ref, quantize_row_ref, vec_dot_ref,
                                vec_dot_rows_scalar, gemm_scalar};
    return k;
}

const QuantKernels& quant_kernels_for(Isa isa) {
    const Isa best = cpu_isa();
    if (int(isa) > int(best)) isa = best;
    switch (isa) {
        case Isa::kAvx512: return quant_kernels_avx512();
        case Isa::kAvx2: return quant_kernels_avx2();
        default: return quant_kernels_scalar();
    }
}

const QuantKernels& quant_kernels() {
    static const QuantKernels& k = quant_kernels_for(cpu_isa());
    return k;
}

}  // namespace hkv
