// backend/cpu/quant_internal.h — pieces shared by the quant*.cpp files (not part of the module API).
#pragma once

#include <cstdint>

#include "backend/cpu/quant.h"
#include "backend/cpu/quant_blocks.h"

namespace hkv {

// Weight quantizers (quant_ref_k.cpp); nb = number of 256-element super-blocks unless noted.
void quantize_q4_k_ref(const float* x, BlockQ4_K* y, int64_t nb);
void quantize_q5_k_ref(const float* x, BlockQ5_K* y, int64_t nb);
void quantize_q6_k_ref(const float* x, BlockQ6_K* y, int64_t nb);
void quantize_q2_k_ref(const float* x, BlockQ2_K* y, int64_t nb);
void quantize_q3_k_ref(const float* x, BlockQ3_K* y, int64_t nb);
// Non-linear 4-bit types; nb = number of 32-element (iq4_nl) or 256-element (iq4_xs) blocks.
void quantize_iq4_nl_ref(const float* x, BlockIQ4_NL* y, int64_t nb);
void quantize_iq4_xs_ref(const float* x, BlockIQ4_XS* y, int64_t nb);

// Per-ISA kernel tables. quant_kernels_avx512() may only be called when the CPU has AVX-512
// F/BW/VL/DQ; it picks its VNNI or non-VNNI variant from cpu_features() itself (force_plain = true
// selects the non-VNNI variant, so tests can cover it on VNNI machines).
const QuantKernels& quant_kernels_scalar();
const QuantKernels& quant_kernels_avx2();
const QuantKernels& quant_kernels_avx512(bool force_plain = false);

}  // namespace hkv
