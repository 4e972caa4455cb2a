// policy/dynsplit.cpp — DynSplit-KV (Ye et al. 2026, arXiv 2602.03184), as reconstructed in
// ../shared/docs/methods.md §2 (no public code). The prompt is split into variable-length semantic
// blocks and KV is kept or attended in whole blocks.
//
// Blocks (per layer, shared by the layer's KV heads), over the slots [sinks, n - window):
//   split=dd (default): DD-Select. Candidates are the slots right after a delimiter token
//     (ModelShape::token_flags, tokenizer/delimiters.h; candidates=all: every slot). A candidate at
//     position i scores s_i = r_i - alpha * (1 - r_i), where r_i is the mean, over the later queries
//     q with i < q <= i + band (every qstride-th query of each chunk, and the GQA group), of the
//     attention mass q puts on [i, q] (the rest is the distant context); norm=full normalises each
//     query over its whole row, norm=band over the band only. These come from the band pass
//     (StatKind::kBand) on every prefill chunk, accumulated by position.
//     Candidates are accepted greedily by score at least min_len apart, until the mean block length
//     reaches target (accept=target) or among those above mean + lambda * sd (accept=adaptive);
//     blocks longer than max_len are split at their best inner candidate, else every max_len slots.
//   split=fixed: blocks of `interval` slots (the rigid fixed-interval baseline; 8/16/32/64).
//   split=punct: a block ends at every delimiter (the rigid fixed-delimiter baseline), capped at
//     max_len.
// Uniform mapping: blocks are laid onto logical pages of `page` slots (blocks.h BlockPages: page ->
// block table, valid lengths), so block scores, bounds and the gathers are fixed-shape page
// operations followed by a small per-block combine.
//
// mode=evict (default; "C1"): token scores are SnapKV's (window attention of the last `window`
// queries, kernel-pooled, summed over the layer's heads); a block's score is the mean / max /
// sum/sqrt(len) of its tokens (block_score); whole blocks are kept best first while they fit in
// budget - sinks - window; sinks and window always stay. When: at=end (default) once at each prompt
// segment's end, over the whole prompt, as SnapKV and ChunkKV do; at=chunk (the reconstruction's
// peak-memory path) after EVERY prefill chunk in which the layer holds more than budget slots, so a
// long prompt prefilled in chunks of -b tokens never holds more than budget + chunk slots per head,
// but each chunk's blocks are judged by that chunk's last queries, before the prompt's end (a
// question there) is seen: on retrieval-1.4M it loses every needle not in the last chunks
// (docs/accuracy.md, "DynSplit-KV: when to evict"). No eviction during decoding (generated tokens
// are appended), as in SnapKV/ChunkKV.
// heads (evict): shared (default; the reconstruction's choice) selects one set of blocks per layer
// by the scores summed over its KV heads; each selects per KV head by the head's own scores (the
// SnapKV granularity; blocks from each head's own layout); adaptive also sizes each head's room
// as Ada-KV does (adakv.cpp: the layer's H * B' slots shared by the heads' picks in the global top
// H * B', at least floor * B' each), so a head may hold more than budget (its cap: head_cap).
// mode=select ("C2"): nothing is evicted; before each decode step (layers >= dense), per KV head,
// each mapping page gets Quest's bound sum_d max(q_d max_d, q_d min_d) over its keys (q = sum of the
// group's queries; min/max cached per page), a block's bound is the max over its pages, and the
// head attends to the KV-store pages of the best blocks, max(3, budget / kv_page_size) store pages
// in all, always including the pages of the sinks and the window (select defaults: window=1,
// sinks=0, i.e. only the current token's page is forced, as in Quest). Blocks are fixed at the first decode step;
// later tokens form blocks of max_len.
#include <algorithm>
#include <cmath>

#include "core/bytes.h"
#include "policy/blocks.h"
#include "policy/head_budgets.h"
#include "policy/select.h"

namespace hkv {
namespace {

enum class DynMode { kEvict, kSelect };
// heads=shared: one selection per layer (the layer's summed scores); each: per KV head, its own
// scores and blocks, the same budget; adaptive: per KV head, with Ada-KV's head budgets
enum class HeadsKind { kShared, kEach, kAdaptive };

struct DynSplitOptions {
    SnapOptions snap;                 // budget, window (32), sinks (4), kernel (7), pool (max)
    SplitOptions split;
    BlockScoreKind block_score = BlockScoreKind::kMean;
    bool candidates_all = false;
    float alpha = 1.0f;
    int32_t band = 32, qstride = 4;
    bool full_norm = true;
    int32_t page = 16;
    DynMode mode = DynMode::kEvict;
    bool at_chunk = false;            // evict after every prefill chunk (at=chunk), else at segment ends
    int32_t dense = 2;
    HeadsKind heads = HeadsKind::kShared;
    double floor = 0.2;               // heads=adaptive: every head keeps at least floor * its share
};

class DynSplitPolicy final : public Policy {
public:
    explicit DynSplitPolicy(const DynSplitOptions& o) : o_(o) {
        const bool evict = o_.mode == DynMode::kEvict, dd = o_.split.kind == SplitKind::kDd;
        // SnapKV token scores of the last `window` queries of each chunk (at=chunk) or of each
        // segment (at=end) (evict), DD-Select's band of every chunk (dd)
        const uint32_t evict_steps = o_.at_chunk ? kStepPrefill : kStepSegmentEnd;
        const StatRequest window{StatKind::kAttention, evict_steps, o_.snap.evict.window, true};
        StatRequest band{StatKind::kBand, kStepPrefill};
        band.band = o_.band;
        band.stride = o_.qstride;
        band.full_norm = o_.full_norm;
        if (evict) info_.stats = dd ? std::vector<StatRequest>{window, band} : std::vector<StatRequest>{window};
        else if (dd) info_.stats = {band};
        band_stat_ = dd ? int32_t(info_.stats.size()) - 1 : -1;
        info_.name = "dynsplit";
        // accumulate the band at every chunk; evict at the steps chosen
        info_.calls = band_stat_ >= 0 ? kStepPrefill : evict ? evict_steps : 0;
        info_.select_pages = !evict;
    }
    PolicyInfo info() const override { return info_; }
    Status begin(const ModelShape& shape, const Segment&, KvBudget& budget) override {
        const bool need_mask = o_.split.kind == SplitKind::kPunct || (o_.split.kind == SplitKind::kDd && !o_.candidates_all);
        if (need_mask && shape.token_flags.empty()) {
            return Status::invalid("dynsplit: split=%s needs the tokenizer's delimiter mask, which the engine did not give",
                                   o_.split.kind == SplitKind::kPunct ? "punct" : "dd");
        }
        flags_ = shape.token_flags;
        budget.init(shape.n_layer, shape.n_head_kv, o_.mode == DynMode::kEvict ? head_cap(shape.n_head_kv) : -1);
        dd_rec_.assign(size_t(shape.n_layer), {});
        dd_cnt_.assign(size_t(shape.n_layer), {});
        seg_.assign(size_t(shape.n_layer), {});
        bounds_cache_.assign(size_t(shape.n_layer) * size_t(shape.n_head_kv), PageBounds());
        epoch_ = 0;
        adopt_epoch_ = false;
        n_ctx_ = shape.n_ctx;
        return Status();
    }
    Status on_layer(const LayerView& v, LayerPlan& plan) override;
    // Saved contexts: the band sums and the prompt's blocks (select mode) carry over; the page
    // bounds are a cache rebuilt from the restored slots.
    Status state(PolicyStateIO& io) override { return io.saving() ? save_state(io.out) : load_state(io.in); }

private:
    Status select(const LayerView& v, PageSelection& sel);  // on_layer at kStepSelect
    Status save_state(std::string* out) const {
        ByteWriter w(out);
        w.vecs(dd_rec_);
        w.vecs(dd_cnt_);
        w.vecs(seg_);
        return Status();
    }
    Status load_state(std::string_view in) {
        ByteReader r(in);
        const uint64_t nl = dd_rec_.size(), n_ctx = uint64_t(std::max(n_ctx_, 0));
        std::vector<std::vector<float>> rec, cnt;
        std::vector<std::vector<int32_t>> seg;
        r.vecs(rec, nl, n_ctx);
        r.vecs(cnt, nl, n_ctx);
        r.vecs(seg, nl, n_ctx + 1);
        if (!r.done() || rec.size() != nl || cnt.size() != nl || seg.size() != nl) {
            return Status::invalid("dynsplit: saved state does not fit this model");
        }
        for (size_t il = 0; il < nl; ++il) {
            if (rec[il].size() != cnt[il].size()) return Status::invalid("dynsplit: saved band sums of layer %zu", il);
        }
        dd_rec_ = std::move(rec);
        dd_cnt_ = std::move(cnt);
        seg_ = std::move(seg);
        adopt_epoch_ = true;
        return Status();
    }

    struct PageBounds {             // per (layer, KV head): min/max keys of each mapping page
        std::vector<int32_t> start, valid;  // [n_pages] what each entry summarizes
        std::vector<float> mn, mx;          // [n_pages, head_dim]
    };
    bool is_delim(int32_t token) const {
        return token >= 0 && size_t(token) < flags_.size() && (flags_[size_t(token)] & kTokenSeparator) != 0;
    }
    void accumulate_band(const LayerView& v);
    // Splits slots [b, e) of head ih's layout into bounds_ (pos/tokens from the view).
    void split(const LayerView& v, int32_t ih, int32_t b, int32_t e);
    Status evict(const LayerView& v, LayerPlan& plan);
    Status evict_per_head(const LayerView& v, LayerPlan& plan);
    // Whole blocks of head ih's slots [s, prefix) by token_ within `room`, with sinks and window:
    // the kept slots to keep_.
    void keep_blocks(const LayerView& v, int32_t ih, int32_t prefix, int32_t room);
    // The most one head can hold: the budget, or with heads=adaptive the largest Ada-KV share.
    int32_t head_cap(int32_t n_head_kv) const {
        const EvictOptions& eo = o_.snap.evict;
        if (o_.heads != HeadsKind::kAdaptive) return eo.budget;
        const double sel = double(eo.budget - eo.window - eo.sinks);
        return eo.window + eo.sinks +
               int32_t(std::ceil((1.0 - o_.floor) * double(n_head_kv) * sel + o_.floor * sel - 1e-9));
    }
    void update_page_bounds(const LayerView& v, int32_t ih, PageBounds& pb);

    DynSplitOptions o_;
    PolicyInfo info_;
    int32_t band_stat_ = -1;                        // index of the kBand request, -1 = none
    std::span<const uint8_t> flags_;                // [n_vocab] ModelShape::token_flags
    std::vector<std::vector<float>> dd_rec_, dd_cnt_;  // [n_layer][position] band sums over heads
    std::vector<std::vector<int32_t>> seg_;         // [n_layer] select mode: bounds fixed at first decode
    std::vector<PageBounds> bounds_cache_;          // [n_layer * n_head_kv]
    uint64_t epoch_ = 0;
    bool adopt_epoch_ = false;                      // restored: seg_ is valid for the new epoch
    int32_t n_ctx_ = 0;
    // scratch
    std::vector<uint8_t> cand_;                     // [n_slot]
    std::vector<float> dd_score_, token_, pooled_, block_score_, qsum_, page_bound_;
    std::vector<int32_t> bounds_, order_, keep_;
    std::vector<int32_t> heads_, offset_, cand_off_, picks_;  // evict_per_head
    std::vector<float> flat_, cand_score_;
    std::vector<uint8_t> taken_, page_on_;
    BlockPages bp_;
    PagedScratch paged_;
};

void DynSplitPolicy::accumulate_band(const LayerView& v) {
    if (band_stat_ < 0 || v.stats[size_t(band_stat_)].values.empty()) return;
    const StatValues& b = v.stats[size_t(band_stat_)];
    std::vector<float>& rec = dd_rec_[size_t(v.il)];
    std::vector<float>& cnt = dd_cnt_[size_t(v.il)];
    if (rec.size() < size_t(v.n_past)) {
        rec.resize(size_t(v.n_past), 0.0f);
        cnt.resize(size_t(v.n_past), 0.0f);
    }
    for (int32_t ih = 0; ih < v.n_head_kv; ++ih) {
        const float* recent = b.head(ih);
        const float* count = b.head_counts(ih);
        const PosLane& pos = v.pos[size_t(ih)];
        for (int32_t s = 0; s < v.n_live[size_t(ih)]; ++s) {
            const float c = count[s];
            const int32_t p = pos[s];
            if (c == 0.0f || p < 0 || p >= v.n_past) continue;
            rec[size_t(p)] += recent[s];
            cnt[size_t(p)] += c;
        }
    }
}

void DynSplitPolicy::split(const LayerView& v, int32_t ih, int32_t b, int32_t e) {
    const SplitOptions& so = o_.split;
    if (so.kind == SplitKind::kFixed) {
        split_fixed(b, e, so.interval, bounds_);
        return;
    }
    const PosLane& pos = v.pos[size_t(ih)];
    cand_.assign(size_t(std::max(e, 1)), 0);
    for (int32_t i = b + 1; i < e; ++i) {
        const int32_t prev = pos[i - 1];
        const bool delim = prev >= 0 && size_t(prev) < v.tokens.size() && is_delim(v.tokens[size_t(prev)]);
        cand_[size_t(i)] = (o_.candidates_all && so.kind == SplitKind::kDd) || delim ? 1 : 0;
    }
    if (so.kind == SplitKind::kPunct) {
        split_punct(cand_.data(), b, e, so, bounds_);
        return;
    }
    const std::vector<float>& rec = dd_rec_[size_t(v.il)];
    const std::vector<float>& cnt = dd_cnt_[size_t(v.il)];
    dd_score_.assign(size_t(std::max(e, 1)), -INFINITY);
    for (int32_t i = b + 1; i < e; ++i) {
        const size_t p = size_t(pos[i]);
        if (p >= cnt.size() || cnt[p] == 0.0f) continue;  // no later query saw it: not scored
        const float r = rec[p] / cnt[p];
        dd_score_[size_t(i)] = r - o_.alpha * (1.0f - r);
    }
    split_dd(cand_.data(), dd_score_.data(), b, e, so, bounds_);
}

Status DynSplitPolicy::on_layer(const LayerView& v, LayerPlan& plan) {
    if (v.step == kStepSelect) {
        if (!plan.select) return Status::internal("dynsplit: a page selection step without a selection");
        return select(v, *plan.select);
    }
    accumulate_band(v);
    if (o_.mode != DynMode::kEvict || (!o_.at_chunk && v.step != kStepSegmentEnd)) return Status();
    return evict(v, plan);
}

Status DynSplitPolicy::evict(const LayerView& v, LayerPlan& plan) {
    if (o_.heads != HeadsKind::kShared) return evict_per_head(v, plan);
    const int32_t nh = v.n_head_kv, n = v.n_live[0];
    for (int32_t ih = 1; ih < nh; ++ih) {
        if (v.n_live[size_t(ih)] != n) {
            return Status::internal("dynsplit: layer %d heads hold different slot counts (%d, %d)", v.il, n,
                                    v.n_live[size_t(ih)]);
        }
    }
    const EvictOptions& eo = o_.snap.evict;
    if (n <= eo.budget) return Status();
    const int32_t w = eo.window, s = eo.sinks, prefix = n - w;
    // token scores: pooled window attention summed over the layer's heads  [prefix]
    token_.assign(size_t(prefix), 0.0f);
    pooled_.resize(size_t(prefix));
    const int32_t kernel = snap_kernel(o_.snap.kernel, prefix);
    for (int32_t ih = 0; ih < nh; ++ih) {
        pool1d(v.stats[0].head(ih), prefix, kernel, o_.snap.pool, pooled_.data());
        for (int32_t i = 0; i < prefix; ++i) token_[size_t(i)] += pooled_[size_t(i)];
    }
    keep_blocks(v, 0, prefix, eo.budget - w - s);  // head 0: every head has the same layout
    for (int32_t ih = 0; ih < nh; ++ih) {
        std::copy(keep_.begin(), keep_.end(), plan.head(ih));
        plan.n_keep[size_t(ih)] = int32_t(keep_.size());
    }
    return Status();
}

void DynSplitPolicy::keep_blocks(const LayerView& v, int32_t ih, int32_t prefix, int32_t room) {
    const int32_t w = o_.snap.evict.window, s = o_.snap.evict.sinks, n = prefix + w;
    split(v, ih, s, prefix);
    block_pages_build(bounds_, o_.page, bp_);
    block_scores_paged(bp_, token_.data(), o_.block_score, paged_, block_score_);
    blocks_select(block_score_, bp_.bounds, room, order_, taken_);
    // gather: sinks, the taken blocks page by page, window
    keep_.clear();
    for (int32_t i = 0; i < s; ++i) keep_.push_back(i);
    for (int32_t p = 0; p < bp_.n_pages(); ++p) {
        if (!taken_[size_t(bp_.page_block[size_t(p)])]) continue;
        const int32_t b = bp_.page_start[size_t(p)];
        for (int32_t i = b; i < b + bp_.page_valid[size_t(p)]; ++i) keep_.push_back(i);
    }
    for (int32_t i = prefix; i < n; ++i) keep_.push_back(i);
}

// heads=each|adaptive: every KV head ranks its own blocks by its own pooled window attention (the
// GQA group's, as SnapKV's per-head top-k); the blocks follow each head's own layout (heads differ
// after the first eviction). adaptive: the room of head h is Ada-KV's b_h (adakv.cpp): the layer's
// H * B' slots shared in proportion to each head's picks in the global top H * B' of the pooled
// scores, with a floor of `floor` * B'.
Status DynSplitPolicy::evict_per_head(const LayerView& v, LayerPlan& plan) {
    const EvictOptions& eo = o_.snap.evict;
    const int32_t w = eo.window, s = eo.sinks, sel = eo.budget - w - s;
    heads_.clear();
    for (int32_t ih = 0; ih < v.n_head_kv; ++ih) {
        if (v.n_live[size_t(ih)] > eo.budget) heads_.push_back(ih);  // the others keep everything
    }
    if (heads_.empty()) return Status();
    // pooled scores of each head's non-window slots, head after head  [sum of prefixes]
    flat_.clear();
    offset_.assign(heads_.size() + 1, 0);
    for (size_t j = 0; j < heads_.size(); ++j) {
        const int32_t prefix = v.n_live[size_t(heads_[j])] - w;
        pooled_.resize(size_t(prefix));
        pool1d(v.stats[0].head(heads_[j]), prefix, snap_kernel(o_.snap.kernel, prefix), o_.snap.pool, pooled_.data());
        flat_.insert(flat_.end(), pooled_.begin(), pooled_.end());
        offset_[j + 1] = int32_t(flat_.size());
    }
    std::vector<int32_t> room(heads_.size(), sel);
    if (o_.heads == HeadsKind::kAdaptive) {
        // candidates [s, prefix) of every head, flattened, for the global top H * B'
        cand_score_.clear();
        cand_off_.assign(heads_.size() + 1, 0);
        for (size_t j = 0; j < heads_.size(); ++j) {
            cand_score_.insert(cand_score_.end(), flat_.begin() + offset_[j] + s, flat_.begin() + offset_[j + 1]);
            cand_off_[j + 1] = int32_t(cand_score_.size());
        }
        room = adaptive_head_budgets(cand_score_, cand_off_, sel, o_.floor, picks_);
    }
    for (size_t j = 0; j < heads_.size(); ++j) {
        const int32_t ih = heads_[j], prefix = v.n_live[size_t(ih)] - w;
        token_.assign(flat_.begin() + offset_[j], flat_.begin() + offset_[j + 1]);
        keep_blocks(v, ih, prefix, room[j]);
        std::copy(keep_.begin(), keep_.end(), plan.head(ih));
        plan.n_keep[size_t(ih)] = int32_t(keep_.size());
    }
    return Status();
}

void DynSplitPolicy::update_page_bounds(const LayerView& v, int32_t ih, PageBounds& pb) {
    const int32_t hd = v.head_dim, np = bp_.n_pages();
    pb.start.resize(size_t(np), -1);
    pb.valid.resize(size_t(np), 0);
    pb.mn.resize(size_t(np) * size_t(hd));
    pb.mx.resize(size_t(np) * size_t(hd));
    for (int32_t p = 0; p < np; ++p) {
        const int32_t b = bp_.page_start[size_t(p)], nv = bp_.page_valid[size_t(p)];
        if (pb.start[size_t(p)] == b && pb.valid[size_t(p)] == nv) continue;  // cached
        float* mn = pb.mn.data() + size_t(p) * size_t(hd);
        float* mx = pb.mx.data() + size_t(p) * size_t(hd);
        std::fill(mn, mn + hd, INFINITY);
        std::fill(mx, mx + hd, -INFINITY);
        v.kv.key_extremes(ih, b, b + nv, mn, mx);
        pb.start[size_t(p)] = b;
        pb.valid[size_t(p)] = nv;
    }
}

Status DynSplitPolicy::select(const LayerView& v, PageSelection& sel) {
    if (v.il < o_.dense) return Status();
    if (seg_.size() != size_t(v.n_layer) || bounds_cache_.size() != size_t(v.n_layer) * size_t(v.n_head_kv)) {
        return Status::internal("dynsplit: select() before begin()");
    }
    if (v.kv.epoch() != epoch_) {  // slots removed (truncation): blocks and bounds are stale
        if (!adopt_epoch_) {
            for (auto& sg : seg_) sg.clear();
        }
        for (PageBounds& pb : bounds_cache_) pb = PageBounds();
        epoch_ = v.kv.epoch();
        adopt_epoch_ = false;
    }
    const std::span<const float> q = v.q;  // [n_head, head_dim] the step's query
    const int32_t n = v.n_live[0], ps = v.kv.page_size(), hd = v.head_dim;
    const int32_t w = o_.snap.evict.window, s = o_.snap.evict.sinks;
    const int32_t n_store = (n + ps - 1) / ps, n_sel = std::max(3, o_.snap.evict.budget / ps);
    if (n_store <= n_sel || n - w <= s) return Status();
    for (int32_t ih = 1; ih < v.n_head_kv; ++ih) {
        if (v.n_live[size_t(ih)] != n) return Status::internal("dynsplit: layer %d heads differ in length", v.il);
    }
    std::vector<int32_t>& seg = seg_[size_t(v.il)];
    for (size_t i = 0; i < seg.size(); ++i) {  // restored blocks must be ascending inside the layout
        if (seg.size() < 2 || seg[i] < 0 || seg[i] > n - w || (i > 0 && seg[i] <= seg[i - 1])) {
            seg.clear();
            break;
        }
    }
    if (seg.empty()) {  // first decode step: the prompt's blocks
        split(v, 0, s, n - w);  // head 0: every head of the layer has the same layout
        seg = bounds_;
    }
    // the fixed prompt blocks, then later tokens in blocks of max_len, up to the window
    bounds_ = seg;
    for (int32_t b = seg.back() + o_.split.max_len; b < n - w; b += o_.split.max_len) bounds_.push_back(b);
    if (n - w > bounds_.back()) bounds_.push_back(n - w);
    block_pages_build(bounds_, o_.page, bp_);
    const int32_t group = v.n_head / v.n_head_kv;
    qsum_.resize(size_t(hd));
    for (int32_t ih = 0; ih < v.n_head_kv; ++ih) {
        PageBounds& pb = bounds_cache_[size_t(v.il) * size_t(v.n_head_kv) + size_t(ih)];
        update_page_bounds(v, ih, pb);
        gqa_query_sum(q, ih, group, hd, qsum_.data());
        // page bounds [n_pages], then the per-block combine (max over the block's pages)
        page_bound_.resize(size_t(bp_.n_pages()));
        quest_bounds(qsum_.data(), pb.mn.data(), pb.mx.data(), bp_.n_pages(), hd, page_bound_.data());
        block_score_.assign(size_t(bp_.n_blocks()), -INFINITY);
        for (int32_t p = 0; p < bp_.n_pages(); ++p) {
            float& bs = block_score_[size_t(bp_.page_block[size_t(p)])];
            bs = std::max(bs, page_bound_[size_t(p)]);
        }
        // store pages: sinks and window first, then whole blocks best first while they fit
        page_on_.assign(size_t(n_store), 0);
        int32_t used = 0;
        auto mark = [&](int32_t first, int32_t last) {
            for (int32_t pg = first; pg <= last; ++pg) {
                if (!page_on_[size_t(pg)]) ++used;
                page_on_[size_t(pg)] = 1;
            }
        };
        if (s > 0) mark(0, (s - 1) / ps);
        mark((n - w) / ps, n_store - 1);
        order_.resize(size_t(bp_.n_blocks()));
        for (int32_t j = 0; j < bp_.n_blocks(); ++j) order_[size_t(j)] = j;
        std::stable_sort(order_.begin(), order_.end(),
                         [&](int32_t a, int32_t b) { return block_score_[size_t(a)] > block_score_[size_t(b)]; });
        for (int32_t j : order_) {
            const int32_t first = bp_.bounds[size_t(j)] / ps, last = (bp_.bounds[size_t(j) + 1] - 1) / ps;
            int32_t extra = 0;
            for (int32_t pg = first; pg <= last; ++pg) extra += page_on_[size_t(pg)] ? 0 : 1;
            if (used + extra <= n_sel) mark(first, last);
        }
        int32_t* out = sel.pages.data() + size_t(ih) * size_t(sel.max_pages);
        int32_t k = 0;
        for (int32_t pg = 0; pg < n_store; ++pg) {
            if (page_on_[size_t(pg)]) out[k++] = pg;
        }
        sel.n_pages[size_t(ih)] = k;
    }
    return Status();
}

}  // namespace

Expected<std::unique_ptr<Policy>> dynsplit_create(PolicySpec& spec) {
    DynSplitOptions o;
    const bool sinks_given = spec.has("sinks"), window_given = spec.has("window");
    HKV_TRY(read_snap_options(spec, &o.snap));  // kernel=7 by default; kernel=auto is an option
    EvictOptions& eo = o.snap.evict;
    HKV_ASSIGN_OR_RETURN(std::string mode, spec.get_choice("mode", "evict", {"evict", "select"}));
    const bool select_mode = mode == "select";
    // evict: 4 sinks; select: like Quest only the current page is forced (window 1, no sinks), so
    // at small budgets the pages go to the best blocks
    if (!sinks_given) eo.sinks = select_mode ? 0 : 4;
    if (!window_given && select_mode) eo.window = 1;
    if (eo.sinks + eo.window >= eo.budget) {
        return Status::invalid("dynsplit: sinks=%d + window=%d must be smaller than budget=%d", eo.sinks, eo.window,
                               eo.budget);
    }
    HKV_ASSIGN_OR_RETURN(std::string split, spec.get_choice("split", "dd", {"dd", "fixed", "punct"}));
    HKV_ASSIGN_OR_RETURN(std::string accept, spec.get_choice("accept", "target", {"target", "adaptive"}));
    HKV_ASSIGN_OR_RETURN(std::string cands, spec.get_choice("candidates", "punct", {"punct", "all"}));
    HKV_ASSIGN_OR_RETURN(std::string norm, spec.get_choice("norm", "full", {"full", "band"}));
    HKV_ASSIGN_OR_RETURN(std::string bscore, spec.get_choice("block_score", "mean", {"mean", "max", "sqrt"}));
    HKV_ASSIGN_OR_RETURN(std::string at, spec.get_choice("at", "end", {"end", "chunk"}));
    HKV_ASSIGN_OR_RETURN(int64_t interval, spec.get_int("interval", 16, 1, 1 << 20));
    HKV_ASSIGN_OR_RETURN(int64_t min_len, spec.get_int("min_len", 4, 1, 1 << 20));
    HKV_ASSIGN_OR_RETURN(int64_t max_len, spec.get_int("max_len", 64, 1, 1 << 20));
    HKV_ASSIGN_OR_RETURN(int64_t target, spec.get_int("target", 16, 1, 1 << 20));
    HKV_ASSIGN_OR_RETURN(double lambda, spec.get_float("lambda", 0.5, -10.0, 10.0));
    HKV_ASSIGN_OR_RETURN(double alpha, spec.get_float("alpha", 1.0, 0.0, 100.0));
    HKV_ASSIGN_OR_RETURN(int64_t band, spec.get_int("band", 32, 1, 1 << 16));
    HKV_ASSIGN_OR_RETURN(int64_t qstride, spec.get_int("qstride", 4, 1, 1 << 16));
    HKV_ASSIGN_OR_RETURN(int64_t page, spec.get_int("page", 16, 1, 1 << 16));
    HKV_ASSIGN_OR_RETURN(int64_t dense, spec.get_int("dense", 2, 0, 1 << 20));
    HKV_ASSIGN_OR_RETURN(std::string heads, spec.get_choice("heads", "shared", {"shared", "each", "adaptive"}));
    HKV_ASSIGN_OR_RETURN(double floor, spec.get_float("floor", 0.2, 0.0, 1.0));
    // options that only mean something for another split or mode are errors, not silently ignored
    for (const char* k : {"accept", "candidates", "norm", "min_len", "target", "lambda", "alpha", "band", "qstride"}) {
        if (split != "dd" && spec.has(k)) return Status::invalid("dynsplit: option %s applies to split=dd only", k);
    }
    if (split != "fixed" && spec.has("interval")) return Status::invalid("dynsplit: option interval applies to split=fixed only");
    if (split == "fixed" && spec.has("max_len")) return Status::invalid("dynsplit: option max_len does not apply to split=fixed");
    if (mode == "select" && (spec.has("kernel") || spec.has("pool"))) {
        return Status::invalid("dynsplit: kernel and pool (token scores) apply to mode=evict only");
    }
    if (mode == "select" && spec.has("at")) return Status::invalid("dynsplit: option at applies to mode=evict only");
    if (mode != "select" && spec.has("dense")) return Status::invalid("dynsplit: option dense applies to mode=select only");
    if (mode == "select" && spec.has("heads")) return Status::invalid("dynsplit: option heads applies to mode=evict only");
    if (heads != "adaptive" && spec.has("floor")) return Status::invalid("dynsplit: option floor applies to heads=adaptive only");
    if (accept != "adaptive" && spec.has("lambda")) return Status::invalid("dynsplit: option lambda applies to accept=adaptive only");
    if (mode == "select" && spec.has("block_score")) {
        return Status::invalid("dynsplit: mode=select scores blocks by their key bounds; block_score applies to mode=evict");
    }
    if (min_len > max_len) {
        return Status::invalid("dynsplit: min_len=%lld must not exceed max_len=%lld", (long long)min_len, (long long)max_len);
    }
    const int32_t room = eo.budget - eo.window - eo.sinks;
    if (!spec.has("max_len")) max_len = std::min<int64_t>(max_len, room);  // default: min(64, room)
    if (!spec.has("min_len")) min_len = std::min(min_len, max_len);
    const int64_t longest = split == "fixed" ? interval : max_len;
    if (mode == "evict" && longest > room) {
        return Status::invalid("dynsplit: blocks of up to %s=%lld slots do not fit in budget - window - sinks = %d",
                               split == "fixed" ? "interval" : "max_len", (long long)longest, room);
    }
    o.mode = mode == "evict" ? DynMode::kEvict : DynMode::kSelect;
    o.split.kind = split == "dd" ? SplitKind::kDd : split == "fixed" ? SplitKind::kFixed : SplitKind::kPunct;
    o.split.accept = accept == "target" ? AcceptKind::kTarget : AcceptKind::kAdaptive;
    o.split.interval = int32_t(interval);
    o.split.min_len = int32_t(min_len);
    o.split.max_len = int32_t(max_len);
    o.split.target = int32_t(target);
    o.split.lambda = float(lambda);
    o.candidates_all = cands == "all";
    o.alpha = float(alpha);
    o.band = int32_t(band);
    o.qstride = int32_t(qstride);
    o.full_norm = norm == "full";
    o.block_score = bscore == "mean" ? BlockScoreKind::kMean : bscore == "max" ? BlockScoreKind::kMax : BlockScoreKind::kSqrt;
    o.page = int32_t(page);
    o.at_chunk = at == "chunk";
    o.dense = int32_t(dense);
    o.heads = heads == "shared" ? HeadsKind::kShared : heads == "each" ? HeadsKind::kEach : HeadsKind::kAdaptive;
    o.floor = floor;
    return std::unique_ptr<Policy>(new DynSplitPolicy(o));
}

}  // namespace hkv
