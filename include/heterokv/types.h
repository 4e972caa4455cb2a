// heterokv/types.h — small value types of the public API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "heterokv/status.h"

namespace hkv {

// Element type of the KV cache's K or V rows (ContextParams::kv_type / type_k / type_v, `--kv-type`,
// `-ctk`, `-ctv`). The enum's values are GGML's type ids, the numbers GGUF files and llama.cpp
// session files store, so a KvType is written to such a file as uint32_t(type).
// The quantized types use llama.cpp's block layouts: 32 values per block, q8_0 = f16 scale + 32
// int8 (34 bytes, 1.0625 bytes per value), q4_0 = f16 scale + 16 bytes of nibbles (18 bytes, 0.5625
// bytes per value); a row of head_dim values is head_dim / 32 blocks, so head_dim must be a multiple
// of 32 (kv_type_check).
// hq4 is heterokv's own (not a GGML type, so no llama.cpp session holds it): each row is rotated
// by a fixed orthogonal matrix R = H S / sqrt(head_dim) (H the Walsh-Hadamard matrix, S fixed
// random signs) and the rotated values are stored as iq4_nl blocks (f16 scale + 16 bytes of nibbles
// indexing 16 non-uniform levels): 18 bytes per 32 values, the bytes of q4_0, with a smaller error
// (docs/accuracy.md). Its rows (KvHeadView) hold the rotated values; head_dim must be a power of two
// from 32 to 1024.
enum class KvType : uint32_t {
    kF32 = 0,
    kF16 = 1,   // the default
    kQ4_0 = 2,
    kQ8_0 = 8,
    kBF16 = 30,
    kHQ4 = 1020,  // heterokv's id (GGML ids are below 100)
};

// "f32", "f16", "bf16", "q8_0", "q4_0", "hq4"; "unknown" for a value outside the enum.
const char* kv_type_name(KvType type);
// Parses the names above. Error (kInvalidArgument): "'<name>': expected f16, bf16, f32, q8_0, q4_0
// or hq4" — a caller adds its option's name in front ("--kv-type 'x': expected ...").
Expected<KvType> kv_type_parse(std::string_view name);
// Values per block: 32 for q8_0 / q4_0 / hq4, 1 for the float types.
int32_t kv_type_block(KvType type);
// Bytes of one block (f32: 4, f16 / bf16: 2, q8_0: 34, q4_0 / hq4: 18): for the float types the bytes of
// one element.
size_t kv_type_size(KvType type);
// Bytes of a row of n values (n a multiple of kv_type_block(type)).
size_t kv_type_row_size(KvType type, int64_t n);
// Whether rows of head_dim values can be stored as `type`. Error (kUnsupported) for a block type and
// a head_dim that is not a multiple of its block: "<what>: cache type q8_0 needs a head size that is
// a multiple of 32; the model's head size is 8", and for hq4 a head_dim that is not a power of two
// from 32 to 1024.
Status kv_type_check(KvType type, int64_t head_dim, std::string_view what);

}  // namespace hkv
