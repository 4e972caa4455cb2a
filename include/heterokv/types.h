// heterokv/types.h — small value types of the public API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "heterokv/status.h"

namespace hkv {

// Element type of the KV cache (ContextParams::kv_type, `--kv-type`). The enum's values are GGML's
// type ids, the numbers GGUF files and llama.cpp session files store, so a KvType is written to
// such a file as uint32_t(type). Quantized cache types (q8_0 = 8, q4_0 = 2; issue 19) will take
// their GGML ids here.
enum class KvType : uint32_t {
    kF32 = 0,
    kF16 = 1,   // the default
    kBF16 = 30,
};

// "f32", "f16", "bf16"; "unknown" for a value outside the enum.
const char* kv_type_name(KvType type);
// Parses the names above. Error (kInvalidArgument): "'<name>': expected f16, bf16 or f32" — a
// caller adds its option's name in front ("--kv-type 'x': expected ...").
Expected<KvType> kv_type_parse(std::string_view name);
// Bytes of one element (f32: 4, f16 / bf16: 2).
size_t kv_type_size(KvType type);

}  // namespace hkv
