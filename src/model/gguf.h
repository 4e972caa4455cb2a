// model/gguf.h — GGUF v2/v3 reader (mmap) and writer.
//
// Reader: GgufFile::open() maps the file read-only and parses header, metadata and tensor infos.
// Every count, length, offset and size is validated against the file size *before* it is used, so
// a truncated or hostile file yields a one-line Status (kCorrupt / kUnsupported / kIoError) naming
// what is wrong — never a crash, never an allocation larger than the file could justify. The
// tensors' data must be packed as every GGUF writer packs it (sorted by offset, each at the
// previous one's end rounded up to the alignment, the file ending at the last one's), which
// catches a tensor type or shape that does not match its data and a moved offset; and no tensor
// may belong to a block past <arch>.block_count. Only regular files are opened (a FIFO or device
// path is refused without being opened; heterokv/file_io.h).
// The GgufFile owns the mapping; GgufTensor::data points into it and lives as long as the GgufFile.
// All methods are const and thread-compatible after open().
//
// Writer: GgufWriter collects metadata and tensor descriptions, then write() streams the file,
// asking a producer callback for each tensor's bytes in order (so multi-GB models never sit in
// memory whole). Output is GGUF v3, alignment general.alignment (default 32).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "heterokv/status.h"

namespace hkv {

// On-disk metadata value types (gguf_type).
enum class GgufType : uint32_t {
    kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
    kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};
const char* gguf_type_name(GgufType t);

// One metadata value. Scalars use the field matching their type (integers widened: unsigned into
// u, signed into i, floats into f). Arrays hold elem_type and their elements in arr (nested arrays
// are arrays of arrays).
struct GgufValue {
    GgufType type = GgufType::kU8;
    uint64_t u = 0;
    int64_t i = 0;
    double f = 0.0;
    bool b = false;
    std::string str;
    GgufType elem_type = GgufType::kU8;  // arrays only
    std::vector<GgufValue> arr;          // arrays only

    bool is_integer() const;             // any of the 8 integer types
    bool is_float() const;               // f32 / f64
    // Integer value as int64 whatever the integer type (u64 above INT64_MAX is not representable).
    int64_t as_int() const { return (type == GgufType::kU8 || type == GgufType::kU16 || type == GgufType::kU32 || type == GgufType::kU64) ? int64_t(u) : i; }
};

struct GgufTensor {
    std::string name;
    int32_t n_dims = 0;
    int64_t ne[4] = {1, 1, 1, 1};  // ne[0] is the innermost (contiguous) dimension, as in ggml
    DType type = DType::kF32;
    uint64_t offset = 0;           // relative to the start of the data section
    const uint8_t* data = nullptr; // into the mapping; nbytes long
    size_t nbytes = 0;
    int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

class GgufFile {
public:
    // Maps and parses `path`. Errors: kNotFound/kIoError (open/map), kCorrupt (any inconsistency,
    // message names the key/tensor and the problem), kUnsupported (version, unknown tensor type).
    static Expected<std::unique_ptr<GgufFile>> open(const std::string& path);
    // Parses an in-memory image (used by tests and fuzzers). The bytes must outlive the GgufFile.
    static Expected<std::unique_ptr<GgufFile>> from_memory(const uint8_t* data, size_t size);
    ~GgufFile();
    GgufFile(const GgufFile&) = delete;
    GgufFile& operator=(const GgufFile&) = delete;

    uint32_t version() const { return version_; }
    size_t alignment() const { return alignment_; }
    const std::string& path() const { return path_; }

    // Metadata in file order.
    const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
    const GgufValue* find(std::string_view key) const;  // nullptr if absent

    // Typed getters: kNotFound when absent, kCorrupt when present with an incompatible type.
    // Integer getters accept any integer type whose value fits; get_f32 accepts f32/f64/integers.
    Expected<int64_t> get_int(std::string_view key) const;
    Expected<float> get_f32(std::string_view key) const;
    Expected<bool> get_bool(std::string_view key) const;
    Expected<std::string> get_str(std::string_view key) const;
    Expected<std::vector<std::string>> get_str_array(std::string_view key) const;
    Expected<std::vector<float>> get_f32_array(std::string_view key) const;
    Expected<std::vector<int64_t>> get_int_array(std::string_view key) const;
    // With defaults when absent (still an error when present with a wrong type).
    Expected<int64_t> get_int_or(std::string_view key, int64_t def) const;
    Expected<float> get_f32_or(std::string_view key, float def) const;

    const std::vector<GgufTensor>& tensors() const { return tensors_; }
    const GgufTensor* find_tensor(std::string_view name) const;  // nullptr if absent

    // Tells the kernel the process no longer needs the whole pages inside [p, p + n) of the mapping
    // (madvise MADV_DONTNEED): they leave the resident set. The bytes stay readable (a later access
    // reads them from the file again). For a copy made at load (weights repacked into another
    // layout) so that it replaces, not doubles, the resident weights. No-op for from_memory().
    void release_pages(const void* p, size_t n) const;

private:
    GgufFile() = default;
    Status parse(const uint8_t* data, size_t size);
    // Tensor data packed back to back at the alignment, no overlap, no gap (a changed type, shape
    // or offset shows up as one); data_avail: bytes of the data section.
    Status check_tensor_layout(size_t data_avail) const;
    // No "blk.N." tensor with N >= <arch>.block_count.
    Status check_block_count() const;

    std::string path_;
    void* map_ = nullptr;
    size_t map_size_ = 0;
    uint32_t version_ = 0;
    size_t alignment_ = 32;
    std::vector<std::pair<std::string, GgufValue>> kv_;
    std::map<std::string, size_t, std::less<>> kv_index_;
    std::vector<GgufTensor> tensors_;
    std::map<std::string, size_t, std::less<>> tensor_index_;
};

class GgufWriter {
public:
    void set_u32(const std::string& key, uint32_t v);
    void set_i32(const std::string& key, int32_t v);
    void set_u64(const std::string& key, uint64_t v);
    void set_f32(const std::string& key, float v);
    void set_bool(const std::string& key, bool v);
    void set_str(const std::string& key, const std::string& v);
    void set_str_array(const std::string& key, const std::vector<std::string>& v);
    void set_f32_array(const std::string& key, const std::vector<float>& v);
    void set_i32_array(const std::string& key, const std::vector<int32_t>& v);
    void set_value(const std::string& key, const GgufValue& v);  // any type, including nested arrays

    // Declares a tensor; dims[0] is innermost. Its bytes (dtype_row_size(type, dims[0]) * rows)
    // are requested from the producer at write time, in declaration order.
    Status add_tensor(const std::string& name, DType type, std::vector<int64_t> dims);

    // Producer: fill `out` (already resized to the tensor's byte size) for tensor index `idx`.
    using Producer = std::function<Status(size_t idx, const std::string& name, std::span<uint8_t> out)>;
    // Writes the whole file to `path` (written to path + ".tmp" then renamed: no half files).
    Status write(const std::string& path, const Producer& produce) const;

private:
    struct TensorDecl {
        std::string name;
        DType type;
        std::vector<int64_t> dims;
        size_t nbytes;
    };
    std::vector<std::pair<std::string, GgufValue>> kv_;
    std::vector<TensorDecl> tensors_;
};

}  // namespace hkv
