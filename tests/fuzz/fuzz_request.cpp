// tests/fuzz/fuzz_request.cpp — libFuzzer target: the server's request framing (raw HTTP, chunked
// bodies), request parser, chat rendering and request kv_policy specs (fuzz_inputs.h says which
// input does what). Any input must give a result or an error Status; never a crash, a hang or a leak.
#include <cstddef>
#include <cstdint>

#include "fuzz_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    hkv::fuzz::fuzz_request_input(data, size);
    return 0;
}
