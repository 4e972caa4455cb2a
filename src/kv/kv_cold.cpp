// kv/kv_cold.cpp — KvStore's cold tier: spills of compressed heads' rows into it, and refreshes
// that gather rows back on its I/O thread and write them over hot slots before the layer's next
// attention (see kv_store.h: apply, apply_pending).
#include <algorithm>
#include <chrono>
#include <cstring>

#include "kv/cold_tier.h"
#include "core/thread_pool.h"
#include "kv/kv_store.h"

namespace hkv {

Status KvStore::cold_ensure() {
    if (cold_) return Status();
    ColdTierConfig cc;
    cc.n_layer = cfg_.n_layer;
    cc.n_head_kv = cfg_.n_head_kv;
    // rows are stored as the cache holds them (quantized: blocks), each head's in its own types
    cc.head_row_bytes.resize(heads_.size());
    for (size_t i = 0; i < heads_.size(); ++i) cc.head_row_bytes[i] = {cls(heads_[i]).k_row, cls(heads_[i]).v_row};
    cc.dir = cfg_.cold_dir;
    HKV_ASSIGN_OR_RETURN(cold_, ColdTier::create(cc));
    return Status();
}

Status KvStore::cold_spill(int32_t il, int32_t ih) {
    if (ih < 0 || ih >= cfg_.n_head_kv) return Status::invalid("kv: cold spill of head %d of %d", ih, cfg_.n_head_kv);
    HKV_TRY(cold_ensure());
    const Head& h = head(il, ih);
    const int32_t n = int32_t(h.pos.size());
    const int32_t rows = cold_->rows(il, ih);  // = the next position the tier expects
    int32_t s0 = n;
    while (s0 > 0 && h.pos[size_t(s0 - 1)] >= rows) --s0;
    const int32_t n_new = n - s0;
    if (n_new == 0) return Status();
    for (int32_t i = 0; i < n_new; ++i) {
        if (h.pos[size_t(s0 + i)] != rows + i) {
            return Status::internal("kv: cold spill of layer %d head %d: slot %d holds position %d, not %d (the rows "
                                    "to spill must be the head's last slots at consecutive positions)",
                                    il, ih, s0 + i, h.pos[size_t(s0 + i)], rows + i);
        }
    }
    const size_t kr = cls(h).k_row, vr = cls(h).v_row;
    spill_k_.resize(size_t(n_new) * kr);
    spill_v_.resize(size_t(n_new) * vr);
    for (int32_t i = 0; i < n_new; ++i) {
        std::memcpy(spill_k_.data() + size_t(i) * kr, k_ptr(h, s0 + i), kr);
        std::memcpy(spill_v_.data() + size_t(i) * vr, v_ptr(h, s0 + i), vr);
    }
    spill_pos_.resize(size_t(n_new));
    h.pos.lane().copy(size_t(s0), size_t(n_new), spill_pos_.data());
    return cold_->append(il, ih, n_new, spill_k_.data(), spill_v_.data(), spill_pos_.data());
}

Status KvStore::cold_submit(int32_t il, const LayerPlan& plan) {
    Pending& pend = pending_[size_t(il)];
    size_t n = 0;
    for (const ColdOp& op : plan.cold) {
        if (op.kind != ColdOpKind::kRefresh) continue;
        if (!cold_) return Status::invalid("kv: a cold-tier refresh of layer %d before any spill", il);
        if (pend.active) {
            return Status::internal("kv: layer %d has a cold-tier refresh pending since its last step", il);
        }
        if (op.head < 0 || op.head >= cfg_.n_head_kv) {
            return Status::invalid("kv: cold-tier refresh of head %d of %d", op.head, cfg_.n_head_kv);
        }
        if (pend.heads.size() <= n) pend.heads.emplace_back();
        Staged& st = pend.heads[n++];
        st.ih = op.head;
        st.slot0 = op.slot0;
        st.n = int32_t(op.rows.size());
        st.rows.assign(op.rows.begin(), op.rows.end());
        if (!cfg_.cold_async && !cold_->on_disk()) continue;  // copied at the fence, no staging
        st.k.resize(size_t(st.n) * k_row_bytes(il, op.head));
        st.v.resize(size_t(st.n) * v_row_bytes(il, op.head));
        st.pos.resize(size_t(st.n));
    }
    if (n == 0) return Status();
    pend.n_heads = n;
    pend.active = true;
    pend.at_fence = !cfg_.cold_async && !cold_->on_disk();
    if (pend.at_fence) return Status();
    ColdTier* cold = cold_.get();
    pend.done = cold->submit([cold, il, &pend] {
        const auto t0 = std::chrono::steady_clock::now();
        for (size_t i = 0; i < pend.n_heads; ++i) {
            Staged& s = pend.heads[i];
            HKV_TRY(cold->gather(il, s.ih, s.rows.data(), s.n, s.k.data(), s.v.data(), s.pos.data()));
        }
        pend.io_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        return Status();
    });
    return Status();
}

Status KvStore::apply_pending(int32_t il, ThreadPool* pool) {
    Pending& p = pending_[size_t(il)];
    if (!p.active) return Status();
    p.active = false;
    if (p.at_fence) return cold_copy_at_fence(il, p, pool);
    const auto t0 = std::chrono::steady_clock::now();
    const Status st = p.done.get();
    cold_stats_.wait_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    cold_stats_.io_ms += p.io_ms;
    if (!st.ok()) return st.with_context("kv: cold-tier refresh of layer " + std::to_string(il));
    for (size_t i = 0; i < p.n_heads; ++i) {
        const Staged& s = p.heads[i];
        HKV_TRY(overwrite_slots(il, s.ih, s.slot0, s.n, s.k.data(), s.v.data(), s.pos.data()));
    }
    count_refresh(il, p);
    return Status();
}

void KvStore::count_refresh(int32_t il, const Pending& p) {
    for (size_t i = 0; i < p.n_heads; ++i) {
        const Staged& s = p.heads[i];
        cold_stats_.bytes_gathered += int64_t(s.n) * int64_t(k_row_bytes(il, s.ih) + v_row_bytes(il, s.ih));
    }
    ++cold_stats_.refreshes;
}

Status KvStore::cold_copy_at_fence(int32_t il, Pending& p, ThreadPool* pool) {
    const auto t0 = std::chrono::steady_clock::now();
    // every row index and position checked before anything is written
    constexpr int32_t kRows = 256;  // rows per work unit
    unit_first_.assign(1, 0);       // staged head i's units: [unit_first_[i], unit_first_[i + 1])
    for (size_t i = 0; i < p.n_heads; ++i) {
        Staged& s = p.heads[i];
        auto rr = cold_->ram_rows(il, s.ih);
        if (!rr.ok()) return rr.status().with_context("kv: cold-tier refresh of layer " + std::to_string(il));
        const Head& h = head(il, s.ih);
        if (s.slot0 < 0 || int64_t(s.slot0) + s.n > int64_t(h.pos.size())) {
            return Status::invalid("kv: refresh of slots [%d, %d) outside the %zu live slots of layer %d head %d",
                                   s.slot0, s.slot0 + s.n, h.pos.size(), il, s.ih);
        }
        if (rr->k_bytes != cls(h).k_row || rr->v_bytes != cls(h).v_row) {
            return Status::internal("kv: cold-tier rows of layer %d head %d are not the cache's row size", il, s.ih);
        }
        for (int32_t j = 0; j < s.n; ++j) {
            const int32_t r = s.rows[size_t(j)];
            if (r < 0 || r >= rr->rows) {
                return Status::invalid("cold tier: row %d of layer %d head %d (holds %d)", r, il, s.ih, rr->rows);
            }
            if (!h.pos.fits(rr->pos[r])) return lane_error(il, s.ih, rr->pos[r]);
        }
        s.src_k = rr->k, s.src_v = rr->v, s.src_pos = rr->pos;
        unit_first_.push_back(unit_first_.back() + (s.n + kRows - 1) / kRows);
    }
    ++epoch_;
    // the units: (staged head, block of kRows rows), over the pool's threads
    auto copy = [&](int64_t u, int) {
        const size_t i = size_t(std::upper_bound(unit_first_.begin(), unit_first_.end(), u) - unit_first_.begin()) - 1;
        const Staged& s = p.heads[i];
        Head& h = head(il, s.ih);
        const size_t kr = cls(h).k_row, vr = cls(h).v_row;
        const int32_t j0 = int32_t(u - unit_first_[i]) * kRows, j1 = std::min(s.n, j0 + kRows);
        for (int32_t j = j0; j < j1; ++j) {
            const int32_t r = s.rows[size_t(j)];
            write_raw(h, s.slot0 + j, s.src_k + size_t(r) * kr, s.src_v + size_t(r) * vr, s.src_pos[r]);
        }
    };
    if (pool) {
        pool->for_each(unit_first_.back(), copy);
    } else {
        for (int64_t u = 0; u < unit_first_.back(); ++u) copy(u, 0);
    }
    count_refresh(il, p);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    cold_stats_.io_ms += ms;
    cold_stats_.wait_ms += ms;  // all of it on the engine's path
    return Status();
}

void KvStore::cold_drain() {
    for (Pending& p : pending_) {
        if (!p.active) continue;
        if (!p.at_fence) p.done.wait();  // a fence refresh has nothing in flight
        p.active = false;
    }
}

int32_t KvStore::cold_rows(int32_t il, int32_t ih) const { return cold_ ? cold_->rows(il, ih) : 0; }

ColdStats KvStore::cold_stats() const {
    ColdStats s = cold_stats_;
    s.exists = cold_ != nullptr;
    s.on_disk = cold_ && cold_->on_disk();
    s.bytes_stored = cold_ ? cold_->bytes_stored() : 0;
    return s;
}

}  // namespace hkv
