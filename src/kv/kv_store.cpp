#include "kv/kv_store.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include "heterokv/types.h"
#include "kv/cold_tier.h"

namespace hkv {

Expected<std::unique_ptr<KvStore>> KvStore::create(const KvStoreConfig& cfg) {
    HKV_TRY(validate(cfg));
    return std::unique_ptr<KvStore>(new KvStore(cfg));
}

Status KvStore::validate(const KvStoreConfig& cfg) {
    if (cfg.n_layer <= 0 || cfg.n_head_kv <= 0 || cfg.head_dim <= 0) {
        return Status::invalid("kv: n_layer, n_head_kv and head_dim must be > 0");
    }
    if (cfg.page_size <= 0 || cfg.page_size > (1 << 16)) {
        return Status::invalid("kv: page size %d not in [1, 65536]", cfg.page_size);
    }
    const size_t n_heads = size_t(cfg.n_layer) * size_t(cfg.n_head_kv);
    if (!cfg.head_types.empty() && cfg.head_types.size() != n_heads) {
        return Status::invalid("kv: %zu per-head types for %zu heads", cfg.head_types.size(), n_heads);
    }
    std::vector<DType> types = {cfg.k_type, cfg.v_type};
    for (const KvRowTypes& t : cfg.head_types) types.push_back(t.k), types.push_back(t.v);
    for (DType t : types) {
        if (t != DType::kF16 && t != DType::kBF16 && t != DType::kF32 && t != DType::kQ8_0 && t != DType::kQ4_0 &&
            t != DType::kHQ4) {
            return Status::unsupported("kv: cache type %s is not supported (f16, bf16, f32, q8_0, q4_0, hq4)",
                                       dtype_name(t));
        }
        HKV_TRY(kv_type_check(KvType(uint32_t(t)), cfg.head_dim, "kv"));
    }
    if (cfg.max_bytes < 0) return Status::invalid("kv: max_bytes < 0");
    if (cfg.n_ctx < 0) return Status::invalid("kv: n_ctx %d < 0", cfg.n_ctx);
    return Status();
}

size_t KvStore::page_cost(const KvStoreConfig& cfg, int32_t il, int32_t ih) {
    const size_t lane = pos_bytes(cfg) + (cfg.score_lane ? sizeof(float) : 0);
    const KvRowTypes t = cfg.types(il, ih);
    return size_t(cfg.page_size) * (dtype_row_size(t.k, cfg.head_dim) + dtype_row_size(t.v, cfg.head_dim) + lane);
}

size_t KvStore::page_cost(const KvStoreConfig& cfg) {
    size_t most = 0;
    for (int32_t il = 0; il < cfg.n_layer; ++il) {
        for (int32_t ih = 0; ih < cfg.n_head_kv; ++ih) most = std::max(most, page_cost(cfg, il, ih));
    }
    return most;
}

KvStore::KvStore(const KvStoreConfig& cfg) : cfg_(cfg) {
    lane_bytes_ = pos_bytes(cfg) + (cfg.score_lane ? sizeof(float) : 0);
    heads_.resize(size_t(cfg.n_layer) * size_t(cfg.n_head_kv));
    for (Head& h : heads_) h.pos.set_narrow(pos_bytes(cfg) == sizeof(uint16_t));
    for (int32_t il = 0; il < cfg.n_layer; ++il) {
        for (int32_t ih = 0; ih < cfg.n_head_kv; ++ih) {
            const KvRowTypes t = cfg.types(il, ih);
            size_t c = 0;
            while (c < classes_.size() && !(classes_[c].t == t)) ++c;
            if (c == classes_.size()) {
                TypeClass tc;
                tc.t = t;
                tc.k_row = dtype_row_size(t.k, cfg.head_dim);
                tc.v_row = dtype_row_size(t.v, cfg.head_dim);
                tc.pair = (tc.k_row + tc.v_row) * size_t(cfg.page_size);
                classes_.push_back(std::move(tc));
            }
            head(il, ih).cls = int32_t(c);
        }
    }
    pending_.resize(size_t(cfg.n_layer));
}

KvStore::~KvStore() {
    clear();
    trim();
}

Status KvStore::apply(int32_t il, const LayerPlan& plan) {
    if (il < 0 || il >= cfg_.n_layer) return Status::invalid("kv: plan for layer %d outside the cache", il);
    for (const ColdOp& op : plan.cold) {
        if (op.kind == ColdOpKind::kSpill) HKV_TRY(cold_spill(il, op.head));
    }
    for (const RowWrite& w : plan.writes) {
        if (!w.k || !w.v) return Status::invalid("kv: a row write to head %d slot %d without data", w.head, w.slot);
        HKV_TRY(write_row(il, w.head, w.slot, w.k, w.v));
        if (cfg_.score_lane && !std::isnan(w.score)) head(il, w.head).score[size_t(w.slot)] = w.score;
    }
    for (int32_t ih = 0; ih < cfg_.n_head_kv && ih < int32_t(plan.n_keep.size()); ++ih) {
        const int32_t k = plan.n_keep[size_t(ih)];
        if (k < 0 || k == n_slot(il, ih)) continue;
        if (size_t(ih + 1) * size_t(plan.stride) > plan.keep.size() || k > plan.stride) {
            return Status::invalid("kv: plan keeps %d slots of head %d in rows of %d", k, ih, plan.stride);
        }
        HKV_TRY(compact(il, ih, plan.keep.data() + size_t(ih) * size_t(plan.stride), k));
    }
    return cold_submit(il, plan);
}

void* KvStore::page_get(TypeClass& c) {
    if (!c.free.empty()) {
        void* p = c.free.back();
        c.free.pop_back();
        return p;
    }
    const size_t align = 64;
    void* p = std::aligned_alloc(align, (c.pair + align - 1) / align * align);
    if (p) ++c.allocated;
    return p;
}

uint8_t* KvStore::slot_ptr(const std::vector<void*>& pages, int64_t s, size_t row_bytes) const {
    return static_cast<uint8_t*>(pages[size_t(s / cfg_.page_size)]) + size_t(s % cfg_.page_size) * row_bytes;
}

void KvStore::push_pair(Head& h, void* p, int32_t cap) {
    h.k_pages.push_back(p);
    h.v_pages.push_back(static_cast<uint8_t*>(p) + size_t(cap) * cls(h).k_row);
    h.last_cap = cap;
}

int32_t KvStore::granule() const {
    return cfg_.tail_granule > 0 && cfg_.tail_granule < cfg_.page_size ? cfg_.tail_granule : 0;
}

int32_t KvStore::fine_cap(int32_t rows) const {
    const int32_t g = granule();
    return g > 0 ? std::min(cfg_.page_size, (rows + g - 1) / g * g) : cfg_.page_size;
}

void* KvStore::page_alloc(const Head& h, int32_t cap) {
    TypeClass& c = classes_[size_t(h.cls)];
    if (cap == cfg_.page_size) return page_get(c);
    const size_t align = 64, bytes = size_t(cap) * (c.k_row + c.v_row);
    void* p = std::aligned_alloc(align, (bytes + align - 1) / align * align);
    if (p) short_bytes_ += int64_t(bytes);
    return p;
}

void KvStore::page_free(const Head& h, void* p, int32_t cap) {
    TypeClass& c = classes_[size_t(h.cls)];
    if (cap == cfg_.page_size) {
        c.free.push_back(p);
    } else {
        std::free(p);
        short_bytes_ -= int64_t(cap) * int64_t(c.k_row + c.v_row);
    }
}

Status KvStore::last_page_resize(Head& h, int32_t rows, int32_t new_cap) {
    void* np = page_alloc(h, new_cap);
    if (!np) return Status::out_of_memory("kv: out of memory resizing a page");
    const TypeClass& c = cls(h);
    uint8_t* nv = static_cast<uint8_t*>(np) + size_t(new_cap) * c.k_row;
    std::memcpy(np, h.k_pages.back(), size_t(rows) * c.k_row);
    std::memcpy(nv, h.v_pages.back(), size_t(rows) * c.v_row);
    page_free(h, h.k_pages.back(), h.last_cap);
    h.k_pages.back() = np;
    h.v_pages.back() = nv;
    h.last_cap = new_cap;
    return Status();
}

void KvStore::release_last(Head& h) {
    page_free(h, h.k_pages.back(), h.last_cap);
    h.k_pages.pop_back();
    h.v_pages.pop_back();
    h.last_cap = h.k_pages.empty() ? 0 : cfg_.page_size;
}

int64_t KvStore::head_page_bytes(const Head& h) const {
    if (h.k_pages.empty()) return 0;
    const TypeClass& c = cls(h);
    return int64_t(h.k_pages.size() - 1) * int64_t(c.pair) + int64_t(h.last_cap) * int64_t(c.k_row + c.v_row);
}

Status KvStore::check_limit(const Head& h, size_t pages_need, int32_t cap_last, int64_t n_add) const {
    if (cfg_.max_bytes <= 0) return Status();
    // everything bytes_in_use() counts: pages, short pages and the lanes (issue 24 item 10)
    int64_t live = short_bytes_ + slots_ * int64_t(lane_bytes_);
    for (const TypeClass& c : classes_) live += (c.allocated - int64_t(c.free.size())) * int64_t(c.pair);
    const TypeClass& c = cls(h);
    const int64_t after = pages_need == 0 ? 0
                                          : int64_t(pages_need - 1) * int64_t(c.pair) +
                                                int64_t(cap_last) * int64_t(c.k_row + c.v_row);
    if (live - head_page_bytes(h) + after + n_add * int64_t(lane_bytes_) > cfg_.max_bytes) {
        return Status::out_of_memory("kv: cache limit of %lld bytes reached", (long long)cfg_.max_bytes);
    }
    return Status();
}

Status KvStore::append(int32_t il, int32_t ih, int32_t n, const float* k, int64_t k_stride,
                       const float* v, int64_t v_stride, const int32_t* pos) {
    if (n <= 0) return Status();
    Head& h = head(il, ih);
    for (int32_t i = 0; i < n; ++i) {
        if (!h.pos.fits(pos[i])) return lane_error(il, ih, pos[i]);
    }
    const int32_t ps = cfg_.page_size;
    const int64_t n_old = int64_t(h.pos.size());
    const int64_t n_new = n_old + n;
    const size_t pages_need = size_t((n_new + ps - 1) / ps);
    // the last page after the append: a whole page, or (fine heads) a short one
    const int32_t cap_last = h.fine ? fine_cap(int32_t(n_new - int64_t(pages_need - 1) * ps)) : ps;
    HKV_TRY(check_limit(h, pages_need, cap_last, n));
    try {
        // geometric growth: an exact reserve per decode step would copy the arrays every token
        auto grow = [](auto& v, size_t need) {
            if (v.capacity() < need) v.reserve(std::max(need, 2 * v.capacity()));
        };
        h.pos.grow(size_t(n_new));
        if (cfg_.score_lane) grow(h.score, size_t(n_new));
        grow(h.k_pages, pages_need);
        grow(h.v_pages, pages_need);
    } catch (const std::bad_alloc&) {
        return Status::out_of_memory("kv: out of memory growing head (%d, %d)", il, ih);
    }
    const size_t pages_old = h.k_pages.size();
    if (pages_old > 0 && h.last_cap < ps) {  // a short last page grows (to a whole page if more follow)
        const int32_t want = pages_need > pages_old ? ps : cap_last;
        if (want > h.last_cap) {
            HKV_TRY(last_page_resize(h, int32_t(n_old - int64_t(pages_old - 1) * ps), want));
        }
    }
    for (size_t i = pages_old; i < pages_need; ++i) {
        const int32_t cap = i + 1 == pages_need ? cap_last : ps;
        void* pp = page_alloc(h, cap);
        if (!pp) {
            while (h.k_pages.size() > pages_old) release_last(h);  // the head is left as it was
            return Status::out_of_memory("kv: out of memory allocating a page");
        }
        push_pair(h, pp, cap);
    }
    const KvRowTypes t = cls(h).t;
    for (int32_t i = 0; i < n; ++i) {
        const int64_t s = n_old + i;
        kv_convert_row(t.k, k + i * k_stride, k_ptr(h, s), cfg_.head_dim);
        kv_convert_row(t.v, v + i * v_stride, v_ptr(h, s), cfg_.head_dim);
        h.pos.push_back(pos[i]);
        if (cfg_.score_lane) h.score.push_back(0.0f);
    }
    slots_ += n;
    return Status();
}

Status KvStore::compact(int32_t il, int32_t ih, const int32_t* keep, int32_t n_keep) {
    Head& h = head(il, ih);
    const int32_t n = int32_t(h.pos.size());
    if (n_keep < 0 || n_keep > n) return Status::invalid("kv: compact keeps %d of %d slots", n_keep, n);
    ++epoch_;
    for (int32_t i = 0; i < n_keep; ++i) {
        if (keep[i] < 0 || keep[i] >= n || (i > 0 && keep[i] <= keep[i - 1])) {
            return Status::invalid("kv: compact indices must be ascending slot indices < %d", n);
        }
    }
    const TypeClass& c = cls(h);
    for (int32_t i = 0; i < n_keep; ++i) {
        const int32_t s = keep[i];
        if (s == i) continue;
        std::memcpy(k_ptr(h, i), k_ptr(h, s), c.k_row);  // quantized rows move as whole blocks
        std::memcpy(v_ptr(h, i), v_ptr(h, s), c.v_row);
        h.pos.set(size_t(i), h.pos[size_t(s)]);
        if (cfg_.score_lane) h.score[size_t(i)] = h.score[size_t(s)];
    }
    slots_ -= n - n_keep;
    h.pos.truncate(size_t(n_keep));
    if (cfg_.score_lane) {
        h.score.resize(size_t(n_keep));
        h.score.shrink_to_fit();
    }
    const int32_t ps = cfg_.page_size;
    const size_t pages_need = size_t((n_keep + ps - 1) / ps);
    while (h.k_pages.size() > pages_need) release_last(h);
    h.fine = granule() > 0;
    if (h.fine && pages_need > 0) {  // the last page shrinks to its rows (rounded to the granule)
        const int32_t rows = int32_t(n_keep - int64_t(pages_need - 1) * ps);
        const int32_t want = fine_cap(rows);
        // an allocation failure keeps the larger page: correct, only less memory is freed
        if (want < h.last_cap) (void)last_page_resize(h, rows, want);
    }
    return Status();
}

Status KvStore::write_row(int32_t il, int32_t ih, int32_t slot, const float* k, const float* v) {
    if (il < 0 || il >= cfg_.n_layer || ih < 0 || ih >= cfg_.n_head_kv) {
        return Status::invalid("kv: write_row to head (%d, %d) outside the cache", il, ih);
    }
    Head& h = head(il, ih);
    if (slot < 0 || slot >= int32_t(h.pos.size())) {
        return Status::invalid("kv: write_row to slot %d of a head holding %d", slot, int32_t(h.pos.size()));
    }
    ++epoch_;  // per-page caches (Quest bounds) keyed by slot no longer describe the row
    kv_convert_row(cls(h).t.k, k, k_ptr(h, slot), cfg_.head_dim);
    kv_convert_row(cls(h).t.v, v, v_ptr(h, slot), cfg_.head_dim);
    return Status();
}

void KvStore::drop_from(int32_t pos) {
    cold_drain();
    if (cold_) cold_->drop_from(pos);
    if (pos <= 0) cold_stats_ = ColdStats();
    for (int32_t il = 0; il < cfg_.n_layer; ++il) {
        for (int32_t ih = 0; ih < cfg_.n_head_kv; ++ih) {
            Head& h = head(il, ih);
            std::vector<int32_t> keep;
            for (int32_t s = 0; s < int32_t(h.pos.size()); ++s) {
                if (h.pos[size_t(s)] < pos) keep.push_back(s);
            }
            if (keep.size() != h.pos.size()) (void)compact(il, ih, keep.data(), int32_t(keep.size()));
        }
    }
}

AttnKvHead KvStore::view(int32_t il, int32_t ih) const {
    const Head& h = head(il, ih);
    AttnKvHead v;
    v.k_pages = const_cast<const void* const*>(h.k_pages.data());
    v.v_pages = const_cast<const void* const*>(h.v_pages.data());
    v.pos = h.pos.lane();
    v.n_slot = int32_t(h.pos.size());
    v.k_type = cls(h).t.k;
    v.v_type = cls(h).t.v;
    return v;
}

int64_t KvStore::drop_before(int32_t il, int32_t pos_min) {
    const size_t ps = size_t(cfg_.page_size);
    int64_t freed = 0;
    for (int32_t ih = 0; ih < cfg_.n_head_kv; ++ih) {
        Head& h = head(il, ih);
        size_t n_drop = 0;  // leading pages out of the window; the last page always stays
        while (n_drop + 1 < h.k_pages.size() && h.pos[(n_drop + 1) * ps - 1] < pos_min) ++n_drop;
        if (n_drop == 0) continue;
        for (size_t i = 0; i < n_drop; ++i) page_free(h, h.k_pages[i], int32_t(ps));  // whole pages: back to the pool
        h.k_pages.erase(h.k_pages.begin(), h.k_pages.begin() + long(n_drop));
        h.v_pages.erase(h.v_pages.begin(), h.v_pages.begin() + long(n_drop));
        h.pos.erase_front(n_drop * ps);
        if (cfg_.score_lane) h.score.erase(h.score.begin(), h.score.begin() + long(n_drop * ps));
        freed += int64_t(n_drop * ps);
    }
    if (freed > 0) ++epoch_;
    return freed;
}

void KvStore::clear() {
    cold_drain();
    if (cold_) cold_->clear();
    cold_stats_ = ColdStats();
    ++epoch_;
    for (Head& h : heads_) {
        while (!h.k_pages.empty()) release_last(h);
        h.pos.clear();
        h.score.clear();
        h.fine = false;
    }
    slots_ = 0;
}

void KvStore::trim() {
    for (TypeClass& c : classes_) {
        for (void* p : c.free) std::free(p);
        c.allocated -= int64_t(c.free.size());
        c.free.clear();
        c.free.shrink_to_fit();
    }
}

size_t KvStore::bytes_in_use() const {
    size_t b = 0;
    for (const Head& h : heads_) {
        b += size_t(head_page_bytes(h)) + h.pos.size() * h.pos.width() + h.score.size() * sizeof(float);
    }
    return b;
}

size_t KvStore::bytes_reserved() const {
    size_t b = size_t(short_bytes_) + size_t(slots_) * lane_bytes_;
    for (const TypeClass& c : classes_) b += size_t(c.allocated) * c.pair;
    return b;
}

Status KvStore::lane_error(int32_t il, int32_t ih, int64_t pos) const {
    return Status::invalid("kv: position %lld of layer %d head %d does not fit the 16-bit position lane of a "
                           "context of n_ctx %d (positions 0..%d)",
                           (long long)pos, il, ih, cfg_.n_ctx, PosVec::kNarrowMax);
}

int64_t KvStore::slots_total() const {
    int64_t n = 0;
    for (const Head& h : heads_) n += int64_t(h.pos.size());
    return n;
}

Status KvStore::overwrite_slots(int32_t il, int32_t ih, int32_t slot0, int32_t n, const void* k, const void* v,
                                const int32_t* pos) {
    Head& h = head(il, ih);
    if (slot0 < 0 || n < 0 || int64_t(slot0) + n > int64_t(h.pos.size())) {
        return Status::invalid("kv: overwrite of slots [%d, %d) outside the %zu live slots of layer %d head %d", slot0,
                               slot0 + n, h.pos.size(), il, ih);
    }
    for (int32_t i = 0; i < n; ++i) {
        if (!h.pos.fits(pos[i])) return lane_error(il, ih, pos[i]);
    }
    ++epoch_;
    const auto* kb = static_cast<const uint8_t*>(k);
    const auto* vb = static_cast<const uint8_t*>(v);
    const size_t kr = cls(h).k_row, vr = cls(h).v_row;
    for (int32_t i = 0; i < n; ++i) write_raw(h, slot0 + i, kb + size_t(i) * kr, vb + size_t(i) * vr, pos[i]);
    return Status();
}

void KvStore::write_raw(Head& h, int64_t s, const uint8_t* k, const uint8_t* v, int32_t pos) {
    std::memcpy(k_ptr(h, s), k, cls(h).k_row);
    std::memcpy(v_ptr(h, s), v, cls(h).v_row);
    h.pos.set(size_t(s), pos);
    if (cfg_.score_lane) h.score[size_t(s)] = 0.0f;
}

}  // namespace hkv
