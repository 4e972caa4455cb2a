#include "core/dtype.h"

#include <string>

#include "heterokv/types.h"

namespace hkv {
namespace {

constexpr DTypeInfo kTable[] = {
    {DType::kF32, "f32", 1, 4, true},
    {DType::kF16, "f16", 1, 2, true},
    {DType::kQ4_0, "q4_0", 32, 18, true},
    {DType::kQ4_1, "q4_1", 32, 20, true},
    {DType::kQ5_0, "q5_0", 32, 22, true},
    {DType::kQ5_1, "q5_1", 32, 24, true},
    {DType::kQ8_0, "q8_0", 32, 34, true},
    {DType::kQ8_1, "q8_1", 32, 36, false},
    {DType::kQ2_K, "q2_K", 256, 84, true},
    {DType::kQ3_K, "q3_K", 256, 110, true},
    {DType::kQ4_K, "q4_K", 256, 144, true},
    {DType::kQ5_K, "q5_K", 256, 176, true},
    {DType::kQ6_K, "q6_K", 256, 210, true},
    {DType::kQ8_K, "q8_K", 256, 292, false},
    {DType::kIQ4_NL, "iq4_nl", 32, 18, true},
    {DType::kIQ4_XS, "iq4_xs", 256, 136, true},
    {DType::kI8, "i8", 1, 1, false},
    {DType::kI16, "i16", 1, 2, false},
    {DType::kI32, "i32", 1, 4, false},
    {DType::kI64, "i64", 1, 8, false},
    {DType::kF64, "f64", 1, 8, false},
    {DType::kBF16, "bf16", 1, 2, true},
    {DType::kHQ4, "hq4", 32, 18, false},  // KV rows only (not a weight type)
};

}  // namespace

const DTypeInfo* dtype_info(uint32_t id) {
    for (const DTypeInfo& d : kTable) {
        if (static_cast<uint32_t>(d.type) == id) return &d;
    }
    return nullptr;
}

const char* dtype_name(DType t) {
    const DTypeInfo* d = dtype_info(t);
    return d ? d->name : "unknown";
}

bool dtype_row_ok(DType t, int64_t n) {
    const DTypeInfo* d = dtype_info(t);
    return d && n >= 0 && n % d->block_size == 0;
}

size_t dtype_row_size(DType t, int64_t n) {
    const DTypeInfo* d = dtype_info(t);
    return d ? size_t(n / d->block_size) * size_t(d->type_size) : 0;
}

// ---- KvType (heterokv/types.h): the cache types, a subset of the table above by GGML id ----
static_assert(uint32_t(KvType::kF32) == uint32_t(DType::kF32) && uint32_t(KvType::kF16) == uint32_t(DType::kF16) &&
              uint32_t(KvType::kBF16) == uint32_t(DType::kBF16) && uint32_t(KvType::kQ8_0) == uint32_t(DType::kQ8_0) &&
              uint32_t(KvType::kQ4_0) == uint32_t(DType::kQ4_0) && uint32_t(KvType::kHQ4) == uint32_t(DType::kHQ4));

const char* kv_type_name(KvType type) {
    switch (type) {
        case KvType::kF32: return "f32";
        case KvType::kF16: return "f16";
        case KvType::kBF16: return "bf16";
        case KvType::kQ8_0: return "q8_0";
        case KvType::kQ4_0: return "q4_0";
        case KvType::kHQ4: return "hq4";
    }
    return "unknown";
}

Expected<KvType> kv_type_parse(std::string_view name) {
    for (KvType t : {KvType::kF16, KvType::kBF16, KvType::kF32, KvType::kQ8_0, KvType::kQ4_0, KvType::kHQ4}) {
        if (name == kv_type_name(t)) return t;
    }
    return Status::invalid("'%s': expected f16, bf16, f32, q8_0, q4_0 or hq4", std::string(name).c_str());
}

int32_t kv_type_block(KvType type) {
    const DTypeInfo* d = dtype_info(uint32_t(type));
    return d ? d->block_size : 1;
}

size_t kv_type_size(KvType type) {
    const DTypeInfo* d = dtype_info(uint32_t(type));
    return d ? size_t(d->type_size) : 0;
}

size_t kv_type_row_size(KvType type, int64_t n) { return dtype_row_size(DType(uint32_t(type)), n); }

Status kv_type_check(KvType type, int64_t head_dim, std::string_view what) {
    const int32_t blk = kv_type_block(type);
    if (head_dim % blk != 0) {
        return Status::unsupported("%.*s: cache type %s needs a head size that is a multiple of %d; the model's "
                                   "head size is %lld (use f16, bf16 or f32)",
                                   int(what.size()), what.data(), kv_type_name(type), blk, (long long)head_dim);
    }
    // hq4's rotation is a Walsh-Hadamard transform of the whole row: a power of two (kv_hq4.h)
    if (type == KvType::kHQ4 && (head_dim < 32 || head_dim > 1024 || (head_dim & (head_dim - 1)) != 0)) {
        return Status::unsupported("%.*s: cache type hq4 needs a head size that is a power of two from 32 to "
                                   "1024; the model's head size is %lld (use q4_0, q8_0 or f16)",
                                   int(what.size()), what.data(), (long long)head_dim);
    }
    return Status();
}

}  // namespace hkv
