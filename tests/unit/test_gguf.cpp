// tests/unit/test_gguf.cpp — GGUF reader/writer and tokenizer metadata: round trips, the real
// stories260K file, and hostile/truncated inputs (which must give a Status, never a crash).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "model/gguf.h"
#include "model/vocab_gguf.h"
#include "test_util.h"

namespace hkv {
namespace {

namespace fs = std::filesystem;

// A temporary folder for this process's files, removed at exit (tests/test_util.h).
std::string temp_path(const std::string& name) {
    static const test::TempDir dir;
    return dir.file(name);
}

std::vector<uint8_t> read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Parses an exact-size heap copy of the first n bytes, so ASan sees any read past the end.
Status parse_prefix(const std::vector<uint8_t>& bytes, size_t n) {
    std::vector<uint8_t> copy(bytes.begin(), bytes.begin() + std::ptrdiff_t(n));
    auto f = GgufFile::from_memory(copy.empty() ? nullptr : copy.data(), copy.size());
    return f.status();
}
Status parse(const std::vector<uint8_t>& bytes) { return parse_prefix(bytes, bytes.size()); }

// Little-endian byte builder for hand-made (and deliberately broken) files.
struct Raw {
    std::vector<uint8_t> b;
    Raw& bytes(const void* p, size_t n) {
        b.insert(b.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n);
        return *this;
    }
    Raw& u8(uint8_t v) { return bytes(&v, 1); }
    Raw& u32(uint32_t v) { return bytes(&v, 4); }
    Raw& u64(uint64_t v) { return bytes(&v, 8); }
    Raw& str(const std::string& s) { return u64(s.size()).bytes(s.data(), s.size()); }
    Raw& header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
        return bytes("GGUF", 4).u32(version).u64(n_tensors).u64(n_kv);
    }
    Raw& kv_str(const std::string& key, const std::string& v) { return str(key).u32(8).str(v); }
    Raw& kv_u32(const std::string& key, uint32_t v) { return str(key).u32(4).u32(v); }
    Raw& tensor(const std::string& name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
        str(name).u32(uint32_t(dims.size()));
        for (uint64_t d : dims) u64(d);
        return u32(type).u64(offset);
    }
    Raw& pad(size_t a = 32) {
        b.resize((b.size() + a - 1) / a * a, 0);
        return *this;
    }
    Raw& zeros(size_t n) {
        b.resize(b.size() + n, 0);
        return *this;
    }
};

// A minimal valid file: one kv, one tensor "w" of f32 [8, 2] (64 bytes). Corrupt cases below
// change one thing in it, and ValidBaseParses checks that unchanged it is fine.
Raw base_file(uint32_t version = 3) {
    Raw r;
    r.header(version, 1, 1).kv_str("general.architecture", "llama").tensor("w", {8, 2}, 0, 0).pad().zeros(64);
    return r;
}

void expect_code(const Status& st, StatusCode code, const char* needle = nullptr) {
    EXPECT_EQ(st.code(), code) << st.to_string();
    if (needle) {
        EXPECT_NE(st.message().find(needle), std::string::npos) << st.to_string();
    }
    EXPECT_EQ(st.message().find('\n'), std::string::npos) << "multi-line message: " << st.message();
}

GgufValue scalar_u(GgufType t, uint64_t u) { GgufValue v; v.type = t; v.u = u; return v; }
GgufValue scalar_i(GgufType t, int64_t i) { GgufValue v; v.type = t; v.i = i; return v; }
GgufValue scalar_f(GgufType t, double f) { GgufValue v; v.type = t; v.f = f; return v; }
GgufValue boolean(bool b) { GgufValue v; v.type = GgufType::kBool; v.b = b; return v; }
GgufValue string(const std::string& s) { GgufValue v; v.type = GgufType::kString; v.str = s; return v; }
GgufValue array(GgufType elem, std::vector<GgufValue> items) {
    GgufValue v;
    v.type = GgufType::kArray;
    v.elem_type = elem;
    v.arr = std::move(items);
    return v;
}

// Compares the fields that matter for the value's type (recursively for arrays).
void expect_same(const GgufValue& a, const GgufValue& b, const std::string& where) {
    ASSERT_EQ(a.type, b.type) << where;
    switch (a.type) {
        case GgufType::kU8: case GgufType::kU16: case GgufType::kU32: case GgufType::kU64:
            EXPECT_EQ(a.u, b.u) << where; break;
        case GgufType::kI8: case GgufType::kI16: case GgufType::kI32: case GgufType::kI64:
            EXPECT_EQ(a.i, b.i) << where; break;
        case GgufType::kF32: case GgufType::kF64: EXPECT_EQ(a.f, b.f) << where; break;
        case GgufType::kBool: EXPECT_EQ(a.b, b.b) << where; break;
        case GgufType::kString: EXPECT_EQ(a.str, b.str) << where; break;
        case GgufType::kArray:
            EXPECT_EQ(a.elem_type, b.elem_type) << where;
            ASSERT_EQ(a.arr.size(), b.arr.size()) << where;
            for (size_t k = 0; k < a.arr.size(); ++k) expect_same(a.arr[k], b.arr[k], where + "[" + std::to_string(k) + "]");
            break;
    }
}

std::vector<std::pair<std::string, GgufValue>> all_metadata() {
    using T = GgufType;
    std::vector<std::pair<std::string, GgufValue>> kv = {
        {"t.u8", scalar_u(T::kU8, 255)},
        {"t.i8", scalar_i(T::kI8, -128)},
        {"t.u16", scalar_u(T::kU16, 65535)},
        {"t.i16", scalar_i(T::kI16, -32768)},
        {"t.u32", scalar_u(T::kU32, 4294967295u)},
        {"t.i32", scalar_i(T::kI32, INT32_MIN)},
        {"t.u64", scalar_u(T::kU64, UINT64_MAX)},
        {"t.i64", scalar_i(T::kI64, INT64_MIN)},
        {"t.f32", scalar_f(T::kF32, -1.5)},
        {"t.f64", scalar_f(T::kF64, 3.141592653589793)},
        {"t.bool_true", boolean(true)},
        {"t.bool_false", boolean(false)},
        {"t.str", string("h\xc3\xa9llo \xe2\x96\x81world")},
        {"t.str_empty", string("")},
        {"t.str_nul", string(std::string("a\0b", 3))},
        {"a.u8", array(T::kU8, {scalar_u(T::kU8, 0), scalar_u(T::kU8, 200)})},
        {"a.i8", array(T::kI8, {scalar_i(T::kI8, -5), scalar_i(T::kI8, 7)})},
        {"a.u16", array(T::kU16, {scalar_u(T::kU16, 1), scalar_u(T::kU16, 60000)})},
        {"a.i16", array(T::kI16, {scalar_i(T::kI16, -300)})},
        {"a.u32", array(T::kU32, {scalar_u(T::kU32, 7), scalar_u(T::kU32, 4000000000u)})},
        {"a.i32", array(T::kI32, {scalar_i(T::kI32, -1), scalar_i(T::kI32, 2), scalar_i(T::kI32, INT32_MAX)})},
        {"a.u64", array(T::kU64, {scalar_u(T::kU64, uint64_t(1) << 63)})},
        {"a.i64", array(T::kI64, {scalar_i(T::kI64, -(int64_t(1) << 40))})},
        {"a.f32", array(T::kF32, {scalar_f(T::kF32, 0.25), scalar_f(T::kF32, -2.0)})},
        {"a.f64", array(T::kF64, {scalar_f(T::kF64, 1e300)})},
        {"a.bool", array(T::kBool, {boolean(true), boolean(false), boolean(true)})},
        {"a.str", array(T::kString, {string("x"), string(""), string("<s>")})},
        {"a.empty", array(T::kF32, {})},
        {"n.i32", array(T::kArray, {array(T::kI32, {scalar_i(T::kI32, 1)}),
                                    array(T::kI32, {}),
                                    array(T::kI32, {scalar_i(T::kI32, 2), scalar_i(T::kI32, 3)})})},
        {"n.str3", array(T::kArray, {array(T::kArray, {array(T::kString, {string("deep"), string("er")})}),
                                     array(T::kArray, {})})},
    };
    return kv;
}

TEST(GgufRoundTrip, AllMetadataTypes) {
    const auto kv = all_metadata();
    GgufWriter w;
    for (const auto& [k, v] : kv) w.set_value(k, v);
    w.set_u32("s.u32", 77);
    w.set_i32("s.i32", -77);
    w.set_u64("s.u64", uint64_t(1) << 40);
    w.set_f32("s.f32", 0.5f);
    w.set_bool("s.bool", true);
    w.set_str("s.str", "abc");
    w.set_str_array("s.str_array", {"a", "bc"});
    w.set_f32_array("s.f32_array", {1.0f, -0.5f});
    w.set_i32_array("s.i32_array", {-3, 4});
    w.set_u32("s.u32", 78);  // replaces, keeps position
    const std::string path = temp_path("meta.gguf");
    ASSERT_TRUE(w.write(path, nullptr).ok());
    EXPECT_FALSE(fs::exists(path + ".tmp"));

    auto f = GgufFile::open(path);
    ASSERT_TRUE(f.ok()) << f.status().to_string();
    const GgufFile& g = **f;
    EXPECT_EQ(g.version(), 3u);
    EXPECT_EQ(g.alignment(), 32u);
    EXPECT_TRUE(g.tensors().empty());
    ASSERT_EQ(g.metadata().size(), kv.size() + 9);
    for (size_t k = 0; k < kv.size(); ++k) {  // file order is insertion order
        EXPECT_EQ(g.metadata()[k].first, kv[k].first);
        expect_same(g.metadata()[k].second, kv[k].second, kv[k].first);
    }
    EXPECT_EQ(g.metadata()[kv.size()].first, "s.u32");

    // Typed getters.
    EXPECT_EQ(*g.get_int("s.u32"), 78);
    EXPECT_EQ(*g.get_int("s.i32"), -77);
    EXPECT_EQ(*g.get_int("t.i64"), INT64_MIN);
    expect_code(g.get_int("t.u64").status(), StatusCode::kCorrupt, "t.u64");  // > INT64_MAX
    expect_code(g.get_int("s.str").status(), StatusCode::kCorrupt, "s.str");
    expect_code(g.get_int("nope").status(), StatusCode::kNotFound, "nope");
    EXPECT_EQ(*g.get_int_or("nope", 5), 5);
    EXPECT_EQ(*g.get_int_or("s.i32", 5), -77);
    EXPECT_FALSE(g.get_int_or("s.str", 5).ok());
    EXPECT_EQ(*g.get_f32("s.f32"), 0.5f);
    EXPECT_EQ(*g.get_f32("s.i32"), -77.0f);
    EXPECT_FLOAT_EQ(*g.get_f32("t.f64"), 3.14159265f);
    EXPECT_EQ(*g.get_f32_or("nope", 2.5f), 2.5f);
    expect_code(g.get_f32("s.bool").status(), StatusCode::kCorrupt);
    EXPECT_TRUE(*g.get_bool("s.bool"));
    expect_code(g.get_bool("s.u32").status(), StatusCode::kCorrupt);
    EXPECT_EQ(*g.get_str("s.str"), "abc");
    EXPECT_EQ(g.get_str("t.str_nul")->size(), 3u);
    expect_code(g.get_str("a.str").status(), StatusCode::kCorrupt);
    EXPECT_EQ(*g.get_str_array("s.str_array"), (std::vector<std::string>{"a", "bc"}));
    expect_code(g.get_str_array("a.i32").status(), StatusCode::kCorrupt);
    expect_code(g.get_str_array("s.str").status(), StatusCode::kCorrupt);
    EXPECT_EQ(*g.get_f32_array("s.f32_array"), (std::vector<float>{1.0f, -0.5f}));
    EXPECT_EQ(*g.get_f32_array("a.i32"), (std::vector<float>{-1.0f, 2.0f, float(INT32_MAX)}));
    expect_code(g.get_f32_array("a.str").status(), StatusCode::kCorrupt);
    EXPECT_EQ(*g.get_int_array("s.i32_array"), (std::vector<int64_t>{-3, 4}));
    EXPECT_EQ(*g.get_int_array("a.u32"), (std::vector<int64_t>{7, 4000000000}));
    expect_code(g.get_int_array("a.f32").status(), StatusCode::kCorrupt);
    expect_code(g.get_int_array("a.u64").status(), StatusCode::kCorrupt);  // 2^63 does not fit
    ASSERT_TRUE(g.get_f32_array("a.empty").ok());
    EXPECT_TRUE(g.get_f32_array("a.empty")->empty());
    ASSERT_NE(g.find("n.str3"), nullptr);
    EXPECT_EQ(g.find("n.str3")->arr[0].arr[0].arr[1].str, "er");
    EXPECT_EQ(g.find("missing"), nullptr);
}

// Bytes of tensor idx: a pattern that differs per tensor and per byte.
uint8_t pattern(size_t idx, size_t k) { return uint8_t(idx * 31 + k * 7 + (k >> 8)); }

TEST(GgufRoundTrip, AllTensorDTypes) {
    GgufWriter w;
    w.set_str("general.architecture", "test");
    struct Want { std::string name; DType type; std::vector<int64_t> dims; };
    std::vector<Want> want;
    for (uint32_t id = 0; id < 64; ++id) {
        const DTypeInfo* info = dtype_info(id);
        if (!info) continue;
        const int64_t bs = info->block_size;
        want.push_back({std::string("t.") + info->name, info->type, {bs * 3, 2}});
        want.push_back({std::string("v.") + info->name, info->type, {bs}});
    }
    want.push_back({"d3", DType::kF16, {5, 3, 2}});
    want.push_back({"d4", DType::kQ8_0, {64, 1, 2, 3}});
    want.push_back({"empty", DType::kF32, {0, 4}});
    for (const Want& t : want) ASSERT_TRUE(w.add_tensor(t.name, t.type, t.dims).ok()) << t.name;

    std::vector<size_t> seen;
    const std::string path = temp_path("tensors.gguf");
    Status st = w.write(path, [&](size_t idx, const std::string& name, std::span<uint8_t> out) {
        EXPECT_EQ(name, want[idx].name);
        seen.push_back(idx);
        for (size_t k = 0; k < out.size(); ++k) out[k] = pattern(idx, k);
        return Status();
    });
    ASSERT_TRUE(st.ok()) << st.to_string();
    ASSERT_EQ(seen.size(), want.size());
    for (size_t k = 0; k < seen.size(); ++k) EXPECT_EQ(seen[k], k);  // in declaration order

    auto f = GgufFile::open(path);
    ASSERT_TRUE(f.ok()) << f.status().to_string();
    const GgufFile& g = **f;
    ASSERT_EQ(g.tensors().size(), want.size());
    const uint8_t* base = g.tensors()[0].data - g.tensors()[0].offset;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(base) % 32, 0u);  // the mapping is page aligned
    for (size_t idx = 0; idx < want.size(); ++idx) {
        const GgufTensor& t = g.tensors()[idx];
        const Want& wt = want[idx];
        SCOPED_TRACE(wt.name);
        EXPECT_EQ(t.name, wt.name);
        EXPECT_EQ(&t, g.find_tensor(wt.name));
        EXPECT_EQ(t.type, wt.type);
        ASSERT_EQ(t.n_dims, int32_t(wt.dims.size()));
        int64_t rows = 1;
        for (int d = 0; d < 4; ++d) {
            const int64_t e = d < t.n_dims ? wt.dims[size_t(d)] : 1;
            EXPECT_EQ(t.ne[d], e);
            if (d > 0) rows *= e;
        }
        EXPECT_EQ(t.nbytes, dtype_row_size(wt.type, wt.dims[0]) * size_t(rows));
        EXPECT_EQ(t.offset % 32, 0u);
        EXPECT_EQ(t.data, base + t.offset);
        bool same = true;
        for (size_t k = 0; k < t.nbytes; ++k) same = same && t.data[k] == pattern(idx, k);
        EXPECT_TRUE(same);
    }
    EXPECT_EQ(g.find_tensor("nope"), nullptr);
}

TEST(GgufWriter, CustomAlignmentAndPadding) {
    GgufWriter w;
    w.set_u32("general.alignment", 64);
    ASSERT_TRUE(w.add_tensor("a", DType::kF32, {3}).ok());  // 12 bytes, then padding
    ASSERT_TRUE(w.add_tensor("b", DType::kF32, {5}).ok());
    const std::string path = temp_path("align.gguf");
    ASSERT_TRUE(w.write(path, [](size_t, const std::string&, std::span<uint8_t> out) {
        std::memset(out.data(), 0xAB, out.size());
        return Status();
    }).ok());
    auto f = GgufFile::open(path);
    ASSERT_TRUE(f.ok()) << f.status().to_string();
    EXPECT_EQ((*f)->alignment(), 64u);
    EXPECT_EQ((*f)->tensors()[1].offset, 64u);
    const GgufTensor& a = (*f)->tensors()[0];
    for (size_t k = a.nbytes; k < 64; ++k) EXPECT_EQ(a.data[k], 0) << "padding byte " << k;
    EXPECT_EQ(fs::file_size(path) % 64, 0u);
}

TEST(GgufWriter, RejectsBadInput) {
    GgufWriter w;
    expect_code(w.add_tensor("x", DType::kF32, {}), StatusCode::kInvalidArgument);
    expect_code(w.add_tensor("x", DType::kF32, {1, 1, 1, 1, 1}), StatusCode::kInvalidArgument);
    expect_code(w.add_tensor("x", DType::kF32, {4, -1}), StatusCode::kInvalidArgument);
    expect_code(w.add_tensor("x", DType::kQ4_0, {16}), StatusCode::kInvalidArgument);
    expect_code(w.add_tensor("x", DType(9999), {16}), StatusCode::kInvalidArgument);
    expect_code(w.add_tensor("x", DType::kHQ4, {32}), StatusCode::kInvalidArgument);  // not a GGML type
    expect_code(w.add_tensor("x", DType::kF32, {int64_t(1) << 40, int64_t(1) << 40}), StatusCode::kInvalidArgument);
    expect_code(w.add_tensor("", DType::kF32, {4}), StatusCode::kInvalidArgument);
    ASSERT_TRUE(w.add_tensor("x", DType::kF32, {4}).ok());
    expect_code(w.add_tensor("x", DType::kF32, {4}), StatusCode::kInvalidArgument);

    // A failing producer leaves neither the file nor the temp file behind.
    const std::string path = temp_path("fail.gguf");
    fs::remove(path);
    Status st = w.write(path, [](size_t, const std::string&, std::span<uint8_t>) {
        return Status::io_error("source went away");
    });
    expect_code(st, StatusCode::kIoError, "source went away");
    EXPECT_FALSE(fs::exists(path));
    EXPECT_FALSE(fs::exists(path + ".tmp"));

    GgufWriter bad_align;
    bad_align.set_u32("general.alignment", 24);
    expect_code(bad_align.write(path, nullptr), StatusCode::kInvalidArgument, "alignment");
    GgufWriter bad_array;
    bad_array.set_value("k", array(GgufType::kI32, {string("not an int")}));
    expect_code(bad_array.write(path, nullptr), StatusCode::kInvalidArgument, "'k'");
    EXPECT_FALSE(fs::exists(path));
}

TEST(GgufReader, OpenErrors) {
    expect_code(GgufFile::open(temp_path("does_not_exist.gguf")).status(), StatusCode::kNotFound);
    const std::string empty = temp_path("empty.gguf");
    std::ofstream(empty).close();
    expect_code(GgufFile::open(empty).status(), StatusCode::kCorrupt, "empty");
    expect_code(GgufFile::open(fs::temp_directory_path().string()).status(), StatusCode::kInvalidArgument,
                "not a regular file (a directory)");
}

const std::string kStories = std::string(HKV_SHARED_DIR) + "/models/stories260K.gguf";

TEST(GgufReader, Stories260K) {
    if (!fs::exists(kStories)) GTEST_SKIP() << "model not found: " << kStories;
    auto f = GgufFile::open(kStories);
    ASSERT_TRUE(f.ok()) << f.status().to_string();
    const GgufFile& g = **f;
    EXPECT_EQ(g.version(), 3u);
    EXPECT_EQ(*g.get_str("general.architecture"), "llama");
    EXPECT_EQ(*g.get_int("llama.block_count"), 5);
    EXPECT_EQ(*g.get_int("llama.embedding_length"), 64);
    EXPECT_EQ(*g.get_int("llama.attention.head_count_kv"), 4);
    EXPECT_FLOAT_EQ(*g.get_f32("llama.attention.layer_norm_rms_epsilon"), 1e-5f);
    EXPECT_EQ(g.metadata().size(), 19u);
    EXPECT_EQ(g.tensors().size(), 48u);  // 3 + 5 layers x 9
    const GgufTensor* emb = g.find_tensor("token_embd.weight");
    ASSERT_NE(emb, nullptr);
    EXPECT_EQ(emb->n_dims, 2);
    EXPECT_EQ(emb->ne[0], 64);   // d_model
    EXPECT_EQ(emb->ne[1], 512);  // n_vocab
    EXPECT_EQ(emb->type, DType::kF32);
    EXPECT_EQ(emb->nbytes, 64u * 512u * 4u);
    float first[64];
    std::memcpy(first, emb->data + 64 * 4, sizeof(first));  // row of token 1
    float norm = 0;
    for (float x : first) norm += x * x;
    EXPECT_TRUE(std::isfinite(norm) && norm > 0);
    const GgufTensor* down = g.find_tensor("blk.4.ffn_down.weight");
    ASSERT_NE(down, nullptr);
    EXPECT_EQ(down->ne[0], 172);
    EXPECT_EQ(down->ne[1], 64);
}

// Re-writing every key and tensor of the real file reproduces it byte for byte (its writer, gguf-py,
// uses the same layout: alignment 32, tensors in order, each padded).
TEST(GgufReader, Stories260KRewriteIsIdentical) {
    if (!fs::exists(kStories)) GTEST_SKIP() << "model not found: " << kStories;
    auto f = GgufFile::open(kStories);
    ASSERT_TRUE(f.ok()) << f.status().to_string();
    const GgufFile& g = **f;
    GgufWriter w;
    for (const auto& [key, v] : g.metadata()) w.set_value(key, v);
    for (const GgufTensor& t : g.tensors()) {
        ASSERT_TRUE(w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims)).ok());
    }
    const std::string path = temp_path("stories_copy.gguf");
    Status st = w.write(path, [&](size_t idx, const std::string&, std::span<uint8_t> out) {
        EXPECT_EQ(out.size(), g.tensors()[idx].nbytes);
        std::memcpy(out.data(), g.tensors()[idx].data, out.size());
        return Status();
    });
    ASSERT_TRUE(st.ok()) << st.to_string();
    EXPECT_TRUE(read_bytes(path) == read_bytes(kStories));
}

// --- hostile and truncated inputs ---

TEST(GgufCorrupt, ValidBaseParses) {
    EXPECT_TRUE(parse(base_file().b).ok()) << parse(base_file().b).to_string();
    EXPECT_TRUE(parse(base_file(2).b).ok()) << "v2 must be accepted";
}

TEST(GgufCorrupt, HeaderMagicAndVersion) {
    Raw r = base_file();
    r.b[0] = 'X';
    expect_code(parse(r.b), StatusCode::kCorrupt, "magic");
    expect_code(parse(base_file(1).b), StatusCode::kUnsupported, "version 1");
    expect_code(parse(base_file(4).b), StatusCode::kUnsupported, "version 4");
    expect_code(parse(base_file(0x03000000).b), StatusCode::kUnsupported, "big-endian");
    expect_code(parse({}), StatusCode::kCorrupt);
}

TEST(GgufCorrupt, AbsurdCounts) {
    Raw r;
    r.header(3, uint64_t(1) << 60, 1).kv_str("a", "b").pad().zeros(64);
    expect_code(parse(r.b), StatusCode::kCorrupt, "tensor count");
    r = Raw();
    r.header(3, 0, uint64_t(1) << 60).kv_str("a", "b").pad();
    expect_code(parse(r.b), StatusCode::kCorrupt, "kv count");
    r = Raw();
    r.header(3, UINT64_MAX, UINT64_MAX).kv_str("a", "b");
    expect_code(parse(r.b), StatusCode::kCorrupt);
}

TEST(GgufCorrupt, AbsurdStringLengths) {
    Raw r;
    r.header(3, 0, 1).u64(uint64_t(1) << 60).bytes("abc", 3).u32(4).u32(1).pad();  // key length
    expect_code(parse(r.b), StatusCode::kCorrupt, "length");
    r = Raw();
    r.header(3, 0, 1).str("k").u32(8).u64(uint64_t(1) << 60).bytes("abc", 3).pad();  // value length
    expect_code(parse(r.b), StatusCode::kCorrupt, "'k'");
    r = Raw();
    r.header(3, 1, 0).u64(UINT64_MAX).bytes("w", 1).u32(1).u64(8).u32(0).u64(0).pad().zeros(32);  // tensor name
    expect_code(parse(r.b), StatusCode::kCorrupt, "tensor #0 name");
}

TEST(GgufCorrupt, AbsurdArrayCounts) {
    for (uint32_t elem : {0u, 6u, 8u, 9u, 10u}) {  // u8, f32, string, array, u64
        Raw r;
        r.header(3, 0, 1).str("arr").u32(9).u32(elem).u64(uint64_t(1) << 50).zeros(64);
        expect_code(parse(r.b), StatusCode::kCorrupt, "'arr'");
    }
    // Just over the bytes present: 40 bytes can hold 40 u8 but not 11 u32.
    Raw r;
    r.header(3, 0, 1).str("arr").u32(9).u32(4).u64(11).zeros(40);
    expect_code(parse(r.b), StatusCode::kCorrupt, "needs at least 44 bytes");
    r = Raw();
    r.header(3, 0, 1).str("arr").u32(9).u32(0).u64(40).zeros(40);
    EXPECT_TRUE(parse(r.b).ok()) << parse(r.b).to_string();
}

// Each in-memory element costs ~100 bytes, so the total is capped (2^24) before anything is allocated.
TEST(GgufCorrupt, MetadataElementBudget) {
    const uint64_t n = (uint64_t(1) << 24) + 1;
    Raw r;
    r.header(3, 0, 1).str("big").u32(9).u32(0).u64(n).zeros(size_t(n));
    expect_code(parse(r.b), StatusCode::kUnsupported, "16777216");
}

TEST(GgufCorrupt, NestedArrayDepthBomb) {
    Raw r;
    r.header(3, 0, 1).str("bomb").u32(9);
    for (int d = 0; d < 100; ++d) r.u32(9).u64(1);  // array of array of ... (100 levels)
    r.u32(5).u64(0);
    expect_code(parse(r.b), StatusCode::kCorrupt, "nested");
    Raw ok;  // 8 levels are allowed
    ok.header(3, 0, 1).str("deep").u32(9);
    for (int d = 0; d < 7; ++d) ok.u32(9).u64(1);
    ok.u32(5).u64(1).u32(42);
    auto f = GgufFile::from_memory(ok.b.data(), ok.b.size());
    ASSERT_TRUE(f.ok()) << f.status().to_string();
    const GgufValue* v = (*f)->find("deep");
    for (int d = 0; d < 7; ++d) v = &v->arr.at(0);
    EXPECT_EQ(v->arr.at(0).i, 42);
}

TEST(GgufCorrupt, BadValueTypes) {
    Raw r;
    r.header(3, 0, 1).str("k").u32(13).u32(0);
    expect_code(parse(r.b), StatusCode::kCorrupt, "unknown value type 13");
    r = Raw();
    r.header(3, 0, 1).str("k").u32(9).u32(77).u64(0);
    expect_code(parse(r.b), StatusCode::kCorrupt, "element type 77");
}

TEST(GgufCorrupt, DuplicateKeyAndTensor) {
    Raw r;
    r.header(3, 0, 2).kv_u32("dup", 1).kv_u32("dup", 2).pad();
    expect_code(parse(r.b), StatusCode::kCorrupt, "duplicate key 'dup'");
    r = Raw();
    r.header(3, 2, 0).tensor("w", {8}, 0, 0).tensor("w", {8}, 0, 32).pad().zeros(64);
    expect_code(parse(r.b), StatusCode::kCorrupt, "duplicate tensor");
}

TEST(GgufCorrupt, Alignment) {
    for (uint32_t a : {0u, 3u, 48u}) {
        Raw r;
        r.header(3, 0, 1).kv_u32("general.alignment", a).pad();
        expect_code(parse(r.b), StatusCode::kCorrupt, "general.alignment");
    }
    Raw r;
    r.header(3, 0, 1).kv_str("general.alignment", "32").pad();
    expect_code(parse(r.b), StatusCode::kCorrupt, "general.alignment");
    r = Raw();  // alignment 16 honoured: offset 16 is fine
    r.header(3, 2, 1).kv_u32("general.alignment", 16).tensor("a", {4}, 0, 0).tensor("b", {4}, 0, 16).pad(16).zeros(32);
    auto f = GgufFile::from_memory(r.b.data(), r.b.size());
    ASSERT_TRUE(f.ok()) << f.status().to_string();
    EXPECT_EQ((*f)->alignment(), 16u);
}

TEST(GgufCorrupt, TensorDims) {
    auto one = [](std::vector<uint64_t> dims, uint32_t type = 0, size_t data = 320) {
        Raw r;
        r.header(3, 1, 0).tensor("blk.0.attn_q.weight", std::move(dims), type, 0).pad().zeros(data);
        return parse(r.b);
    };
    EXPECT_TRUE(one({8, 2}, 0, 64).ok());
    expect_code(one({}), StatusCode::kCorrupt, "n_dims 0");
    expect_code(one({1, 1, 1, 1, 1}), StatusCode::kCorrupt, "n_dims 5");
    expect_code(one({8, uint64_t(-1)}), StatusCode::kCorrupt, "negative");
    expect_code(one({uint64_t(1) << 32, uint64_t(1) << 32, uint64_t(1) << 32}), StatusCode::kCorrupt, "overflow");
    expect_code(one({uint64_t(1) << 62, 4}), StatusCode::kCorrupt, "'blk.0.attn_q.weight'");
    expect_code(one({uint64_t(1) << 61}, 28), StatusCode::kCorrupt);  // f64: bytes overflow
    expect_code(one({16}, 2), StatusCode::kCorrupt, "block size");    // q4_0 needs 32 | ne0
    expect_code(one({8, 2}, 9999), StatusCode::kUnsupported, "9999");
    expect_code(one({32}, 1020), StatusCode::kUnsupported, "unknown tensor type id 1020");  // hq4: KV rows only
    expect_code(one({8, 2}), StatusCode::kCorrupt, "256 bytes after the last tensor");
    expect_code(one({8, 2}, 9999), StatusCode::kUnsupported, "'blk.0.attn_q.weight' (#0)");
    EXPECT_TRUE(one({256}, 15).ok()) << "q8_K is known but not supported: still readable";
}

TEST(GgufCorrupt, TensorDataOffsets) {
    Raw r;
    r.header(3, 1, 0).tensor("w", {8}, 0, 4).pad().zeros(64);
    expect_code(parse(r.b), StatusCode::kCorrupt, "not a multiple of the alignment");
    r = Raw();  // 64 bytes of data declared, 32 present
    r.header(3, 1, 0).tensor("w", {8, 2}, 0, 0).pad().zeros(32);
    expect_code(parse(r.b), StatusCode::kCorrupt, "ends past end of file");
    r = Raw();
    r.header(3, 1, 0).tensor("w", {8}, 0, 64).pad().zeros(64);
    expect_code(parse(r.b), StatusCode::kCorrupt, "'w' (#0): data [offset 64, 32 bytes]");
    r = Raw();
    r.header(3, 1, 0).tensor("w", {8}, 0, UINT64_MAX - 31).pad().zeros(64);
    expect_code(parse(r.b), StatusCode::kCorrupt, "ends past end of file");
}

// Tensor data that does not match its description: issue 24's corrupted weights. Each case changes
// one field of a tensor info in a writer-made file (which lays the data out packed).
struct TensorInfoAt {
    size_t type_pos, offset_pos;
};
// Where tensor `name`'s type and offset fields are in a file (found by the name's encoding).
TensorInfoAt info_of(const std::vector<uint8_t>& bytes, const std::string& name, uint32_t n_dims) {
    Raw key;
    key.str(name).u32(n_dims);
    auto it = std::search(bytes.begin(), bytes.end(), key.b.begin(), key.b.end());
    EXPECT_NE(it, bytes.end()) << name;
    const size_t type_pos = size_t(it - bytes.begin()) + key.b.size() + 8 * n_dims;
    return {type_pos, type_pos + 4};
}

std::vector<uint8_t> packed_file(uint32_t block_count) {
    GgufWriter w;
    w.set_str("general.architecture", "llama");
    w.set_u32("llama.block_count", block_count);
    EXPECT_TRUE(w.add_tensor("blk.0.attn_norm.weight", DType::kF32, {64}).ok());
    EXPECT_TRUE(w.add_tensor("blk.0.attn_q.weight", DType::kF32, {64, 4}).ok());
    EXPECT_TRUE(w.add_tensor("blk.1.attn_norm.weight", DType::kF32, {64}).ok());
    EXPECT_TRUE(w.add_tensor("output_norm.weight", DType::kF32, {64}).ok());
    const std::string path = temp_path("packed.gguf");
    EXPECT_TRUE(w.write(path, [](size_t, const std::string&, std::span<uint8_t> out) {
        std::memset(out.data(), 0, out.size());
        return Status();
    }).ok());
    return read_bytes(path);
}

TEST(GgufCorrupt, TensorTypeOffsetAndBlockCountMismatches) {
    const std::vector<uint8_t> good = packed_file(2);
    ASSERT_TRUE(parse(good).ok()) << parse(good).to_string();
    {  // f32 -> f16 (type id 1): the tensor is half as long as its space
        auto b = good;
        const TensorInfoAt at = info_of(b, "blk.0.attn_q.weight", 2);
        b[at.type_pos] = 1;
        expect_code(parse(b), StatusCode::kCorrupt, "unused bytes between tensor 'blk.0.attn_q.weight' (f16");
    }
    {  // the same flip on the last tensor in the file
        auto b = good;
        b[info_of(b, "output_norm.weight", 1).type_pos] = 1;
        expect_code(parse(b), StatusCode::kCorrupt, "after the last tensor 'output_norm.weight'");
    }
    {  // f32 -> f64 (type id 28): twice as long, runs into the next tensor
        auto b = good;
        b[info_of(b, "blk.0.attn_norm.weight", 1).type_pos] = 28;
        expect_code(parse(b), StatusCode::kCorrupt, "overlap");
    }
    for (int64_t delta : {256, -256, 32}) {  // an offset moved: overlap or gap
        auto b = good;
        const TensorInfoAt at = info_of(b, "blk.1.attn_norm.weight", 1);
        uint64_t off = 0;
        std::memcpy(&off, &b[at.offset_pos], 8);
        off = uint64_t(int64_t(off) + delta);
        std::memcpy(&b[at.offset_pos], &off, 8);
        const Status st = parse(b);
        EXPECT_EQ(st.code(), StatusCode::kCorrupt) << "offset moved by " << delta << ": " << st.to_string();
    }
    // block_count lowered with block 1's tensors still there
    expect_code(parse(packed_file(1)), StatusCode::kCorrupt,
                "tensor 'blk.1.attn_norm.weight' belongs to block 1 but llama.block_count is 1");
    EXPECT_TRUE(parse(packed_file(3)).ok());  // a missing block is the model loader's error, not the reader's
}

// A writer-made file with arrays, nested arrays and two tensors.
std::vector<uint8_t> small_valid_file() {
    GgufWriter w;
    w.set_str("general.architecture", "llama");
    w.set_u32("llama.block_count", 2);
    w.set_str_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "a"});
    w.set_f32_array("tokenizer.ggml.scores", {0.f, -1.f, -2.f});
    w.set_value("n", array(GgufType::kArray, {array(GgufType::kU16, {scalar_u(GgufType::kU16, 9)})}));
    w.set_bool("flag", true);
    EXPECT_TRUE(w.add_tensor("a", DType::kF32, {4, 3}).ok());
    EXPECT_TRUE(w.add_tensor("b", DType::kQ8_0, {32, 2}).ok());
    const std::string path = temp_path("small.gguf");
    EXPECT_TRUE(w.write(path, [](size_t idx, const std::string&, std::span<uint8_t> out) {
        for (size_t k = 0; k < out.size(); ++k) out[k] = pattern(idx, k);
        return Status();
    }).ok());
    return read_bytes(path);
}

TEST(GgufCorrupt, EveryTruncation) {
    const std::vector<uint8_t> bytes = small_valid_file();
    auto full = GgufFile::from_memory(bytes.data(), bytes.size());
    ASSERT_TRUE(full.ok()) << full.status().to_string();
    const GgufTensor& a = (*full)->tensors()[0];
    const GgufTensor& b = (*full)->tensors()[1];
    const size_t data_start = size_t(a.data - bytes.data());
    const size_t data_end = size_t(b.data - bytes.data()) + b.nbytes;
    ASSERT_GT(data_start, 100u);
    for (size_t n = 0; n < data_start; ++n) {  // every byte of header, kv and tensor infos
        Status st = parse_prefix(bytes, n);
        EXPECT_EQ(st.code(), StatusCode::kCorrupt) << "prefix " << n << ": " << st.to_string();
    }
    for (size_t n : {data_start, data_start + 1, data_start + a.nbytes, size_t(b.data - bytes.data()) + 1,
                     data_end - 1}) {
        Status st = parse_prefix(bytes, n);
        EXPECT_EQ(st.code(), StatusCode::kCorrupt) << "prefix " << n << ": " << st.to_string();
        EXPECT_NE(st.message().find("ends past end of file"), std::string::npos) << st.message();
    }
    for (size_t n = data_end; n <= bytes.size(); ++n) {  // only trailing padding missing: fine
        EXPECT_TRUE(parse_prefix(bytes, n).ok()) << "prefix " << n;
    }
}

TEST(GgufCorrupt, RandomByteFlipsNeverCrash) {
    const std::vector<uint8_t> bytes = small_valid_file();
    auto full = GgufFile::from_memory(bytes.data(), bytes.size());
    ASSERT_TRUE(full.ok());
    const size_t meta_end = size_t((*full)->tensors()[0].data - bytes.data());
    std::mt19937 rng(1234);
    int n_ok = 0, n_err = 0;
    for (int it = 0; it < 3000; ++it) {
        std::vector<uint8_t> m = bytes;
        const int n_flip = 1 + int(rng() % 4);
        for (int k = 0; k < n_flip; ++k) m[rng() % meta_end] = uint8_t(rng());
        Status st = parse(m);
        (st.ok() ? n_ok : n_err)++;
        if (!st.ok()) {
            EXPECT_NE(st.code(), StatusCode::kInternal) << st.to_string();
            EXPECT_NE(st.code(), StatusCode::kOutOfMemory) << st.to_string();
        }
    }
    EXPECT_GT(n_err, 1000);  // most mutations of the structure must be caught
}

// --- tokenizer metadata ---

TokenizerData sample_vocab() {
    TokenizerData d;
    d.model = "gpt2";
    d.pre = "qwen2";
    d.tokens = {"<|endoftext|>", "<|im_end|>", "a", "b", "ab", "\xc4\xa0"};
    d.token_type = {3, 3, 1, 1, 1, 1};
    d.merges = {"a b", "\xc4\xa0 a"};
    d.bos_id = 0;
    d.eos_id = 0;
    d.eot_id = 1;
    d.pad_id = 5;
    d.add_bos = false;
    d.add_eos = true;
    d.add_space_prefix = false;
    d.chat_template = "{% for m in messages %}{{ m.content }}{% endfor %}";
    return d;
}

Expected<TokenizerData> vocab_round_trip(const TokenizerData& d, const std::function<void(GgufWriter&)>& edit = {}) {
    GgufWriter w;
    tokenizer_data_to_gguf(d, w);
    if (edit) edit(w);
    const std::string path = temp_path("vocab.gguf");
    HKV_TRY(w.write(path, nullptr));
    HKV_ASSIGN_OR_RETURN(auto f, GgufFile::open(path));
    return tokenizer_data_from_gguf(*f);
}

TEST(VocabGguf, RoundTrip) {
    const TokenizerData d = sample_vocab();
    auto r = vocab_round_trip(d);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->model, d.model);
    EXPECT_EQ(r->pre, d.pre);
    EXPECT_EQ(r->tokens, d.tokens);
    EXPECT_TRUE(r->scores.empty());
    EXPECT_EQ(r->token_type, d.token_type);
    EXPECT_EQ(r->merges, d.merges);
    EXPECT_EQ(r->bos_id, 0);
    EXPECT_EQ(r->eos_id, 0);
    EXPECT_EQ(r->eot_id, 1);
    EXPECT_EQ(r->pad_id, 5);
    EXPECT_EQ(r->unk_id, -1);
    EXPECT_FALSE(r->add_bos);
    EXPECT_TRUE(r->add_eos);
    EXPECT_FALSE(r->add_space_prefix);
    EXPECT_EQ(r->chat_template, d.chat_template);

    TokenizerData spm;
    spm.model = "llama";
    spm.tokens = {"<unk>", "<s>", "</s>", "\xe2\x96\x81" "a"};
    spm.scores = {0.f, 0.f, 0.f, -1.25f};
    spm.bos_id = 1;
    spm.add_bos = true;
    auto r2 = vocab_round_trip(spm);
    ASSERT_TRUE(r2.ok()) << r2.status().to_string();
    EXPECT_EQ(r2->scores, spm.scores);
    EXPECT_TRUE(r2->token_type.empty());
    EXPECT_TRUE(r2->merges.empty());
    EXPECT_TRUE(r2->add_bos);
    EXPECT_TRUE(r2->add_space_prefix);
    EXPECT_EQ(r2->bos_id, 1);
    EXPECT_EQ(r2->eos_id, -1);
}

TEST(VocabGguf, Errors) {
    const TokenizerData d = sample_vocab();
    auto edit = [&](std::function<void(GgufWriter&)> fn) { return vocab_round_trip(d, fn).status(); };
    expect_code(edit([](GgufWriter& w) { w.set_f32_array("tokenizer.ggml.scores", {1.f}); }), StatusCode::kCorrupt,
                "scores");
    expect_code(edit([](GgufWriter& w) { w.set_i32_array("tokenizer.ggml.token_type", {1, 1}); }),
                StatusCode::kCorrupt, "token_type");
    expect_code(edit([](GgufWriter& w) { w.set_u32("tokenizer.ggml.eos_token_id", 6); }), StatusCode::kCorrupt,
                "eos_token_id");
    expect_code(edit([](GgufWriter& w) { w.set_i32("tokenizer.ggml.bos_token_id", -2); }), StatusCode::kCorrupt,
                "bos_token_id");
    expect_code(edit([](GgufWriter& w) { w.set_str("tokenizer.ggml.bos_token_id", "0"); }), StatusCode::kCorrupt);
    expect_code(edit([](GgufWriter& w) { w.set_u32("tokenizer.ggml.tokens", 3); }), StatusCode::kCorrupt, "tokens");
    expect_code(edit([](GgufWriter& w) { w.set_u32("tokenizer.ggml.add_bos_token", 1); }), StatusCode::kCorrupt);
    // -1 and the unsigned sentinel both mean "no such token".
    auto r = vocab_round_trip(d, [](GgufWriter& w) {
        w.set_i32("tokenizer.ggml.unknown_token_id", -1);
        w.set_u32("tokenizer.ggml.padding_token_id", 0xFFFFFFFFu);
    });
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->unk_id, -1);
    EXPECT_EQ(r->pad_id, -1);

    GgufWriter none;
    none.set_str("general.architecture", "llama");
    const std::string path = temp_path("novocab.gguf");
    ASSERT_TRUE(none.write(path, nullptr).ok());
    auto f = GgufFile::open(path);
    ASSERT_TRUE(f.ok());
    expect_code(tokenizer_data_from_gguf(**f).status(), StatusCode::kNotFound, "tokenizer.ggml.tokens");
}

TEST(VocabGguf, Stories260K) {
    if (!fs::exists(kStories)) GTEST_SKIP() << "model not found: " << kStories;
    auto f = GgufFile::open(kStories);
    ASSERT_TRUE(f.ok()) << f.status().to_string();
    auto d = tokenizer_data_from_gguf(**f);
    ASSERT_TRUE(d.ok()) << d.status().to_string();
    EXPECT_EQ(d->model, "llama");
    ASSERT_EQ(d->tokens.size(), 512u);
    EXPECT_EQ(d->tokens[0], "<unk>");
    EXPECT_EQ(d->tokens[1], "<s>");
    EXPECT_EQ(d->tokens[2], "</s>");
    EXPECT_EQ(d->tokens[3], "<0x00>");
    EXPECT_EQ(d->scores.size(), 512u);
    ASSERT_EQ(d->token_type.size(), 512u);
    EXPECT_EQ(d->token_type[0], int32_t(TokenAttr::kUnknown));
    EXPECT_EQ(d->token_type[1], int32_t(TokenAttr::kControl));
    EXPECT_EQ(d->token_type[3], int32_t(TokenAttr::kByte));
    EXPECT_EQ(d->bos_id, 1);
    EXPECT_EQ(d->eos_id, 2);
    EXPECT_EQ(d->unk_id, 0);
    EXPECT_EQ(d->pad_id, -1);  // stored as u32 0xFFFFFFFF
    EXPECT_TRUE(d->add_bos);   // SPM default: the key is absent
    EXPECT_TRUE(d->merges.empty());
}

}  // namespace
}  // namespace hkv
