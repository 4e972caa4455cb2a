// model/gguf.cpp — GGUF v2/v3 reader: bounds-checked parse of header, metadata and tensor infos.
//
// Layout (little-endian): "GGUF" u32 version, u64 n_tensors, u64 n_kv, n_kv × {string key, u32 type,
// value}, n_tensors × {string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset}, zero
// padding to the alignment, then the data section; tensor offsets are relative to its start.
// A string is u64 length + bytes; an array is u32 elem type + u64 count + elements.
//
// NOTE: every length/count is compared with the bytes left in the buffer before anything is
// allocated for it, and each element needs at least min_encoded_size() bytes, so a hostile count
// can never allocate more than the file's size times a small constant.
#include "model/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>

#include "heterokv/file_io.h"

namespace hkv {
namespace {

constexpr uint32_t kMagic = 0x46554747;      // "GGUF" read as a little-endian u32
constexpr int kMaxNesting = 8;               // array-of-array depth limit
constexpr uint64_t kMaxKeyLen = 65535;       // the spec limits keys to 2^16 - 1 bytes
// Total array elements held in memory over all metadata (a GgufValue is ~100 bytes; real files
// have a few hundred thousand: vocab + merges).
constexpr uint64_t kMaxMetadataElems = uint64_t(1) << 24;

bool is_valid_type(uint32_t t) { return t <= uint32_t(GgufType::kF64); }

// Bytes of a fixed-size scalar type; 0 for string/array.
size_t scalar_size(GgufType t) {
    switch (t) {
        case GgufType::kU8: case GgufType::kI8: case GgufType::kBool: return 1;
        case GgufType::kU16: case GgufType::kI16: return 2;
        case GgufType::kU32: case GgufType::kI32: case GgufType::kF32: return 4;
        case GgufType::kU64: case GgufType::kI64: case GgufType::kF64: return 8;
        case GgufType::kString: case GgufType::kArray: return 0;
    }
    return 0;
}

// Smallest number of bytes one value of type t can occupy on disk.
size_t min_encoded_size(GgufType t) {
    if (t == GgufType::kString) return 8;   // u64 length
    if (t == GgufType::kArray) return 12;   // u32 elem type + u64 count
    return scalar_size(t);
}

// Read-only cursor over the buffer. Every read checks the remaining bytes first.
class Reader {
public:
    Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
    size_t pos() const { return pos_; }
    size_t remaining() const { return size_ - pos_; }
    bool read_bytes(void* out, size_t n) {
        if (n > remaining()) return false;
        if (n) std::memcpy(out, data_ + pos_, n);
        pos_ += n;
        return true;
    }
    template <typename T>
    bool read(T& v) { return read_bytes(&v, sizeof(T)); }
    bool skip(size_t n) {
        if (n > remaining()) return false;
        pos_ += n;
        return true;
    }
    const uint8_t* here() const { return data_ + pos_; }

private:
    const uint8_t* data_;
    size_t size_;
    size_t pos_ = 0;
};

struct ParseState {
    Reader r;
    uint64_t n_elems = 0;  // array elements parsed so far (kMaxMetadataElems budget)
};

Status truncated(const Reader& r, const std::string& what, size_t need) {
    return Status::corrupt("gguf: %s: needs %zu bytes at offset %zu but only %zu remain (truncated file?)",
                           what.c_str(), need, r.pos(), r.remaining());
}

// Reads a u64-length-prefixed string; the length is checked against the remaining bytes first.
Status read_string(Reader& r, const std::string& what, uint64_t max_len, std::string& out) {
    uint64_t len = 0;
    if (!r.read(len)) return truncated(r, what + " length", 8);
    if (len > r.remaining()) {
        return Status::corrupt("gguf: %s: length %" PRIu64 " at offset %zu exceeds the %zu bytes left",
                               what.c_str(), len, r.pos() - 8, r.remaining());
    }
    if (len > max_len) {
        return Status::corrupt("gguf: %s: length %" PRIu64 " exceeds the limit %" PRIu64, what.c_str(), len,
                               max_len);
    }
    out.assign(reinterpret_cast<const char*>(r.here()), size_t(len));
    r.skip(size_t(len));
    return Status();
}

Status read_value(ParseState& st, GgufType type, int depth, const std::string& what, GgufValue& out);

Status read_array(ParseState& st, int depth, const std::string& what, GgufValue& out) {
    Reader& r = st.r;
    if (depth >= kMaxNesting) {
        return Status::corrupt("gguf: %s: arrays nested deeper than %d levels", what.c_str(), kMaxNesting);
    }
    uint32_t et = 0;
    if (!r.read(et)) return truncated(r, what + " array element type", 4);
    if (!is_valid_type(et)) return Status::corrupt("gguf: %s: unknown array element type %u", what.c_str(), et);
    uint64_t count = 0;
    if (!r.read(count)) return truncated(r, what + " array count", 8);
    const GgufType elem = GgufType(et);
    const size_t min_sz = min_encoded_size(elem);
    if (count > r.remaining() / min_sz) {
        return Status::corrupt("gguf: %s: array of %" PRIu64 " %s needs at least %" PRIu64 " bytes but only %zu remain",
                               what.c_str(), count, gguf_type_name(elem),
                               count > UINT64_MAX / min_sz ? UINT64_MAX : count * min_sz, r.remaining());
    }
    st.n_elems += count;
    if (st.n_elems > kMaxMetadataElems) {
        return Status::unsupported("gguf: %s: metadata arrays hold more than %" PRIu64 " elements in total",
                                   what.c_str(), kMaxMetadataElems);
    }
    out.type = GgufType::kArray;
    out.elem_type = elem;
    out.arr.resize(size_t(count));
    for (uint64_t k = 0; k < count; ++k) {
        Status s = read_value(st, elem, depth + 1, what, out.arr[size_t(k)]);
        if (!s.ok() && depth == 0) return Status(s.code(), s.message() + " (array element " + std::to_string(k) + ")");
        if (!s.ok()) return s;
    }
    return Status();
}

Status read_value(ParseState& st, GgufType type, int depth, const std::string& what, GgufValue& out) {
    Reader& r = st.r;
    out.type = type;
    switch (type) {
        case GgufType::kString: return read_string(r, what, UINT64_MAX, out.str);
        case GgufType::kArray: return read_array(st, depth, what, out);
        default: break;
    }
    const size_t n = scalar_size(type);
    uint8_t raw[8] = {};
    if (!r.read_bytes(raw, n)) return truncated(r, what + " value", n);
    switch (type) {
        case GgufType::kU8: out.u = raw[0]; break;
        case GgufType::kI8: { int8_t v; std::memcpy(&v, raw, 1); out.i = v; break; }
        case GgufType::kU16: { uint16_t v; std::memcpy(&v, raw, 2); out.u = v; break; }
        case GgufType::kI16: { int16_t v; std::memcpy(&v, raw, 2); out.i = v; break; }
        case GgufType::kU32: { uint32_t v; std::memcpy(&v, raw, 4); out.u = v; break; }
        case GgufType::kI32: { int32_t v; std::memcpy(&v, raw, 4); out.i = v; break; }
        case GgufType::kU64: { uint64_t v; std::memcpy(&v, raw, 8); out.u = v; break; }
        case GgufType::kI64: { int64_t v; std::memcpy(&v, raw, 8); out.i = v; break; }
        case GgufType::kF32: { float v; std::memcpy(&v, raw, 4); out.f = v; break; }
        case GgufType::kF64: { double v; std::memcpy(&v, raw, 8); out.f = v; break; }
        case GgufType::kBool: out.b = raw[0] != 0; break;
        default: break;
    }
    return Status();
}

// Integer value of v if it is an integer that fits int64.
Status value_as_int(std::string_view key, const GgufValue& v, int64_t& out) {
    if (!v.is_integer()) {
        return Status::corrupt("gguf: key '%.*s' has type %s, expected an integer", int(key.size()), key.data(),
                               gguf_type_name(v.type));
    }
    if (v.type == GgufType::kU64 && v.u > uint64_t(INT64_MAX)) {
        return Status::corrupt("gguf: key '%.*s': value %" PRIu64 " does not fit int64", int(key.size()),
                               key.data(), v.u);
    }
    out = v.as_int();
    return Status();
}

Status value_as_f32(std::string_view key, const GgufValue& v, float& out) {
    if (v.is_float()) {
        out = float(v.f);
    } else if (v.is_integer()) {
        out = v.type == GgufType::kU64 ? float(v.u) : float(v.as_int());
    } else {
        return Status::corrupt("gguf: key '%.*s' has type %s, expected a number", int(key.size()), key.data(),
                               gguf_type_name(v.type));
    }
    return Status();
}

Status not_found_key(std::string_view key) {
    return Status::not_found("gguf: key '%.*s' not found", int(key.size()), key.data());
}

Status expect_array(std::string_view key, const GgufValue& v, const char* of) {
    if (v.type != GgufType::kArray) {
        return Status::corrupt("gguf: key '%.*s' has type %s, expected an array of %s", int(key.size()),
                               key.data(), gguf_type_name(v.type), of);
    }
    return Status();
}

Status elem_mismatch(std::string_view key, const GgufValue& v, const char* of) {
    return Status::corrupt("gguf: key '%.*s' is an array of %s, expected an array of %s", int(key.size()),
                           key.data(), gguf_type_name(v.elem_type), of);
}

}  // namespace

const char* gguf_type_name(GgufType t) {
    switch (t) {
        case GgufType::kU8: return "u8";
        case GgufType::kI8: return "i8";
        case GgufType::kU16: return "u16";
        case GgufType::kI16: return "i16";
        case GgufType::kU32: return "u32";
        case GgufType::kI32: return "i32";
        case GgufType::kF32: return "f32";
        case GgufType::kBool: return "bool";
        case GgufType::kString: return "string";
        case GgufType::kArray: return "array";
        case GgufType::kU64: return "u64";
        case GgufType::kI64: return "i64";
        case GgufType::kF64: return "f64";
    }
    return "unknown";
}

bool GgufValue::is_integer() const {
    switch (type) {
        case GgufType::kU8: case GgufType::kI8: case GgufType::kU16: case GgufType::kI16:
        case GgufType::kU32: case GgufType::kI32: case GgufType::kU64: case GgufType::kI64: return true;
        default: return false;
    }
}

bool GgufValue::is_float() const { return type == GgufType::kF32 || type == GgufType::kF64; }

GgufFile::~GgufFile() {
    if (map_) munmap(map_, map_size_);
}

void GgufFile::release_pages(const void* p, size_t n) const {
    if (!map_) return;
    const uintptr_t base = reinterpret_cast<uintptr_t>(map_), page = uintptr_t(sysconf(_SC_PAGESIZE));
    uintptr_t b = reinterpret_cast<uintptr_t>(p), e = b + n;
    b = std::max(b, base), e = std::min(e, base + map_size_);
    b = (b + page - 1) / page * page, e = e / page * page;  // whole pages inside the range only
    if (b < e) madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
}

Expected<std::unique_ptr<GgufFile>> GgufFile::from_memory(const uint8_t* data, size_t size) {
    try {
        std::unique_ptr<GgufFile> f(new GgufFile());
        f->path_ = "<memory>";
        HKV_TRY(f->parse(data, size));
        return f;
    } catch (const std::bad_alloc&) {
        return Status::out_of_memory("gguf: out of memory while parsing a %zu-byte image", size);
    } catch (const std::exception& e) {
        return Status::internal("gguf: unexpected exception: %s", e.what());
    }
}

Expected<std::unique_ptr<GgufFile>> GgufFile::open(const std::string& path) {
    try {
        // A regular file only: a FIFO or device is refused before it is opened (no blocking open).
        uint64_t file_size = 0;
        auto opened = file_open_read(path, &file_size, "gguf:");
        if (!opened.ok()) return opened.status();
        const int fd = *opened;
        const size_t size = size_t(file_size);
        if (size == 0) {
            ::close(fd);
            return Status::corrupt("gguf: %s: empty file", path.c_str());
        }
        void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
        const int map_err = errno;
        ::close(fd);
        if (map == MAP_FAILED) {
            return Status::io_error("gguf: %s: mmap of %zu bytes failed: %s", path.c_str(), size,
                                    std::strerror(map_err));
        }
        std::unique_ptr<GgufFile> f(new (std::nothrow) GgufFile());
        if (!f) {
            munmap(map, size);
            return Status::out_of_memory("gguf: %s: out of memory", path.c_str());
        }
        f->map_ = map;  // owned from here on: the destructor unmaps
        f->map_size_ = size;
        f->path_ = path;
        Status st = f->parse(static_cast<const uint8_t*>(map), size);
        if (!st.ok()) return st.with_context(path);
        return f;
    } catch (const std::bad_alloc&) {
        return Status::out_of_memory("gguf: %s: out of memory while parsing", path.c_str());
    } catch (const std::exception& e) {
        return Status::internal("gguf: %s: unexpected exception: %s", path.c_str(), e.what());
    }
}

Status GgufFile::parse(const uint8_t* data, size_t size) {
    ParseState st{Reader(data, size)};
    Reader& r = st.r;

    // --- header ---
    uint32_t magic = 0;
    if (!r.read(magic)) return Status::corrupt("gguf: file of %zu bytes is too short for the magic", size);
    if (magic != kMagic) {
        return Status::corrupt("gguf: bad magic %02x %02x %02x %02x (expected \"GGUF\")", data[0], data[1],
                               data[2], data[3]);
    }
    if (!r.read(version_)) return truncated(r, "header version", 4);
    if (version_ == 1) return Status::unsupported("gguf: version 1 is not supported (only v2 and v3)");
    if (version_ != 2 && version_ != 3) {
        if ((version_ & 0xffff) == 0 && version_ != 0) {
            return Status::unsupported("gguf: version %u (0x%08x): a big-endian file? only little-endian v2/v3",
                                       version_, version_);
        }
        return Status::unsupported("gguf: version %u is not supported (only v2 and v3)", version_);
    }
    uint64_t n_tensors = 0, n_kv = 0;
    if (!r.read(n_tensors)) return truncated(r, "header tensor count", 8);
    if (!r.read(n_kv)) return truncated(r, "header kv count", 8);
    // Lower bounds on the encoded size: kv = key length + type + 1-byte value; tensor info = name
    // length + n_dims + 1 dim + type + offset.
    constexpr uint64_t kMinKv = 8 + 4 + 1, kMinTensor = 8 + 4 + 8 + 4 + 8;
    if (n_kv > r.remaining() / kMinKv) {
        return Status::corrupt("gguf: kv count %" PRIu64 " needs at least %" PRIu64 " bytes each but only %zu remain",
                               n_kv, kMinKv, r.remaining());
    }
    if (n_tensors > (r.remaining() - n_kv * kMinKv) / kMinTensor) {
        return Status::corrupt("gguf: tensor count %" PRIu64 " needs at least %" PRIu64 " bytes each but only %zu remain",
                               n_tensors, kMinTensor, r.remaining());
    }

    // --- metadata ---
    kv_.reserve(size_t(n_kv));
    for (uint64_t k = 0; k < n_kv; ++k) {
        std::string key;
        HKV_TRY(read_string(r, "kv #" + std::to_string(k) + " key", kMaxKeyLen, key));
        if (key.empty()) return Status::corrupt("gguf: kv #%" PRIu64 ": empty key", k);
        const std::string what = "key '" + key + "'";
        if (kv_index_.count(key)) return Status::corrupt("gguf: duplicate %s (kv #%" PRIu64 ")", what.c_str(), k);
        uint32_t t = 0;
        if (!r.read(t)) return truncated(r, what + " type", 4);
        if (!is_valid_type(t)) return Status::corrupt("gguf: %s: unknown value type %u", what.c_str(), t);
        GgufValue v;
        HKV_TRY(read_value(st, GgufType(t), 0, what, v));
        kv_index_.emplace(key, kv_.size());
        kv_.emplace_back(std::move(key), std::move(v));
    }

    if (const GgufValue* a = find("general.alignment")) {
        if (!a->is_integer()) {
            return Status::corrupt("gguf: general.alignment has type %s, expected u32", gguf_type_name(a->type));
        }
        const int64_t al = a->as_int();
        if (al <= 0 || al > (int64_t(1) << 30) || (al & (al - 1)) != 0) {
            return Status::corrupt("gguf: general.alignment %" PRId64 " is not a power of two in [1, 2^30]", al);
        }
        alignment_ = size_t(al);
    }

    // --- tensor infos ---
    tensors_.reserve(size_t(n_tensors));
    for (uint64_t k = 0; k < n_tensors; ++k) {
        GgufTensor t;
        HKV_TRY(read_string(r, "tensor #" + std::to_string(k) + " name", kMaxKeyLen, t.name));
        char id[96];
        std::snprintf(id, sizeof(id), "tensor '%.60s' (#%" PRIu64 ")", t.name.c_str(), k);
        if (t.name.empty()) return Status::corrupt("gguf: %s: empty name", id);
        if (tensor_index_.count(t.name)) return Status::corrupt("gguf: %s: duplicate tensor name", id);
        uint32_t n_dims = 0;
        if (!r.read(n_dims)) return truncated(r, std::string(id) + " n_dims", 4);
        if (n_dims < 1 || n_dims > 4) return Status::corrupt("gguf: %s: n_dims %u is not in 1..4", id, n_dims);
        t.n_dims = int32_t(n_dims);
        int64_t n_el = 1;
        bool overflow = false;
        for (uint32_t d = 0; d < n_dims; ++d) {
            uint64_t ne = 0;
            if (!r.read(ne)) return truncated(r, std::string(id) + " dims", 8);
            if (ne > uint64_t(INT64_MAX)) {
                return Status::corrupt("gguf: %s: dim %u is %" PRId64 " (negative)", id, d, int64_t(ne));
            }
            t.ne[d] = int64_t(ne);
            overflow = overflow || __builtin_mul_overflow(n_el, t.ne[d], &n_el);
        }
        if (overflow) {
            return Status::corrupt("gguf: %s: element count of [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
                                   "] overflows int64", id, t.ne[0], t.ne[1], t.ne[2], t.ne[3]);
        }
        uint32_t type_id = 0;
        if (!r.read(type_id)) return truncated(r, std::string(id) + " type", 4);
        const DTypeInfo* info = dtype_info(type_id);
        if (!info || info->type == DType::kHQ4) {  // hq4 is heterokv's KV type, not a GGML one
            return Status::unsupported("gguf: %s: unknown tensor type id %u", id, type_id);
        }
        t.type = info->type;
        if (t.ne[0] % info->block_size != 0) {
            return Status::corrupt("gguf: %s: ne0 %" PRId64 " is not a multiple of the %s block size %d", id,
                                   t.ne[0], info->name, info->block_size);
        }
        // nbytes = (ne0 / block) * type_size * ne1 * ne2 * ne3, overflow-checked.
        uint64_t nbytes = uint64_t(t.ne[0] / info->block_size);
        overflow = __builtin_mul_overflow(nbytes, uint64_t(info->type_size), &nbytes);
        for (int d = 1; d < 4; ++d) overflow = overflow || __builtin_mul_overflow(nbytes, uint64_t(t.ne[d]), &nbytes);
        if (overflow || nbytes > size) {
            return Status::corrupt("gguf: %s: %s [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
                                   "] is larger than the whole file (%zu bytes)", id, info->name, t.ne[0], t.ne[1],
                                   t.ne[2], t.ne[3], size);
        }
        t.nbytes = size_t(nbytes);
        if (!r.read(t.offset)) return truncated(r, std::string(id) + " offset", 8);
        if (t.offset % alignment_ != 0) {
            return Status::corrupt("gguf: %s: data offset %" PRIu64 " is not a multiple of the alignment %zu", id,
                                   t.offset, alignment_);
        }
        tensor_index_.emplace(t.name, tensors_.size());
        tensors_.push_back(std::move(t));
    }

    // --- data section: starts at the next multiple of the alignment ---
    const size_t info_end = r.pos();
    const size_t data_start = (info_end + alignment_ - 1) / alignment_ * alignment_;  // no overflow: info_end <= size
    const size_t data_avail = data_start <= size ? size - data_start : 0;
    for (size_t k = 0; k < tensors_.size(); ++k) {
        GgufTensor& t = tensors_[k];
        if (data_start > size || t.offset > data_avail || t.nbytes > data_avail - t.offset) {
            return Status::corrupt("gguf: tensor '%.60s' (#%zu): data [offset %" PRIu64 ", %zu bytes] ends past end "
                                   "of file (%zu bytes, data section at %zu)", t.name.c_str(), k, t.offset, t.nbytes,
                                   size, data_start);
        }
        t.data = data + data_start + t.offset;
    }
    HKV_TRY(check_tensor_layout(data_avail));
    return check_block_count();
}

// Writers (llama.cpp's gguf, gguf-py, ours) lay tensor data out back to back, each padded to the
// alignment: sorted by offset, every tensor starts where the previous one's padded end is, and the
// file ends at the last one's padded end. A tensor whose type or shape was changed (f32 -> f16
// halves its size) leaves a gap; a moved offset makes two tensors overlap or leaves a gap. Either
// means the described tensor is not the data behind it, so the file is refused.
Status GgufFile::check_tensor_layout(size_t data_avail) const {
    if (tensors_.empty()) return Status();
    std::vector<size_t> order(tensors_.size());
    for (size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return tensors_[a].offset != tensors_[b].offset ? tensors_[a].offset < tensors_[b].offset : a < b;
    });
    auto padded_end = [&](const GgufTensor& t) {  // no overflow: offset + nbytes <= data_avail
        return (t.offset + t.nbytes + alignment_ - 1) / alignment_ * alignment_;
    };
    auto desc = [](const GgufTensor& t) {
        char b[160];
        std::snprintf(b, sizeof b, "'%.60s' (%s [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 "], %zu bytes at %" PRIu64 ")",
                      t.name.c_str(), dtype_name(t.type), t.ne[0], t.ne[1], t.ne[2], t.ne[3], t.nbytes, t.offset);
        return std::string(b);
    };
    const GgufTensor& first = tensors_[order[0]];
    if (first.offset != 0) {
        return Status::corrupt("gguf: the first tensor's data starts at offset %" PRIu64 " of the data section, not 0: "
                               "tensor %s (a wrong offset)", first.offset, desc(first).c_str());
    }
    for (size_t k = 0; k + 1 < order.size(); ++k) {
        const GgufTensor& a = tensors_[order[k]];
        const GgufTensor& b = tensors_[order[k + 1]];
        if (b.offset < a.offset + a.nbytes) {
            return Status::corrupt("gguf: tensors %s and %s overlap (a wrong offset, type or shape)", desc(a).c_str(),
                                   desc(b).c_str());
        }
        if (b.offset != padded_end(a)) {
            return Status::corrupt("gguf: %" PRIu64 " unused bytes between tensor %s and tensor %s: the first is "
                                   "smaller than its data (a wrong type or shape) or the second's offset is wrong",
                                   b.offset - padded_end(a), desc(a).c_str(), desc(b).c_str());
        }
    }
    const GgufTensor& last = tensors_[order.back()];
    if (data_avail > padded_end(last)) {
        return Status::corrupt("gguf: %zu bytes after the last tensor %s: it is smaller than its data (a wrong type "
                               "or shape) or the file has trailing bytes", data_avail - size_t(padded_end(last)),
                               desc(last).c_str());
    }
    return Status();
}

// Tensors of blocks the header does not count ("blk.N." with N >= <arch>.block_count) mean a
// lowered block_count: the model would run without them, silently.
Status GgufFile::check_block_count() const {
    const GgufValue* arch = find("general.architecture");
    if (!arch || arch->type != GgufType::kString) return Status();
    const GgufValue* bc = find(arch->str + ".block_count");
    if (!bc || !bc->is_integer()) return Status();
    const int64_t n_block = bc->as_int();
    for (const GgufTensor& t : tensors_) {
        if (t.name.rfind("blk.", 0) != 0) continue;
        int64_t il = 0;
        size_t i = 4;
        for (; i < t.name.size() && i < 14 && t.name[i] >= '0' && t.name[i] <= '9'; ++i) il = il * 10 + (t.name[i] - '0');
        if (i == 4 || i >= t.name.size() || t.name[i] != '.') continue;
        if (il >= n_block) {
            return Status::corrupt("gguf: tensor '%.60s' belongs to block %" PRId64 " but %s.block_count is %" PRId64
                                   " (a lowered block count?)", t.name.c_str(), il, arch->str.c_str(), n_block);
        }
    }
    return Status();
}

const GgufValue* GgufFile::find(std::string_view key) const {
    auto it = kv_index_.find(key);
    return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufTensor* GgufFile::find_tensor(std::string_view name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

Expected<int64_t> GgufFile::get_int(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return not_found_key(key);
    int64_t out = 0;
    HKV_TRY(value_as_int(key, *v, out));
    return out;
}

Expected<float> GgufFile::get_f32(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return not_found_key(key);
    float out = 0;
    HKV_TRY(value_as_f32(key, *v, out));
    return out;
}

Expected<bool> GgufFile::get_bool(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return not_found_key(key);
    if (v->type != GgufType::kBool) {
        return Status::corrupt("gguf: key '%.*s' has type %s, expected bool", int(key.size()), key.data(),
                               gguf_type_name(v->type));
    }
    return v->b;
}

Expected<std::string> GgufFile::get_str(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return not_found_key(key);
    if (v->type != GgufType::kString) {
        return Status::corrupt("gguf: key '%.*s' has type %s, expected string", int(key.size()), key.data(),
                               gguf_type_name(v->type));
    }
    try {
        return v->str;
    } catch (const std::bad_alloc&) {
        return Status::out_of_memory("gguf: key '%.*s': out of memory", int(key.size()), key.data());
    }
}

Expected<std::vector<std::string>> GgufFile::get_str_array(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return not_found_key(key);
    HKV_TRY(expect_array(key, *v, "string"));
    if (v->elem_type != GgufType::kString) return elem_mismatch(key, *v, "string");
    try {
        std::vector<std::string> out;
        out.reserve(v->arr.size());
        for (const GgufValue& e : v->arr) out.push_back(e.str);
        return out;
    } catch (const std::bad_alloc&) {
        return Status::out_of_memory("gguf: key '%.*s': out of memory", int(key.size()), key.data());
    }
}

Expected<std::vector<float>> GgufFile::get_f32_array(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return not_found_key(key);
    HKV_TRY(expect_array(key, *v, "numbers"));
    try {
        std::vector<float> out(v->arr.size());
        for (size_t k = 0; k < v->arr.size(); ++k) {
            Status st = value_as_f32(key, v->arr[k], out[k]);
            if (!st.ok()) return elem_mismatch(key, *v, "numbers");
        }
        return out;
    } catch (const std::bad_alloc&) {
        return Status::out_of_memory("gguf: key '%.*s': out of memory", int(key.size()), key.data());
    }
}

Expected<std::vector<int64_t>> GgufFile::get_int_array(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return not_found_key(key);
    HKV_TRY(expect_array(key, *v, "integers"));
    GgufValue elem_probe;
    elem_probe.type = v->elem_type;
    if (!elem_probe.is_integer()) return elem_mismatch(key, *v, "integers");
    try {
        std::vector<int64_t> out(v->arr.size());
        for (size_t k = 0; k < v->arr.size(); ++k) {
            const GgufValue& e = v->arr[k];
            if (e.type == GgufType::kU64 && e.u > uint64_t(INT64_MAX)) {
                return Status::corrupt("gguf: key '%.*s': element %zu (%" PRIu64 ") does not fit int64",
                                       int(key.size()), key.data(), k, e.u);
            }
            out[k] = e.as_int();
        }
        return out;
    } catch (const std::bad_alloc&) {
        return Status::out_of_memory("gguf: key '%.*s': out of memory", int(key.size()), key.data());
    }
}

Expected<int64_t> GgufFile::get_int_or(std::string_view key, int64_t def) const {
    if (!find(key)) return def;
    return get_int(key);
}

Expected<float> GgufFile::get_f32_or(std::string_view key, float def) const {
    if (!find(key)) return def;
    return get_f32(key);
}

}  // namespace hkv
