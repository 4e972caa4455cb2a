// kv/kv_state.cpp — KvStore's part of saved contexts (engine/context_state.cpp): raw rows of a
// head in and out, pending refreshes applied, the cold tier's rows in and out (see kv_store.h).
#include <cstring>
#include <new>

#include "kv/cold_tier.h"
#include "kv/kv_store.h"

namespace hkv {

Status KvStore::import_head(int32_t il, int32_t ih, int32_t n, const void* k, const void* v, const int32_t* pos,
                            const float* score, bool fine) {
    if (il < 0 || il >= cfg_.n_layer || ih < 0 || ih >= cfg_.n_head_kv || n < 0) {
        return Status::invalid("kv: import of %d slots into head (%d, %d) outside the cache", n, il, ih);
    }
    Head& h = head(il, ih);
    if (!h.pos.empty()) return Status::invalid("kv: import into head (%d, %d), which holds slots", il, ih);
    for (int32_t i = 0; i < n; ++i) {
        if (pos[i] < 0 || (i > 0 && pos[i] <= pos[i - 1])) {
            return Status::invalid("kv: imported positions of head (%d, %d) are not ascending (slot %d: %d)", il, ih, i,
                                   pos[i]);
        }
        if (!h.pos.fits(pos[i])) return lane_error(il, ih, pos[i]);
    }
    ++epoch_;
    h.fine = fine && granule() > 0;
    if (n == 0) return Status();
    const int32_t ps = cfg_.page_size;
    const size_t pages_need = size_t((int64_t(n) + ps - 1) / ps);
    const int32_t cap_last = h.fine ? fine_cap(int32_t(int64_t(n) - int64_t(pages_need - 1) * ps)) : ps;
    HKV_TRY(check_limit(h, pages_need, cap_last, n));
    try {
        h.pos.assign(pos, size_t(n));
        if (cfg_.score_lane) {
            if (score) h.score.assign(score, score + n);
            else h.score.assign(size_t(n), 0.0f);
        }
        h.k_pages.reserve(pages_need);
        h.v_pages.reserve(pages_need);
    } catch (const std::bad_alloc&) {
        h.pos.clear();
        h.score.clear();
        return Status::out_of_memory("kv: out of memory importing head (%d, %d)", il, ih);
    }
    for (size_t i = 0; i < pages_need; ++i) {
        const int32_t cap = i + 1 == pages_need ? cap_last : ps;
        void* pp = page_alloc(h, cap);
        if (!pp) {
            while (!h.k_pages.empty()) release_last(h);
            h.pos.clear();
            h.score.clear();
            return Status::out_of_memory("kv: out of memory allocating a page");
        }
        push_pair(h, pp, cap);
    }
    const auto* kb = static_cast<const uint8_t*>(k);
    const auto* vb = static_cast<const uint8_t*>(v);
    const size_t kr = cls(h).k_row, vr = cls(h).v_row;
    for (int32_t s = 0; s < n; ++s) {
        std::memcpy(k_ptr(h, s), kb + size_t(s) * kr, kr);
        std::memcpy(v_ptr(h, s), vb + size_t(s) * vr, vr);
    }
    slots_ += n;
    return Status();
}

Status KvStore::apply_all_pending() {
    for (int32_t il = 0; il < cfg_.n_layer; ++il) HKV_TRY(apply_pending(il));
    return Status();
}

Status KvStore::cold_export(int32_t il, int32_t ih, std::vector<uint8_t>* k, std::vector<uint8_t>* v,
                            std::vector<int32_t>* pos) const {
    const int32_t n = cold_rows(il, ih);
    try {
        k->resize(size_t(n) * k_row_bytes(il, ih));
        v->resize(size_t(n) * v_row_bytes(il, ih));
        pos->resize(size_t(n));
        if (n == 0) return Status();
        std::vector<int32_t> idx(static_cast<size_t>(n));
        for (int32_t i = 0; i < n; ++i) idx[size_t(i)] = i;
        return cold_->gather(il, ih, idx.data(), n, k->data(), v->data(), pos->data());
    } catch (const std::bad_alloc&) {
        return Status::out_of_memory("kv: out of memory reading the cold tier of head (%d, %d)", il, ih);
    }
}

Status KvStore::cold_import(int32_t il, int32_t ih, int32_t n, const void* k, const void* v, const int32_t* pos) {
    if (il < 0 || il >= cfg_.n_layer || ih < 0 || ih >= cfg_.n_head_kv || n < 0) {
        return Status::invalid("kv: cold import of %d rows into head (%d, %d) outside the cache", n, il, ih);
    }
    if (n == 0) return Status();
    const int32_t rows = cold_rows(il, ih);
    for (int32_t i = 0; i < n; ++i) {
        if (pos[i] != rows + i) {
            return Status::invalid("kv: cold row %d of head (%d, %d) holds position %d, not %d", rows + i, il, ih,
                                   pos[i], rows + i);
        }
    }
    HKV_TRY(cold_ensure());
    return cold_->append(il, ih, n, k, v, pos);
}

}  // namespace hkv
