// core/env.h — the ONLY place environment variables are read (house rule). Everything else takes
// explicit parameters; the tools pass these values down.
#pragma once

#include "heterokv/log.h"

namespace hkv {

// HKV_LOG_LEVEL = debug | info | warn | error | none (default info).
LogLevel env_log_level();
// HKV_ISA = avx2 | avx512 | scalar: caps the kernels chosen by runtime dispatch (default: best the
// CPU has). Returns nullptr when unset.
const char* env_isa_override();
// HKV_REPACK = 0 keeps weight matrices in their GGUF row layout instead of repacking them at load
// into the interleaved layout of the decode/prefill kernels (default on; for A/B measurements).
bool env_repack();

}  // namespace hkv
