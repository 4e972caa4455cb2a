// core/bytes.h — little-endian byte strings for saved state (engine/context_state.cpp, policies'
// Policy::state): ByteWriter appends to a std::string, ByteReader reads a string_view
// and checks every length against what is left before it copies or allocates anything, so a
// hostile count is an error, never an allocation of its size. Readers fail once and stay failed
// (ok() false); callers check ok() after a group of reads.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace hkv {

class ByteWriter {
public:
    explicit ByteWriter(std::string* out) : out_(out) {}
    template <typename T>
    void put(T v) {
        static_assert(std::is_trivially_copyable_v<T>);
        out_->append(reinterpret_cast<const char*>(&v), sizeof v);
    }
    void bytes(const void* p, size_t n) { out_->append(static_cast<const char*>(p), n); }
    // [u64 count][count T]
    template <typename T>
    void vec(const std::vector<T>& v) {
        put<uint64_t>(v.size());
        bytes(v.data(), v.size() * sizeof(T));
    }
    // [u64 count] then vec() of each inner vector
    template <typename T>
    void vecs(const std::vector<std::vector<T>>& v) {
        put<uint64_t>(v.size());
        for (const auto& x : v) vec(x);
    }

private:
    std::string* out_;
};

class ByteReader {
public:
    explicit ByteReader(std::string_view in) : in_(in) {}
    bool ok() const { return ok_; }
    size_t left() const { return in_.size() - at_; }
    bool done() const { return ok_ && at_ == in_.size(); }
    template <typename T>
    T get() {
        T v{};
        bytes(&v, sizeof v);
        return v;
    }
    bool bytes(void* p, size_t n) {
        if (!ok_ || n > left()) return fail();
        if (n > 0) std::memcpy(p, in_.data() + at_, n);  // p is null for an empty vector's data()
        at_ += n;
        return true;
    }
    // A vector written by ByteWriter::vec of at most max_count elements.
    template <typename T>
    bool vec(std::vector<T>& v, uint64_t max_count) {
        const uint64_t n = get<uint64_t>();
        if (!ok_ || n > max_count || n > left() / sizeof(T)) return fail();
        v.resize(size_t(n));
        return bytes(v.data(), size_t(n) * sizeof(T));
    }
    // ByteWriter::vecs: at most max_outer vectors of at most max_inner elements each.
    template <typename T>
    bool vecs(std::vector<std::vector<T>>& v, uint64_t max_outer, uint64_t max_inner) {
        const uint64_t n = get<uint64_t>();
        if (!ok_ || n > max_outer || n > left() / sizeof(uint64_t)) return fail();
        v.assign(size_t(n), {});
        for (auto& x : v) {
            if (!vec(x, max_inner)) return false;
        }
        return true;
    }

private:
    bool fail() {
        ok_ = false;
        return false;
    }
    std::string_view in_;
    size_t at_ = 0;
    bool ok_ = true;
};

}  // namespace hkv
