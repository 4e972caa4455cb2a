// heterokv/types.h — small value types of the public API.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <span>
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

// The token positions of a KV head's slots, [size()] (KvHeadView::pos, LayerView::pos). The cache
// keeps them in a 16-bit lane when the context's n_ctx <= 65536 (every position then fits a
// uint16: 2 bytes a slot instead of 4), else in int32; p[i], iteration and std algorithms read
// either as int32_t. A view: valid as long as the array it points to.
class PosLane {
public:
    class iterator {  // random access; *it is an int32_t value
    public:
        using iterator_category = std::random_access_iterator_tag;
        using value_type = int32_t;
        using difference_type = std::ptrdiff_t;
        using pointer = void;
        using reference = int32_t;
        iterator() = default;
        iterator(const void* p, bool narrow, std::ptrdiff_t i) : p_(p), narrow_(narrow), i_(i) {}
        int32_t operator*() const { return (*this)[0]; }
        int32_t operator[](std::ptrdiff_t d) const {
            return narrow_ ? int32_t(static_cast<const uint16_t*>(p_)[i_ + d]) : static_cast<const int32_t*>(p_)[i_ + d];
        }
        iterator& operator++() { return ++i_, *this; }
        iterator& operator--() { return --i_, *this; }
        iterator operator++(int) { iterator t = *this; ++i_; return t; }
        iterator operator--(int) { iterator t = *this; --i_; return t; }
        iterator& operator+=(std::ptrdiff_t d) { return i_ += d, *this; }
        iterator& operator-=(std::ptrdiff_t d) { return i_ -= d, *this; }
        friend iterator operator+(iterator a, std::ptrdiff_t d) { return a += d; }
        friend iterator operator+(std::ptrdiff_t d, iterator a) { return a += d; }
        friend iterator operator-(iterator a, std::ptrdiff_t d) { return a -= d; }
        friend std::ptrdiff_t operator-(const iterator& a, const iterator& b) { return a.i_ - b.i_; }
        friend bool operator==(const iterator& a, const iterator& b) { return a.i_ == b.i_; }
        friend auto operator<=>(const iterator& a, const iterator& b) { return a.i_ <=> b.i_; }

    private:
        const void* p_ = nullptr;
        bool narrow_ = false;
        std::ptrdiff_t i_ = 0;
    };

    PosLane() = default;
    PosLane(const int32_t* p, size_t n) : p_(p), n_(n) {}
    PosLane(const uint16_t* p, size_t n) : p_(p), n_(n), narrow_(true) {}
    PosLane(std::span<const int32_t> s) : p_(s.data()), n_(s.size()) {}  // NOLINT: implicit, as a span

    size_t size() const { return n_; }
    bool empty() const { return n_ == 0; }
    // Whether the lane is 16-bit (data16()) rather than int32 (data32()).
    bool narrow() const { return narrow_; }
    const int32_t* data32() const { return narrow_ ? nullptr : static_cast<const int32_t*>(p_); }
    const uint16_t* data16() const { return narrow_ ? static_cast<const uint16_t*>(p_) : nullptr; }
    int32_t operator[](size_t i) const {
        return narrow_ ? int32_t(static_cast<const uint16_t*>(p_)[i]) : static_cast<const int32_t*>(p_)[i];
    }
    int32_t front() const { return (*this)[0]; }
    int32_t back() const { return (*this)[n_ - 1]; }
    iterator begin() const { return iterator(p_, narrow_, 0); }
    iterator end() const { return iterator(p_, narrow_, std::ptrdiff_t(n_)); }
    // Positions [s0, s0 + n) as int32_t: the lane itself when it is int32, else widened into buf[n]
    // (for loops that want a plain array).
    const int32_t* rows(size_t s0, size_t n, int32_t* buf) const {
        if (!narrow_) return static_cast<const int32_t*>(p_) + s0;
        copy(s0, n, buf);
        return buf;
    }
    // out[0, n) = positions [s0, s0 + n).
    void copy(size_t s0, size_t n, int32_t* out) const {
        if (narrow_) {
            const uint16_t* p = static_cast<const uint16_t*>(p_) + s0;
            for (size_t i = 0; i < n; ++i) out[i] = int32_t(p[i]);
        } else {
            const int32_t* p = static_cast<const int32_t*>(p_) + s0;
            for (size_t i = 0; i < n; ++i) out[i] = p[i];
        }
    }

private:
    const void* p_ = nullptr;
    size_t n_ = 0;
    bool narrow_ = false;
};

}  // namespace hkv
