// core/dtype.h — GGML tensor data types as stored in GGUF files: ids, block sizes, bytes per block.
//
// The ids are GGUF's on-disk values (ggml_type). A type is "known" if it appears in this table;
// "supported" if heterokv can compute with it (dequantize + dot). Block layouts themselves are in
// src/backend/cpu/quant_blocks.h.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hkv {

enum class DType : uint32_t {
    kF32 = 0,
    kF16 = 1,
    kQ4_0 = 2,
    kQ4_1 = 3,
    kQ5_0 = 6,
    kQ5_1 = 7,
    kQ8_0 = 8,
    kQ8_1 = 9,
    kQ2_K = 10,
    kQ3_K = 11,
    kQ4_K = 12,
    kQ5_K = 13,
    kQ6_K = 14,
    kQ8_K = 15,
    kIQ4_NL = 20,
    kIQ4_XS = 23,
    kI8 = 24,
    kI16 = 25,
    kI32 = 26,
    kI64 = 27,
    kF64 = 28,
    kBF16 = 30,
    // heterokv's own KV cache type, not a GGML type (never in a GGUF file; the GGUF reader and
    // writer refuse its id): hq4 rows, Hadamard-rotated iq4_nl blocks (backend/cpu/kv_hq4.h).
    kHQ4 = 1020,
};

struct DTypeInfo {
    DType type;
    const char* name;       // "q4_K" etc., as ggml names them
    int32_t block_size;     // elements per block (1 for plain types)
    int32_t type_size;      // bytes per block
    bool supported;         // heterokv can dequantize / dot this type
};

// nullptr when `id` is not a type this table knows (e.g. a hostile file's type 9999).
const DTypeInfo* dtype_info(uint32_t id);
inline const DTypeInfo* dtype_info(DType t) { return dtype_info(static_cast<uint32_t>(t)); }
const char* dtype_name(DType t);

// Bytes of a row of n elements; n must be a multiple of the block size (check with dtype_row_ok).
size_t dtype_row_size(DType t, int64_t n);
bool dtype_row_ok(DType t, int64_t n);

}  // namespace hkv
