// policy/heterocache.cpp — HeteroCache (arXiv 2601.13684; reference code ponytaill/HeteroCache), as
// specified in ../shared/docs/methods.md §1.4 and §1.7.
//
// Roles come from a taxonomy file (policy/heterocache_taxonomy.h, made by `heterokv calibrate`):
//   volatile, pivot   full KV (budget -1);
//   anchor            compressed once at the prompt's end to cap_h slots (static);
//   satellite         compressed to cap_h hot slots; its whole prompt K/V goes to the cold tier
//                     (kv/cold_tier.h: host RAM, or files under --kv-cold-dir).
// Budgets: heterocache_budget() = the reference's get_compress_len (base from the ratio cr).
// Prefill (prompt's last chunk): per KV head, the last prompt query's softmax over the keys,
// avg-pooled (kernel `pool`), max over the GQA group; anchors/satellites keep their top cap_h
// slots in position order (no window, no sinks); a pivot's reference set R_p = its top base.
// Decode: new tokens are appended to every head (no eviction). Every W steps, per pivot with
// satellites, the W buffered queries of its group score the pivot's PROMPT keys (same scoring);
// o_t = |top_base(A_t) ∩ R_p| / base; if median(o) < tau: R_p <- top_base(A_W) and each satellite
// s gets n_s = cap_s rows of A_W — its own top n_s (select=topk) or the earliest n_s of the top
// max_s n_s (select=reference, the reference code's behaviour) — sorted by position, gathered from
// the cold tier on the I/O thread and written over its prefill slots [0, n_s) before the same
// layer's attention at the next step (waited for there: the exposed time).
// spill=chunk (prompts whose full KV does not fit in memory): after EVERY prefill chunk, each
// satellite appends the chunk's new rows to the cold tier (in position order, so a cold-tier row
// index stays = prompt position) and every anchor/satellite is cut back to cap_h slots, scored
// with the chunk's last query over its live slots (survivors + the chunk). Peak hot KV is then
// volatile + pivot heads in full + anchors/satellites at cap_h + one chunk. The last chunk makes
// the same selection over the survivors with the prompt's last query; the chunks after the first
// cut attend to the survivors only for those heads (an approximation of the reference, whose
// prefill attends to the whole prompt). spill=end (default) keeps everything until the last chunk.
#include "policy/heterocache.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <future>

#include "backend/cpu/ops.h"
#include "backend/cpu/scores.h"
#include "core/fp16.h"
#include "kv/cold_tier.h"
#include "policy/select.h"

namespace hkv {

void hc_scores_from_dots(float* dots, int32_t group, int32_t n, float scale, int32_t pool, float* out,
                         std::vector<float>& tmp) {
    tmp.resize(size_t(n));
    float* pooled = tmp.data();
    std::fill(out, out + n, -INFINITY);
    for (int32_t g = 0; g < group; ++g) {
        float* p = dots + size_t(g) * size_t(n);
        float mx = -INFINITY;
        for (int32_t s = 0; s < n; ++s) {
            p[s] *= scale;
            mx = std::max(mx, p[s]);
        }
        exp_shifted(p, n, mx);
        double sum = 0.0;
        for (int32_t s = 0; s < n; ++s) sum += p[s];
        const float inv = float(1.0 / sum);
        for (int32_t s = 0; s < n; ++s) p[s] *= inv;
        pool1d(p, n, pool, PoolKind::kAvg, pooled);
        for (int32_t s = 0; s < n; ++s) out[s] = std::max(out[s], pooled[s]);
    }
}

void hc_last_row_scores(const float* q, int32_t group, const float* keys, int32_t n, int32_t head_dim, float scale,
                        int32_t pool, float* out, std::vector<float>& tmp) {
    std::vector<float> dots(size_t(group) * size_t(n));  // [group, n]
    for (int32_t g = 0; g < group; ++g) {
        for (int32_t s = 0; s < n; ++s) {
            dots[size_t(g) * size_t(n) + size_t(s)] =
                dot_f32(q + size_t(g) * size_t(head_dim), keys + size_t(s) * size_t(head_dim), head_dim);
        }
    }
    hc_scores_from_dots(dots.data(), group, n, scale, pool, out, tmp);
}

void hc_last_row_scores_paged(const float* q, int32_t group, const void* const* k_pages, uint32_t kv_type,
                              int32_t page_size, int32_t n, int32_t head_dim, float scale, int32_t pool, float* out,
                              std::vector<float>& tmp) {
    thread_local std::vector<float> dots;  // [group, n]
    dots.resize(size_t(group) * size_t(n));
    qk_dots(DType(kv_type), k_pages, page_size, head_dim, q, group, n, dots.data(), n);
    hc_scores_from_dots(dots.data(), group, n, scale, pool, out, tmp);
}

double hc_overlap(const int32_t* set, int32_t n_set, const std::vector<uint8_t>& ref_mask, int64_t base) {
    if (base <= 0) return 1.0;
    int64_t hit = 0;
    for (int32_t i = 0; i < n_set; ++i) hit += ref_mask[size_t(set[i])];
    return double(hit) / double(base);
}

double hc_lower_median(std::vector<double>& v) {
    const size_t m = (v.size() - 1) / 2;
    std::nth_element(v.begin(), v.begin() + long(m), v.end());
    return v[m];
}

Taxonomy taxonomy_structural(int32_t n_layer, int32_t n_head_kv) {
    Taxonomy t;
    t.n_layer = n_layer;
    t.n_head_kv = n_head_kv;
    t.role.assign(size_t(n_layer) * size_t(n_head_kv), HeadRole::kSatellite);
    t.ratio.assign(t.role.size(), 1.0);
    t.clusters.resize(size_t(n_layer));
    const int32_t last_sat = std::max(1, n_head_kv >= 5 ? n_head_kv - 3 : n_head_kv - 2);
    for (int32_t il = 0; il < n_layer; ++il) {
        HeadCluster c;
        c.pivot = 0;
        int32_t k = 0;
        for (int32_t ih = 0; ih < n_head_kv; ++ih) {
            HeadRole r = HeadRole::kSatellite;
            if (ih == 0) r = HeadRole::kPivot;
            else if (ih > last_sat && ih == n_head_kv - 1 && n_head_kv >= 5) r = HeadRole::kVolatile;
            else if (ih > last_sat) r = HeadRole::kAnchor;
            t.role[t.at(il, ih)] = r;
            if (r == HeadRole::kPivot || r == HeadRole::kVolatile) {
                t.ratio[t.at(il, ih)] = -1.0;
            } else {
                t.ratio[t.at(il, ih)] = (k++ % 2 == 0) ? 0.5 : 1.5;
            }
            if (r == HeadRole::kSatellite) c.satellites.push_back(ih);
        }
        t.clusters[size_t(il)].push_back(c);
    }
    t.source = "structural taxonomy (not calibrated)";
    return t;
}

namespace {

enum class RefreshMode { kDrift, kNever, kAlways };

struct HcOptions {
    std::string taxonomy_path;
    double ratio = 0.5;
    int32_t window = 5;
    double tau = 0.5;
    RefreshMode refresh = RefreshMode::kDrift;
    bool uniform = false;
    bool reference_select = false;
    int32_t pool = 5;
    bool spill_chunk = false;  // spill=chunk: cold-tier append and cut to cap after every prefill chunk
};

// Raw rows [s0, s0 + n) of one head's page table copied contiguously: out [n, row_bytes].
void rows_raw(const void* table, int32_t page_size, size_t row_bytes, int32_t s0, int32_t n, uint8_t* out) {
    const auto* pages = static_cast<const void* const*>(table);
    for (int32_t i = 0; i < n; ++i) {
        const int32_t s = s0 + i;
        std::memcpy(out + size_t(i) * row_bytes,
                    static_cast<const uint8_t*>(pages[s / page_size]) + size_t(s % page_size) * row_bytes, row_bytes);
    }
}

// A refresh of one satellite, gathered on the I/O thread into its own staging rows.
struct Staged {
    int32_t ih = 0, n = 0;
    std::vector<int32_t> idx;     // [n] cold-tier rows, ascending
    std::vector<uint8_t> k, v;    // [n, row_bytes]
    std::vector<int32_t> pos;     // [n]
};
struct Pending {
    bool active = false;
    std::vector<Staged> sats;     // [n_sats] in use; kept (with their buffers) across refreshes
    size_t n_sats = 0;
    std::future<Status> done;
    double io_ms = 0.0;           // written by the job, read after done.get()
};

class HeteroCachePolicy final : public Policy {
public:
    HeteroCachePolicy(const HcOptions& o, Taxonomy t) : opt_(o), tax_(std::move(t)) {
        if (opt_.uniform) {
            for (size_t i = 0; i < tax_.ratio.size(); ++i) {
                if (tax_.ratio[i] > 0) tax_.ratio[i] = 1.0;
            }
        }
    }
    ~HeteroCachePolicy() override { drain(); }

    std::string_view name() const override { return "heterocache"; }
    PolicyNeeds needs() const override {
        PolicyNeeds n;
        n.decode_slack = kNoDecodeEviction;
        n.decode_every_step = opt_.refresh != RefreshMode::kNever;
        n.refresh = opt_.refresh != RefreshMode::kNever;
        n.decode_no_positions = true;  // the monitor reads q and the pivots' key pages only
        n.prefill_every_chunk = opt_.spill_chunk;  // on_prefill acts on every chunk (no scores asked)
        return n;
    }

    Status plan_budget(const ModelShape& shape, int32_t n_prompt, KvBudget& budget) override {
        Status sh = taxonomy_check_shape(tax_, shape.n_layer, shape.n_head_kv);
        if (!sh.ok()) {
            return Status::invalid("heterocache: taxonomy %s does not fit this model (%s); make one for it with "
                                   "`heterokv calibrate`", opt_.taxonomy_path.c_str(), sh.message().c_str());
        }
        drain();
        shape_ = shape;
        HKV_ASSIGN_OR_RETURN(HcBudget b, heterocache_budget(tax_, opt_.ratio, n_prompt));
        hb_ = std::move(b);
        n_prompt_ = n_prompt;
        budget.init(shape.n_layer, shape.n_head_kv, -1);
        for (int32_t il = 0; il < shape.n_layer; ++il) {
            for (int32_t ih = 0; ih < shape.n_head_kv; ++ih) {
                const HeadRole r = tax_.role_of(il, ih);
                if (r == HeadRole::kAnchor || r == HeadRole::kSatellite) {
                    budget.at(il, ih) = int32_t(hb_.cap[tax_.at(il, ih)]);
                }
            }
        }
        const size_t nl = size_t(shape.n_layer);
        prefilled_.assign(nl, false);
        ref_mask_.assign(nl * size_t(shape.n_head_kv), {});
        qbuf_.assign(nl, {});
        qfill_.assign(nl, 0);
        pending_.clear();
        pending_.resize(nl);
        windows_.assign(nl, 0);
        refreshes_.assign(nl, 0);
        bytes_gathered_ = 0;
        io_ms_ = wait_ms_ = 0.0;
        decode_tokens_ = 0;
        peak_hot_ = 0;
        if (tax_.count(HeadRole::kSatellite) > 0) {
            if (!cold_) {
                ColdTierConfig cc;
                cc.n_layer = shape.n_layer;
                cc.n_head_kv = shape.n_head_kv;
                row_bytes_ = 0;  // known at the first prefill view (kv_type)
                cc.dir = shape.kv_cold_dir;
                cold_cfg_ = cc;
            } else {
                cold_->clear();
            }
        }
        return Status();
    }

    Status on_prefill(const LayerView& v, KeepPlan& plan) override {
        const int32_t il = v.il;
        if (prefilled_[size_t(il)]) return Status();  // a later eval (question): appended
        if (!v.prefill_last && !opt_.spill_chunk) return Status();  // spill=end: wait for the last chunk
        prefilled_[size_t(il)] = v.prefill_last;
        const int32_t nh = v.n_head_kv, hd = v.head_dim;
        const int32_t group = v.n_head / nh;
        const size_t elt = v.kv_type == 0 ? 4 : 2;
        const size_t row_bytes = size_t(hd) * elt;
        if (tax_.count(HeadRole::kSatellite) > 0 && !cold_) {
            cold_cfg_.row_bytes = row_bytes;
            HKV_ASSIGN_OR_RETURN(cold_, ColdTier::create(cold_cfg_));
        }
        row_bytes_ = row_bytes;
        const float* q_last = v.q.data() + size_t(v.n_q - 1) * size_t(v.n_head) * size_t(hd);
        const float scale = 1.0f / std::sqrt(float(hd));
        for (int32_t ih = 0; ih < nh; ++ih) {
            const HeadRole r = tax_.role_of(il, ih);
            if (r == HeadRole::kVolatile) continue;
            const int32_t n = v.n_live[size_t(ih)];
            if (r == HeadRole::kPivot && (!v.prefill_last || !has_satellites(il, ih))) continue;
            score_.resize(size_t(n));
            hc_last_row_scores_paged(q_last + size_t(ih) * size_t(group) * size_t(hd), group,
                                     static_cast<const void* const*>(v.k_pages[size_t(ih)]), v.kv_type, v.page_size, n,
                                     hd, scale, opt_.pool, score_.data(), tmp_);
            if (r == HeadRole::kPivot) {
                const int32_t k = int32_t(std::min<int64_t>(hb_.base, n));
                top_.resize(size_t(k));
                top_k_indices(score_.data(), n, k, top_.data(), order_);
                auto& mask = ref_mask_[size_t(il) * size_t(nh) + size_t(ih)];
                mask.assign(size_t(n), 0);
                for (int32_t s : top_) mask[size_t(s)] = 1;
                continue;
            }
            if (r == HeadRole::kSatellite) HKV_TRY(spill_new_rows(v, ih, row_bytes));
            peak_hot_ = std::max<int64_t>(peak_hot_, n);
            const int32_t cap = int32_t(std::min<int64_t>(hb_.cap[tax_.at(il, ih)], n));
            if (cap >= n) continue;
            int32_t* out = plan.idx.data() + size_t(ih) * size_t(plan.n_slot);
            top_k_indices(score_.data(), n, cap, out, order_);
            plan.n_keep[size_t(ih)] = cap;
        }
        return Status();
    }

    Status on_decode(const LayerView& v, KeepPlan&) override {
        const int32_t il = v.il;
        if (il == 0) ++decode_tokens_;
        if (!layer_has_satellites(il) || hb_.base < 1) return Status();
        const size_t qrow = size_t(v.n_head) * size_t(v.head_dim);
        auto& buf = qbuf_[size_t(il)];
        buf.resize(size_t(opt_.window) * qrow);
        std::copy_n(v.q.data() + size_t(v.n_q - 1) * qrow, qrow, buf.data() + size_t(qfill_[size_t(il)]) * qrow);
        if (++qfill_[size_t(il)] < opt_.window) return Status();
        qfill_[size_t(il)] = 0;
        return monitor(v);
    }

    Status take_refresh(int32_t il, std::vector<SlotRefresh>& out) override {
        Pending& p = pending_[size_t(il)];
        if (!p.active) return Status();
        p.active = false;
        const auto t0 = std::chrono::steady_clock::now();
        Status st = p.done.get();
        wait_ms_ += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        io_ms_ += p.io_ms;
        if (!st.ok()) return st.with_context("heterocache: satellite refresh of layer " + std::to_string(il));
        for (size_t i = 0; i < p.n_sats; ++i) {
            const Staged& s = p.sats[i];
            out.push_back(SlotRefresh{s.ih, 0, s.n, s.k.data(), s.v.data(), s.pos.data()});
            bytes_gathered_ += 2 * int64_t(s.n) * int64_t(row_bytes_);
        }
        return Status();
    }

    std::string report() const override {
        if (!shape_.n_layer) return std::string();
        int64_t w = 0, r = 0;
        std::string per;
        for (size_t il = 0; il < windows_.size(); ++il) {
            w += windows_[il];
            r += refreshes_[il];
            if (windows_[il] == 0) continue;
            char b[48];
            std::snprintf(b, sizeof b, "%s%zu:%.2f", per.empty() ? "" : " ", il, double(refreshes_[il]) / double(windows_[il]));
            per += b;
        }
        char line[512];
        std::snprintf(line, sizeof line,
                      "heterocache: prompt %d, base %lld; cold tier %s %.2f MiB; monitor %lld checks, %lld refreshes "
                      "(rate %.3f; per layer %s); gathered %.2f MiB = %.1f KiB/token over %lld decode tokens; I/O "
                      "%.2f ms, exposed wait %.2f ms, hidden %.2f ms",
                      n_prompt_, (long long)hb_.base, cold_ && cold_->on_disk() ? "file" : "RAM",
                      cold_ ? double(cold_->bytes_stored()) / 1048576.0 : 0.0, (long long)w, (long long)r,
                      w ? double(r) / double(w) : 0.0, per.empty() ? "-" : per.c_str(),
                      double(bytes_gathered_) / 1048576.0,
                      decode_tokens_ ? double(bytes_gathered_) / 1024.0 / double(decode_tokens_) : 0.0,
                      (long long)decode_tokens_, io_ms_, wait_ms_, std::max(0.0, io_ms_ - wait_ms_));
        char spill[96];
        std::snprintf(spill, sizeof spill, "; spill %s, peak anchor/satellite slots %lld", opt_.spill_chunk ? "chunk" : "end",
                      (long long)peak_hot_);
        return std::string(line) + spill;
    }

    const ColdTier* cold_tier() const { return cold_.get(); }

private:
    // Appends the prompt rows of satellite ih that the cold tier does not hold yet (spill=end: the
    // whole prompt at its last chunk; spill=chunk: the chunk's rows, the last slots of the head).
    // They are the head's last n_past - rows slots, at consecutive positions from rows on.
    Status spill_new_rows(const LayerView& v, int32_t ih, size_t row_bytes) {
        const int32_t il = v.il, n = v.n_live[size_t(ih)];
        const int32_t n_new = v.n_past - cold_->rows(il, ih);
        const int32_t s0 = n - n_new;
        const int32_t* pos = v.pos.data() + size_t(ih) * size_t(v.n_slot);
        if (n_new <= 0) return Status();
        if (s0 < 0 || pos[s0] != cold_->rows(il, ih) || pos[n - 1] != v.n_past - 1) {
            return Status::internal("heterocache: layer %d head %d: the prompt rows to spill are not the head's last %d "
                                    "slots at positions %d..%d", il, ih, n_new, cold_->rows(il, ih), v.n_past - 1);
        }
        raw_k_.resize(size_t(n_new) * row_bytes);
        raw_v_.resize(size_t(n_new) * row_bytes);
        rows_raw(v.k_pages[size_t(ih)], v.page_size, row_bytes, s0, n_new, raw_k_.data());
        rows_raw(v.v_pages[size_t(ih)], v.page_size, row_bytes, s0, n_new, raw_v_.data());
        return cold_->append(il, ih, n_new, raw_k_.data(), raw_v_.data(), pos + s0);
    }

    bool has_satellites(int32_t il, int32_t ih) const {
        for (const HeadCluster& c : tax_.clusters[size_t(il)]) {
            if (c.pivot == ih) return !c.satellites.empty();
        }
        return false;
    }
    bool layer_has_satellites(int32_t il) const {
        for (const HeadCluster& c : tax_.clusters[size_t(il)]) {
            if (!c.satellites.empty()) return true;
        }
        return false;
    }

    // Waits for every submitted gather (before a new sequence or destruction).
    void drain() {
        for (Pending& p : pending_) {
            if (p.active) {
                p.done.wait();
                p.active = false;
            }
        }
    }

    // The drift check of layer v.il over the W buffered queries.
    Status monitor(const LayerView& v) {
        const int32_t il = v.il, nh = v.n_head_kv, hd = v.head_dim;
        const int32_t group = v.n_head / nh;
        const int32_t W = opt_.window;
        const int32_t L = n_prompt_;
        const float scale = 1.0f / std::sqrt(float(hd));
        const size_t qrow = size_t(v.n_head) * size_t(hd);
        Pending& pend = pending_[size_t(il)];
        if (pend.active) {  // a refresh not yet applied (cannot happen with one monitor per W >= 1 steps)
            return Status::internal("heterocache: layer %d refresh still pending at the next check", il);
        }
        pend.n_sats = 0;
        for (const HeadCluster& c : tax_.clusters[size_t(il)]) {
            if (c.satellites.empty()) continue;
            const int32_t p = c.pivot;
            const int32_t n = std::min(L, v.n_live[size_t(p)]);  // the pivot's prompt keys
            const int32_t base = int32_t(std::min<int64_t>(hb_.base, n));
            // the W buffered queries of the pivot's group, [W * group, head_dim], against its prompt keys
            // in one pass over the pages: dots_ [W * group, n]
            keys_.resize(size_t(W) * size_t(group) * size_t(hd));
            for (int32_t t = 0; t < W; ++t) {
                std::copy_n(qbuf_[size_t(il)].data() + size_t(t) * qrow + size_t(p) * size_t(group) * size_t(hd),
                            size_t(group) * size_t(hd), keys_.data() + size_t(t) * size_t(group) * size_t(hd));
            }
            dots_.resize(size_t(W) * size_t(group) * size_t(n));
            const auto* kp = static_cast<const void* const*>(v.k_pages[size_t(p)]);
            if (v.pool) {
                qk_dots(*v.pool, DType(v.kv_type), kp, v.page_size, hd, keys_.data(), W * group, n, dots_.data(), n);
            } else {
                qk_dots(DType(v.kv_type), kp, v.page_size, hd, keys_.data(), W * group, n, dots_.data(), n);
            }
            aw_.resize(size_t(W) * size_t(n));
            std::vector<double>& o = overlap_;
            o.resize(size_t(W));
            auto& mask = ref_mask_[size_t(il) * size_t(nh) + size_t(p)];
            mask.resize(size_t(n), 0);
            top_.resize(size_t(base));
            for (int32_t t = 0; t < W; ++t) {
                float* a = aw_.data() + size_t(t) * size_t(n);
                hc_scores_from_dots(dots_.data() + size_t(t) * size_t(group) * size_t(n), group, n, scale, opt_.pool, a,
                                    tmp_);
                top_k_indices(a, n, base, top_.data(), order_);
                o[size_t(t)] = hc_overlap(top_.data(), base, mask, base);
            }
            ++windows_[size_t(il)];
            const double med = hc_lower_median(o);
            const bool trigger = opt_.refresh == RefreshMode::kAlways || med < opt_.tau;
            if (!trigger) continue;
            ++refreshes_[size_t(il)];
            const float* a_w = aw_.data() + size_t(W - 1) * size_t(n);
            // R_p <- C_W (top_ holds the last step's set)
            std::fill(mask.begin(), mask.end(), 0);
            for (int32_t s : top_) mask[size_t(s)] = 1;
            int32_t n_max = 0;
            for (int32_t s : c.satellites) n_max = std::max(n_max, int32_t(std::min<int64_t>(hb_.cap[tax_.at(il, s)], n)));
            std::vector<int32_t>& union_idx = union_idx_;
            if (opt_.reference_select) {
                union_idx.resize(size_t(n_max));
                top_k_indices(a_w, n, n_max, union_idx.data(), order_);
            }
            for (int32_t s : c.satellites) {
                if (pend.sats.size() <= pend.n_sats) pend.sats.emplace_back();
                Staged& st = pend.sats[pend.n_sats++];
                st.ih = s;
                st.n = int32_t(std::min<int64_t>(hb_.cap[tax_.at(il, s)], n));
                st.n = std::min(st.n, cold_->rows(il, s));
                st.idx.resize(size_t(st.n));
                if (opt_.reference_select) {
                    std::copy_n(union_idx.begin(), st.n, st.idx.begin());
                } else {
                    top_k_indices(a_w, n, st.n, st.idx.data(), order_);
                }
                st.k.resize(size_t(st.n) * row_bytes_);
                st.v.resize(size_t(st.n) * row_bytes_);
                st.pos.resize(size_t(st.n));
            }
        }
        if (pend.n_sats == 0) return Status();
        pend.active = true;
        ColdTier* cold = cold_.get();
        pend.done = cold->submit([cold, il, &pend] {
            const auto t0 = std::chrono::steady_clock::now();
            for (size_t i = 0; i < pend.n_sats; ++i) {
                Staged& s = pend.sats[i];
                HKV_TRY(cold->gather(il, s.ih, s.idx.data(), s.n, s.k.data(), s.v.data(), s.pos.data()));
            }
            pend.io_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
            return Status();
        });
        return Status();
    }

    HcOptions opt_;
    Taxonomy tax_;
    ModelShape shape_;
    HcBudget hb_;
    int32_t n_prompt_ = 0;
    size_t row_bytes_ = 0;
    ColdTierConfig cold_cfg_;
    std::unique_ptr<ColdTier> cold_;
    std::vector<bool> prefilled_;                 // [n_layer]
    std::vector<std::vector<uint8_t>> ref_mask_;  // [n_layer * n_head_kv] -> [L] pivots' R_p
    std::vector<std::vector<float>> qbuf_;        // [n_layer] -> [W, n_head, head_dim]
    std::vector<int32_t> qfill_;                  // [n_layer]
    std::vector<Pending> pending_;                // [n_layer]
    // metrics
    std::vector<int64_t> windows_, refreshes_;    // [n_layer] pivot checks / refreshes
    int64_t bytes_gathered_ = 0, decode_tokens_ = 0;
    int64_t peak_hot_ = 0;                        // most slots an anchor/satellite held at a prefill cut
    double io_ms_ = 0.0, wait_ms_ = 0.0;
    // scratch
    std::vector<float> keys_, score_, tmp_, aw_, dots_;
    std::vector<int32_t> top_, order_, union_idx_;
    std::vector<double> overlap_;                 // [W] the monitor's per-step overlaps
    std::vector<uint8_t> raw_k_, raw_v_;
};

}  // namespace

const ColdTier* heterocache_cold_tier(const Policy& p) {
    const auto* hc = dynamic_cast<const HeteroCachePolicy*>(&p);
    return hc ? hc->cold_tier() : nullptr;
}

Expected<std::unique_ptr<Policy>> heterocache_create(PolicySpec& spec) {
    HcOptions o;
    o.taxonomy_path = spec.get_string("taxonomy", "");
    HKV_ASSIGN_OR_RETURN(o.ratio, spec.get_float("ratio", 0.5, 1e-9, 1.0));
    HKV_ASSIGN_OR_RETURN(int64_t w, spec.get_int("window", 5, 1, 1 << 20));
    o.window = int32_t(w);
    HKV_ASSIGN_OR_RETURN(o.tau, spec.get_float("tau", 0.5, 0.0, 2.0));
    HKV_ASSIGN_OR_RETURN(std::string refresh, spec.get_choice("refresh", "drift", {"drift", "never", "always"}));
    o.refresh = refresh == "never" ? RefreshMode::kNever : refresh == "always" ? RefreshMode::kAlways : RefreshMode::kDrift;
    HKV_ASSIGN_OR_RETURN(std::string weights, spec.get_choice("weights", "taxonomy", {"taxonomy", "uniform"}));
    o.uniform = weights == "uniform";
    HKV_ASSIGN_OR_RETURN(std::string sel, spec.get_choice("select", "topk", {"topk", "reference"}));
    o.reference_select = sel == "reference";
    HKV_ASSIGN_OR_RETURN(int64_t pool, spec.get_int("pool", 5, 1, 255));
    if (pool % 2 == 0) return Status::invalid("heterocache: pool=%lld must be odd", (long long)pool);
    o.pool = int32_t(pool);
    HKV_ASSIGN_OR_RETURN(std::string spill, spec.get_choice("spill", "end", {"end", "chunk"}));
    o.spill_chunk = spill == "chunk";
    if (o.taxonomy_path.empty()) {
        return Status::invalid("heterocache: option taxonomy=PATH is required (a head taxonomy JSON; make one for the "
                               "model with `heterokv calibrate`)");
    }
    auto t = taxonomy_load(o.taxonomy_path);
    if (!t.ok()) {
        return Status::invalid("heterocache: cannot use taxonomy %s (%s); make one with `heterokv calibrate`",
                               o.taxonomy_path.c_str(), t.status().message().c_str());
    }
    return std::unique_ptr<Policy>(new HeteroCachePolicy(o, std::move(t).value()));
}

}  // namespace hkv
