// core/cpu.h — CPU feature detection for runtime kernel dispatch.
#pragma once

namespace hkv {

enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

struct CpuFeatures {
    bool avx2 = false, fma = false, f16c = false;
    bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
    bool avx512vnni = false, avx512bf16 = false, avxvnni = false;
};

// Detected once (thread-safe static).
const CpuFeatures& cpu_features();
// The best ISA both the CPU supports and HKV_ISA allows. kAvx512 needs F+BW+VL+DQ.
Isa cpu_isa();
const char* isa_name(Isa isa);
// "avx2 fma f16c avx512f ..." for reports.
const char* cpu_flags_string();

}  // namespace hkv
