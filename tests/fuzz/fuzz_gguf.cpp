// tests/fuzz/fuzz_gguf.cpp — libFuzzer target: the GGUF reader on untrusted bytes, then the model
// validation that runs on every loaded file (configuration, tensor shapes and types, tokenizer).
// Any input must be accepted or rejected with a Status; never a crash, a hang or a leak.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "heterokv/log.h"
#include "model/gguf.h"
#include "model/model.h"

// Quiet: tokenizer warnings about odd vocabularies would flood the fuzzer's output.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
    hkv::log_set_level(hkv::LogLevel::kNone);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto file = hkv::GgufFile::from_memory(data, size);
    if (!file.ok()) return 0;
    auto model = hkv::Model::from_gguf(std::move(file).value());
    (void)model;
    return 0;
}
