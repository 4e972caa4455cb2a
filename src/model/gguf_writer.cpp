// model/gguf_writer.cpp — GgufWriter: streams a GGUF v3 file (metadata, tensor infos, aligned data).
//
// The header, metadata and tensor infos are serialized into memory first (they are small), then
// each tensor's bytes are requested from the producer and written, followed by zero padding up to
// the alignment. Output goes to "<path>.tmp", which is renamed over `path` only on success.
#include "model/gguf.h"

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <new>
#include <set>

#include "heterokv/file_io.h"

namespace hkv {
namespace {

constexpr uint32_t kVersion = 3;
constexpr size_t kDefaultAlignment = 32;
constexpr int kMaxNesting = 8;  // same limit the reader enforces

void put_bytes(std::string& out, const void* p, size_t n) { out.append(static_cast<const char*>(p), n); }
template <typename T>
void put(std::string& out, T v) { put_bytes(out, &v, sizeof(T)); }
void put_str(std::string& out, const std::string& s) {
    put<uint64_t>(out, s.size());
    out.append(s);
}

// Checks that v is serializable: array elements all have elem_type, nesting within the limit.
Status check_value(const std::string& key, const GgufValue& v, int depth) {
    if (uint32_t(v.type) > uint32_t(GgufType::kF64)) {
        return Status::invalid("gguf writer: key '%s': invalid value type %u", key.c_str(), uint32_t(v.type));
    }
    if (v.type != GgufType::kArray) return Status();
    if (depth >= kMaxNesting) {
        return Status::invalid("gguf writer: key '%s': arrays nested deeper than %d levels", key.c_str(), kMaxNesting);
    }
    for (size_t k = 0; k < v.arr.size(); ++k) {
        if (v.arr[k].type != v.elem_type) {
            return Status::invalid("gguf writer: key '%s': element %zu has type %s in an array of %s", key.c_str(), k,
                                   gguf_type_name(v.arr[k].type), gguf_type_name(v.elem_type));
        }
        HKV_TRY(check_value(key, v.arr[k], depth + 1));
    }
    return Status();
}

// Serializes the payload of v (without its type tag, which the caller writes).
void put_value(std::string& out, const GgufValue& v) {
    switch (v.type) {
        case GgufType::kU8: put<uint8_t>(out, uint8_t(v.u)); break;
        case GgufType::kI8: put<int8_t>(out, int8_t(v.i)); break;
        case GgufType::kU16: put<uint16_t>(out, uint16_t(v.u)); break;
        case GgufType::kI16: put<int16_t>(out, int16_t(v.i)); break;
        case GgufType::kU32: put<uint32_t>(out, uint32_t(v.u)); break;
        case GgufType::kI32: put<int32_t>(out, int32_t(v.i)); break;
        case GgufType::kU64: put<uint64_t>(out, v.u); break;
        case GgufType::kI64: put<int64_t>(out, v.i); break;
        case GgufType::kF32: put<float>(out, float(v.f)); break;
        case GgufType::kF64: put<double>(out, v.f); break;
        case GgufType::kBool: put<uint8_t>(out, v.b ? 1 : 0); break;
        case GgufType::kString: put_str(out, v.str); break;
        case GgufType::kArray:
            put<uint32_t>(out, uint32_t(v.elem_type));
            put<uint64_t>(out, v.arr.size());
            for (const GgufValue& e : v.arr) put_value(out, e);
            break;
    }
}

size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

GgufValue scalar(GgufType t) {
    GgufValue v;
    v.type = t;
    return v;
}

GgufValue array_of(GgufType t) {
    GgufValue v;
    v.type = GgufType::kArray;
    v.elem_type = t;
    return v;
}

// Writes n bytes or reports the error; f is the open temp file.
Status write_all(std::FILE* f, const void* p, size_t n, const std::string& path) {
    if (n && std::fwrite(p, 1, n, f) != n) {
        return Status::io_error("gguf writer: %s: write of %zu bytes failed: %s", path.c_str(), n,
                                std::strerror(errno));
    }
    return Status();
}

}  // namespace

void GgufWriter::set_value(const std::string& key, const GgufValue& v) {
    for (auto& kv : kv_) {
        if (kv.first == key) {
            kv.second = v;
            return;
        }
    }
    kv_.emplace_back(key, v);
}

void GgufWriter::set_u32(const std::string& key, uint32_t v) {
    GgufValue x = scalar(GgufType::kU32);
    x.u = v;
    set_value(key, x);
}

void GgufWriter::set_i32(const std::string& key, int32_t v) {
    GgufValue x = scalar(GgufType::kI32);
    x.i = v;
    set_value(key, x);
}

void GgufWriter::set_u64(const std::string& key, uint64_t v) {
    GgufValue x = scalar(GgufType::kU64);
    x.u = v;
    set_value(key, x);
}

void GgufWriter::set_f32(const std::string& key, float v) {
    GgufValue x = scalar(GgufType::kF32);
    x.f = v;
    set_value(key, x);
}

void GgufWriter::set_bool(const std::string& key, bool v) {
    GgufValue x = scalar(GgufType::kBool);
    x.b = v;
    set_value(key, x);
}

void GgufWriter::set_str(const std::string& key, const std::string& v) {
    GgufValue x = scalar(GgufType::kString);
    x.str = v;
    set_value(key, x);
}

void GgufWriter::set_str_array(const std::string& key, const std::vector<std::string>& v) {
    GgufValue x = array_of(GgufType::kString);
    x.arr.resize(v.size(), scalar(GgufType::kString));
    for (size_t k = 0; k < v.size(); ++k) x.arr[k].str = v[k];
    set_value(key, x);
}

void GgufWriter::set_f32_array(const std::string& key, const std::vector<float>& v) {
    GgufValue x = array_of(GgufType::kF32);
    x.arr.resize(v.size(), scalar(GgufType::kF32));
    for (size_t k = 0; k < v.size(); ++k) x.arr[k].f = v[k];
    set_value(key, x);
}

void GgufWriter::set_i32_array(const std::string& key, const std::vector<int32_t>& v) {
    GgufValue x = array_of(GgufType::kI32);
    x.arr.resize(v.size(), scalar(GgufType::kI32));
    for (size_t k = 0; k < v.size(); ++k) x.arr[k].i = v[k];
    set_value(key, x);
}

Status GgufWriter::add_tensor(const std::string& name, DType type, std::vector<int64_t> dims) {
    const DTypeInfo* info = dtype_info(type);
    if (!info || type == DType::kHQ4) {  // hq4 is heterokv's KV type, not a GGML one
        return Status::invalid("gguf writer: tensor '%s': unknown type id %u", name.c_str(), uint32_t(type));
    }
    if (name.empty()) return Status::invalid("gguf writer: tensor with an empty name");
    for (const TensorDecl& t : tensors_) {
        if (t.name == name) return Status::invalid("gguf writer: duplicate tensor '%s'", name.c_str());
    }
    if (dims.empty() || dims.size() > 4) {
        return Status::invalid("gguf writer: tensor '%s': %zu dims (must be 1..4)", name.c_str(), dims.size());
    }
    uint64_t rows = 1;
    for (size_t d = 0; d < dims.size(); ++d) {
        if (dims[d] < 0) {
            return Status::invalid("gguf writer: tensor '%s': dim %zu is negative (%" PRId64 ")", name.c_str(), d,
                                   dims[d]);
        }
        if (d > 0 && __builtin_mul_overflow(rows, uint64_t(dims[d]), &rows)) {
            return Status::invalid("gguf writer: tensor '%s': size overflows", name.c_str());
        }
    }
    if (!dtype_row_ok(type, dims[0])) {
        return Status::invalid("gguf writer: tensor '%s': ne0 %" PRId64 " is not a multiple of the %s block size %d",
                               name.c_str(), dims[0], info->name, info->block_size);
    }
    uint64_t nbytes = uint64_t(dims[0] / info->block_size);
    if (__builtin_mul_overflow(nbytes, uint64_t(info->type_size), &nbytes) ||
        __builtin_mul_overflow(nbytes, rows, &nbytes) || nbytes > uint64_t(INT64_MAX)) {
        return Status::invalid("gguf writer: tensor '%s': size overflows", name.c_str());
    }
    try {
        tensors_.push_back(TensorDecl{name, type, std::move(dims), size_t(nbytes)});
    } catch (const std::bad_alloc&) {
        return Status::out_of_memory("gguf writer: tensor '%s': out of memory", name.c_str());
    }
    return Status();
}

Status GgufWriter::write(const std::string& path, const Producer& produce) const {
    try {
        // --- alignment ---
        size_t alignment = kDefaultAlignment;
        std::set<std::string> keys;
        for (const auto& [key, v] : kv_) {
            if (key.empty() || key.size() > 65535) {
                return Status::invalid("gguf writer: key of %zu bytes (must be 1..65535)", key.size());
            }
            keys.insert(key);
            HKV_TRY(check_value(key, v, 0));
        }
        if (keys.size() != kv_.size()) return Status::invalid("gguf writer: duplicate metadata key");
        for (const auto& [key, v] : kv_) {
            if (key != "general.alignment") continue;
            const int64_t a = v.is_integer() ? v.as_int() : 0;
            if (v.type != GgufType::kU32 || a <= 0 || a > (int64_t(1) << 30) || (a & (a - 1)) != 0) {
                return Status::invalid("gguf writer: general.alignment must be a u32 power of two in [1, 2^30]");
            }
            alignment = size_t(a);
        }

        if (!tensors_.empty() && !produce) return Status::invalid("gguf writer: %s: no producer", path.c_str());

        // --- header, metadata, tensor infos ---
        std::string head;
        put<uint32_t>(head, 0x46554747);  // "GGUF"
        put<uint32_t>(head, kVersion);
        put<uint64_t>(head, tensors_.size());
        put<uint64_t>(head, kv_.size());
        for (const auto& [key, v] : kv_) {
            put_str(head, key);
            put<uint32_t>(head, uint32_t(v.type));
            put_value(head, v);
        }
        uint64_t offset = 0;  // relative to the data section
        for (const TensorDecl& t : tensors_) {
            put_str(head, t.name);
            put<uint32_t>(head, uint32_t(t.dims.size()));
            for (int64_t d : t.dims) put<uint64_t>(head, uint64_t(d));
            put<uint32_t>(head, uint32_t(t.type));
            put<uint64_t>(head, offset);
            offset += align_up(t.nbytes, alignment);
        }
        head.resize(align_up(head.size(), alignment), '\0');

        // --- stream: a new file renamed over `path` when complete (a device or FIFO target is
        // refused, never replaced; heterokv/file_io.h) ---
        return file_write_atomic(
            path,
            [&](std::FILE* f) -> Status {
                HKV_TRY(write_all(f, head.data(), head.size(), path));
                std::vector<uint8_t> buf;
                for (size_t k = 0; k < tensors_.size(); ++k) {
                    const TensorDecl& t = tensors_[k];
                    buf.assign(t.nbytes, 0);
                    Status st = produce(k, t.name, std::span<uint8_t>(buf.data(), buf.size()));
                    if (!st.ok()) return st.with_context("gguf writer: producer for tensor '" + t.name + "'");
                    HKV_TRY(write_all(f, buf.data(), buf.size(), path));
                    const size_t pad = align_up(t.nbytes, alignment) - t.nbytes;
                    if (pad) {
                        buf.assign(pad, 0);
                        HKV_TRY(write_all(f, buf.data(), pad, path));
                    }
                }
                return Status();
            },
            "gguf writer:");
    } catch (const std::bad_alloc&) {
        return Status::out_of_memory("gguf writer: %s: out of memory", path.c_str());
    } catch (const std::exception& e) {
        return Status::internal("gguf writer: %s: unexpected exception: %s", path.c_str(), e.what());
    }
}

}  // namespace hkv
