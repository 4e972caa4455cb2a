// tests/fuzz/fuzz_state.cpp — libFuzzer target: saved contexts (Context::state_read) on untrusted
// bytes, loaded into contexts of a micro synthetic model under full, H2O (score lane, q8_0 rows)
// and HeteroCache (cold tier); see fuzz_inputs.h fuzz_state_input. Any input must be loaded or
// refused with a Status, leaving the context usable; never a crash, a hang, a leak or an
// allocation the file's counts ask for.
#include <cstddef>
#include <cstdint>

#include "fuzz_inputs.h"
#include "heterokv/log.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    hkv::log_set_level(hkv::LogLevel::kNone);
    (void)hkv::fuzz::fuzz_state_contexts();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    (void)hkv::fuzz::fuzz_state_input(data, size);
    return 0;
}
