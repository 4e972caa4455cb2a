// kv/pos_vec.h — one KV head's position lane: [n] token positions, stored as uint16 when the
// store's positions are all < 65536 (KvStoreConfig::n_ctx <= 65536: 2 bytes a slot), else as int32.
// Only one of the two vectors is ever used, so a narrow lane really holds 2 bytes a slot. Values
// written must fit (fits()); the store checks them at its entry points, never wraps them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "heterokv/types.h"

namespace hkv {

class PosVec {
public:
    static constexpr int32_t kNarrowMax = 65535;  // the largest position a 16-bit lane holds

    // Chooses the width; only while the lane is empty.
    void set_narrow(bool narrow) { narrow_ = narrow; }
    bool narrow() const { return narrow_; }
    // Bytes per slot: 2 or 4.
    size_t width() const { return narrow_ ? sizeof(uint16_t) : sizeof(int32_t); }
    bool fits(int64_t p) const { return !narrow_ || (p >= 0 && p <= kNarrowMax); }

    size_t size() const { return narrow_ ? p16_.size() : p32_.size(); }
    bool empty() const { return size() == 0; }
    int32_t operator[](size_t i) const { return narrow_ ? int32_t(p16_[i]) : p32_[i]; }
    void set(size_t i, int32_t p) {
        if (narrow_) {
            p16_[i] = uint16_t(p);
        } else {
            p32_[i] = p;
        }
    }
    void push_back(int32_t p) {
        if (narrow_) {
            p16_.push_back(uint16_t(p));
        } else {
            p32_.push_back(p);
        }
    }
    // Room for `need` slots, growing geometrically (an exact reserve per decode step would copy
    // the lane every token). May throw std::bad_alloc.
    void grow(size_t need) {
        auto g = [need](auto& v) {
            if (v.capacity() < need) v.reserve(std::max(need, 2 * v.capacity()));
        };
        narrow_ ? g(p16_) : g(p32_);
    }
    void assign(const int32_t* p, size_t n) {
        if (narrow_) {
            p16_.resize(n);
            for (size_t i = 0; i < n; ++i) p16_[i] = uint16_t(p[i]);
        } else {
            p32_.assign(p, p + n);
        }
    }
    // Keeps the first n slots and gives the rest of the memory back.
    void truncate(size_t n) {
        auto t = [n](auto& v) {
            v.resize(n);
            v.shrink_to_fit();
        };
        narrow_ ? t(p16_) : t(p32_);
    }
    // Drops the first n slots.
    void erase_front(size_t n) {
        auto e = [n](auto& v) { v.erase(v.begin(), v.begin() + long(n)); };
        narrow_ ? e(p16_) : e(p32_);
    }
    void clear() {
        p16_.clear();
        p32_.clear();
    }
    PosLane lane() const { return narrow_ ? PosLane(p16_.data(), p16_.size()) : PosLane(p32_.data(), p32_.size()); }

private:
    bool narrow_ = false;
    std::vector<uint16_t> p16_;  // [n] when narrow_
    std::vector<int32_t> p32_;   // [n] otherwise
};

}  // namespace hkv
