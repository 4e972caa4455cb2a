// tests/fuzz/fuzz_gguf.cpp — libFuzzer target: the GGUF reader on untrusted bytes, then the model
// validation that runs on every loaded file (configuration, tensor shapes and types, tokenizer),
// and a mode that mutates tensor types, offsets and shapes behind a valid header (fuzz_inputs.h).
// Any input must be accepted or rejected with a Status; never a crash, a hang or a leak.
#include <cstddef>
#include <cstdint>

#include "fuzz_inputs.h"
#include "heterokv/log.h"

// Quiet: tokenizer warnings about odd vocabularies would flood the fuzzer's output.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
    hkv::log_set_level(hkv::LogLevel::kNone);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    (void)hkv::fuzz::fuzz_gguf_input(data, size);
    return 0;
}
