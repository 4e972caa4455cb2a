// policy/quest.cpp — Quest (Tang et al. 2024): query-aware page selection, no eviction.
// Every token stays in the cache; before each decode step's attention, per layer and KV head, each
// page of `page` tokens (16 by default, the paper's) of the head's keys is scored by the upper
// bound of q·k over its keys,
//   bound(page) = sum_d max(q_d * max_d, q_d * min_d),
// with min/max the elementwise extremes of the page's keys and q the sum of the GQA group's
// post-RoPE queries (one selection per KV head, which the group shares). The head attends only to
// the max(3, budget / page) pages of highest bound, always including the last page (which holds
// the current token), so a budget that is a multiple of the page attends to exactly `budget`
// tokens. The first `dense` layers (default 2) stay dense.
//
// The selection page is independent of the KV store's page (--kv-page-size, 64 by default): it
// must divide it, and the runtime presents the heads to attention in pages of `page` slots
// (PolicyInfo::select_page). Page bounds are cached per (layer, head, page) and updated only with
// rows appended since the previous step; the cache is dropped when the store's epoch changes
// (slots removed or rewritten: truncation, a failed step). Every segment is appended; nothing is
// evicted.
#include <algorithm>
#include <cmath>

#include "policy/select.h"

namespace hkv {
namespace {

class QuestPolicy final : public Policy {
public:
    QuestPolicy(int32_t budget, int32_t dense, int32_t page) : budget_(budget), dense_(dense), page_(page) {}
    PolicyInfo info() const override {
        PolicyInfo i;
        i.name = "quest";
        i.select_pages = true;
        i.select_page = page_;
        return i;
    }
    Status begin(const ModelShape& shape, const Segment&, KvBudget& budget) override {
        budget.init(shape.n_layer, shape.n_head_kv, -1);  // nothing is evicted
        cache_.assign(size_t(shape.n_layer) * size_t(shape.n_head_kv), HeadBounds());
        n_head_kv_ = shape.n_head_kv;
        epoch_ = 0;
        return Status();
    }
    Status on_layer(const LayerView& v, LayerPlan& plan) override {
        if (v.step != kStepSelect) return Status();
        if (!plan.select) return Status::internal("quest: a page selection step without a selection");
        return select(v, *plan.select);
    }

private:
    Status select(const LayerView& v, PageSelection& sel);  // on_layer at kStepSelect
    struct HeadBounds {
        std::vector<int32_t> rows;      // [n_pages] rows folded into mn/mx so far
        std::vector<float> mn, mx;      // [n_pages, head_dim]
    };
    void update_bounds(const LayerView& v, int32_t ih, int32_t ps, HeadBounds& hb);

    int32_t budget_, dense_, page_;
    int32_t n_head_kv_ = 0;
    uint64_t epoch_ = 0;
    std::vector<HeadBounds> cache_;     // [n_layer * n_head_kv]
    std::vector<float> qsum_, bound_;
};

// ps: slots per selected page.
void QuestPolicy::update_bounds(const LayerView& v, int32_t ih, int32_t ps, HeadBounds& hb) {
    const int32_t hd = v.head_dim, n = v.n_live[size_t(ih)];
    const int32_t n_pages = (n + ps - 1) / ps;
    hb.rows.resize(size_t(n_pages), 0);
    hb.mn.resize(size_t(n_pages) * size_t(hd), INFINITY);
    hb.mx.resize(size_t(n_pages) * size_t(hd), -INFINITY);
    for (int32_t p = 0; p < n_pages; ++p) {
        const int32_t rows = std::min(ps, n - p * ps);
        float* mn = hb.mn.data() + size_t(p) * size_t(hd);
        float* mx = hb.mx.data() + size_t(p) * size_t(hd);
        if (hb.rows[size_t(p)] > rows) {  // cannot happen within an epoch; start the page over
            hb.rows[size_t(p)] = 0;
            std::fill(mn, mn + hd, INFINITY);
            std::fill(mx, mx + hd, -INFINITY);
        }
        v.kv.key_extremes(ih, p * ps + hb.rows[size_t(p)], p * ps + rows, mn, mx);
        hb.rows[size_t(p)] = rows;
    }
}

Status QuestPolicy::select(const LayerView& v, PageSelection& sel) {
    if (v.il < dense_) return Status();
    if (cache_.size() != size_t(v.n_layer) * size_t(v.n_head_kv) || n_head_kv_ != v.n_head_kv) {
        return Status::internal("quest: select() before begin()");
    }
    if (v.kv.epoch() != epoch_) {  // slots were removed or rewritten: no cached bound can be trusted
        for (HeadBounds& hb : cache_) hb = HeadBounds();
        epoch_ = v.kv.epoch();
    }
    const std::span<const float> q = v.q;  // [n_head, head_dim] the step's query
    const int32_t ps = sel.page_size > 0 ? sel.page_size : page_, hd = v.head_dim;  // the runtime's = page_
    const int32_t group = v.n_head / v.n_head_kv;
    const int32_t n_sel = std::max(3, budget_ / ps);
    qsum_.resize(size_t(hd));
    for (int32_t ih = 0; ih < v.n_head_kv; ++ih) {
        const int32_t n_pages = (v.n_live[size_t(ih)] + ps - 1) / ps;
        if (n_pages <= n_sel) continue;  // everything fits: attend to all pages
        HeadBounds& hb = cache_[size_t(v.il) * size_t(v.n_head_kv) + size_t(ih)];
        update_bounds(v, ih, ps, hb);
        gqa_query_sum(q, ih, group, hd, qsum_.data());
        bound_.resize(size_t(n_pages));
        quest_bounds(qsum_.data(), hb.mn.data(), hb.mx.data(), n_pages, hd, bound_.data());
        int32_t* out = sel.pages.data() + size_t(ih) * size_t(sel.max_pages);
        top_k_indices(bound_.data(), n_pages - 1, n_sel - 1, out);  // the last page is always in
        out[n_sel - 1] = n_pages - 1;
        sel.n_pages[size_t(ih)] = n_sel;
    }
    return Status();
}

}  // namespace

Expected<std::unique_ptr<Policy>> quest_create(PolicySpec& spec) {
    if (!spec.has("budget")) return Status::invalid("quest: option budget=N (tokens attended per KV head) is required, or ratio=F (the fraction of the prompt kept)");
    HKV_ASSIGN_OR_RETURN(int64_t budget, spec.get_int("budget", 0, 1, int64_t(1) << 30));
    HKV_ASSIGN_OR_RETURN(int64_t dense, spec.get_int("dense", 2, 0, 1 << 20));
    HKV_ASSIGN_OR_RETURN(int64_t page, spec.get_int("page", 16, 1, 1 << 20));
    return std::unique_ptr<Policy>(new QuestPolicy(int32_t(budget), int32_t(dense), int32_t(page)));
}

}  // namespace hkv
