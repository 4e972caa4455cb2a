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

}  // namespace

const QuantKernels& quant_kernels_scalar() {
    static const QuantKernels k{Isa::kScalar, dequantize_row_ref, quantize_row_ref, vec_dot_ref,
                                vec_dot_rows_scalar};
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
