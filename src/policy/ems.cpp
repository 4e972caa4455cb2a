// policy/ems.cpp — EMS (Li et al. 2024, arXiv 2412.08521): Global-Local score and head-wise
// Evict-then-Merge with a zero class. Reconstruction of ../shared/docs/methods.md section 3.3; the
// document's ⟨choice⟩ points are options.
//
// Score, per KV head (GQA: the engine's scores are summed over the group), for the candidate
// slots [sinks, n - window):
//   global  s_G(j) = colsum(j) / (n_past - pos(j))    attention accumulated over every query that
//           could see the key (prompt and generated), divided by how many there were (causal-bias
//           correction); the column sums come from the attention kernel (StatRequest::from_lse:
//           its own probabilities over float keys, else one pass from its log-sum-exp), no n x n matrix
//   local   s_L(j) = attention of the last `window` queries of the step (decode: of the step's query)
//   both divided by their maximum over the candidates, combined by score=max (default) | sum |
//   global | local, then 1-D pooled (kernel, pool) for ranking.
// Evict-then-merge, per head holding n > keep slots: sinks and window kept; the top keep - sinks -
// window candidates by pooled score are retained and are the class centres; every other candidate
// goes to its most similar centre (cosine of keys) when the similarity reaches the head's threshold
// (default: the mean best similarity of the head's candidates, D2O-style; theta=X fixes it), else
// to the zero class (evicted). All heads of a layer go through one batched zero-class pass
// (policy/ems_merge.h); merged centres are written back into their slots (LayerPlan::writes) with
// their score lanes summed, so later compactions weigh them by everything they absorbed.
// mode=evict (no merging) and mode=merge (every candidate merged) are the ablations.
// Merge weights: weights=score uses s_GL as above; weights=attn (default) the attention a query
// along the centre's key would give each merged key relative to the centre (EmsBatch::qscale).
// Defaults (issue 18, docs/accuracy.md "EMS at equal KV bytes"): score=local, weights=attn. The
// paper's reconstruction is score=max,weights=score: on retrieval-1.4M its Global component and its
// score-weighted value averages each lose every needle (the ablation there); score=local needs no
// global sums, so no score lane, and holds SnapKV's bytes at the same budget.
// When: at every prompt segment's end (a later segment: over the survivors, their lanes carrying
// what they absorbed, and the new tokens), and during decoding whenever a head holds more than
// budget + window slots (the tokens that left the window are evicted or merged the same way), so
// a long generation runs in bounded memory (decode=0 turns this off: generated tokens are appended,
// as in the SnapKV family, for side-by-side comparisons with it).
// adaptive=1: AdaKV-style per-head budgets from the layer's global top-(H * B') pooled scores with
// floor alpha (B' = budget - sinks - window); the layer keeps H * budget slots as a uniform budget
// would.
#include <algorithm>
#include <cmath>

#include "core/vec.h"
#include "policy/ems_merge.h"
#include "policy/head_budgets.h"
#include "policy/select.h"

namespace hkv {
namespace {

enum class Combine { kMax, kSum, kGlobal, kLocal };
enum class Mode { kEvictThenMerge, kEvict, kMerge };

struct EmsOptions {
    SnapOptions snap;  // budget, window, sinks, kernel, pool
    Combine combine = Combine::kLocal;
    Mode mode = Mode::kEvictThenMerge;
    bool has_theta = false;
    float theta = 0.0f;
    EmsNorm norm = EmsNorm::kKeep;
    bool adaptive = false;
    double alpha = 0.2;
    bool decode = true;  // decode-time compaction (decode=0: prompt only, as the SnapKV family)
    bool attn_weights = true;   // weights=attn: attention-consistent merge weights (EmsBatch::qscale)
};

class EmsPolicy final : public Policy {
public:
    explicit EmsPolicy(const EmsOptions& o) : o_(o) {}
    PolicyInfo info() const override {
        PolicyInfo i;
        i.name = "ems";
        i.calls = kStepSegmentEnd;
        if (o_.decode) {  // compaction when a head exceeds budget + window
            i.decode = DecodeKv::kEvicts;
            i.decode_slack = o_.snap.evict.window;
        }
        StatRequest global{StatKind::kAttentionSum, kStepAll};  // column sums of every query
        global.from_lse = true;
        // the last `window` queries of the step; at a segment's end the engine makes the segment's
        // last chunk hold at least `window` tokens (SnapKV's observation window), so a prompt whose
        // last prefill chunk is short is still scored by `window` queries
        StatRequest local{StatKind::kAttention, kStepSegmentEnd | kStepDecode, o_.snap.evict.window, true};
        local.from_lse = true;
        // score=local needs no global sums, hence no score lane: the same bytes per slot as SnapKV
        if (uses_global()) i.stats = {global, local};
        else i.stats = {local};
        return i;
    }

    Status begin(const ModelShape& shape, const Segment&, KvBudget& budget) override {
        int32_t cap = o_.snap.evict.budget;
        if (o_.adaptive) {
            const double bsel = double(selected());
            cap = fixed() + int32_t(std::ceil((1.0 - o_.alpha) * double(shape.n_head_kv) * bsel + o_.alpha * bsel - 1e-9));
        }
        budget.init(shape.n_layer, shape.n_head_kv, cap);
        return Status();
    }

    // At a prompt segment's end (a later segment: over the survivors and the new tokens) and at a
    // decode step in which a head holds more than budget + window slots.
    Status on_layer(const LayerView& v, LayerPlan& plan) override { return compress(v, plan); }

private:
    int32_t fixed() const { return o_.snap.evict.window + o_.snap.evict.sinks; }
    bool uses_global() const { return o_.combine != Combine::kLocal; }
    // the global column sums (the score lane) when requested, else nullptr
    const float* lane_of(const LayerView& v, int32_t ih) const { return uses_global() ? v.stats[0].head(ih) : nullptr; }
    int32_t selected() const { return o_.snap.evict.budget - fixed(); }

    // Global-Local scores of head ih's candidates into sgl_[ih] (raw) and rank_[ih] (pooled).
    void score_head(const LayerView& v, int32_t ih) {
        const int32_t n = v.n_live[size_t(ih)], s0 = o_.snap.evict.sinks, w = o_.snap.evict.window;
        const int32_t nc = n - w - s0;  // candidates [s0, n - w)
        const float* lane = lane_of(v, ih);
        const float* loc = v.stats.back().head(ih);
        const PosLane& pos = v.pos[size_t(ih)];
        std::vector<float>& g = sgl_[size_t(ih)];
        g.resize(size_t(nc));
        loc_.resize(size_t(nc));
        float gm = 0.0f, lm = 0.0f;
        for (int32_t j = 0; j < nc; ++j) {
            const int32_t s = s0 + j;
            g[size_t(j)] = lane ? lane[s] / float(std::max(1, v.n_past - pos[s])) : 0.0f;
            loc_[size_t(j)] = loc[s];
            gm = std::max(gm, g[size_t(j)]), lm = std::max(lm, loc_[size_t(j)]);
        }
        const float gi = gm > 0.0f ? 1.0f / gm : 0.0f, li = lm > 0.0f ? 1.0f / lm : 0.0f;
        for (int32_t j = 0; j < nc; ++j) {
            const float a = g[size_t(j)] * gi, b = loc_[size_t(j)] * li;
            g[size_t(j)] = o_.combine == Combine::kMax ? std::max(a, b)
                           : o_.combine == Combine::kSum ? a + b
                           : o_.combine == Combine::kGlobal ? a : b;
        }
        std::vector<float>& r = rank_[size_t(ih)];
        r.resize(size_t(nc));
        const int32_t kernel = snap_kernel(o_.snap.kernel, nc);
        if (kernel > 1) pool1d(g.data(), nc, kernel, o_.snap.pool, r.data());
        else r = g;
    }

    // Per-head keep counts: uniform budget, or the AdaKV allocation over the heads that exceed it.
    void plan_keep(const LayerView& v) {
        const int32_t nh = v.n_head_kv;
        keep_.assign(size_t(nh), -1);
        std::vector<int32_t> heads;
        for (int32_t ih = 0; ih < nh; ++ih) {
            const int32_t b = o_.adaptive ? o_.snap.evict.budget : v.budget->at(v.il, ih);
            if (b > 0 && v.n_live[size_t(ih)] > b) heads.push_back(ih), keep_[size_t(ih)] = b;
        }
        if (!o_.adaptive || heads.empty()) return;
        const int32_t bsel = selected();
        flat_.clear();
        std::vector<int32_t> offset(heads.size() + 1, 0);
        for (size_t j = 0; j < heads.size(); ++j) {
            const std::vector<float>& r = rank_[size_t(heads[j])];
            flat_.insert(flat_.end(), r.begin(), r.end());
            offset[j + 1] = int32_t(flat_.size());
        }
        const std::vector<int32_t> b = adaptive_head_budgets(flat_, offset, bsel, o_.alpha, picks_);
        for (size_t j = 0; j < heads.size(); ++j) {
            const int32_t cand = offset[j + 1] - offset[j];
            keep_[size_t(heads[j])] = fixed() + std::min(b[j], cand);
        }
    }

    // weights=attn: batch_.qscale[ih] = mean |q| / sqrt(head_dim) over the step's last `window`
    // queries of the head's group (decode: the step's query).
    void query_scales(const LayerView& v) {
        batch_.qscale.clear();
        if (!o_.attn_weights || v.n_q < 1 || v.q.empty()) return;
        const int32_t nh = v.n_head_kv, D = v.head_dim, group = v.n_head / nh;
        const int32_t t0 = std::max(0, v.n_q - o_.snap.evict.window);
        batch_.qscale.assign(size_t(nh), 0.0f);
        for (int32_t ih = 0; ih < nh; ++ih) {
            double sum = 0.0;
            for (int32_t t = t0; t < v.n_q; ++t) {
                for (int32_t g = 0; g < group; ++g) {
                    const float* q = v.q.data() + (size_t(t) * size_t(v.n_head) + size_t(ih * group + g)) * size_t(D);
                    sum += std::sqrt(double(dot_f32(q, q, D)));
                }
            }
            batch_.qscale[size_t(ih)] = float(sum / double((v.n_q - t0) * group) / std::sqrt(double(D)));
        }
    }

    Status compress(const LayerView& v, LayerPlan& plan) {
        const int32_t nh = v.n_head_kv, s0 = o_.snap.evict.sinks, w = o_.snap.evict.window, D = v.head_dim;
        sgl_.resize(size_t(nh)), rank_.resize(size_t(nh));
        bool any = false;
        for (int32_t ih = 0; ih < nh; ++ih) {
            const int32_t b = o_.adaptive ? o_.snap.evict.budget : v.budget->at(v.il, ih);
            if (b > 0 && v.n_live[size_t(ih)] > b) any = true;
            if (v.n_live[size_t(ih)] > fixed()) score_head(v, ih);
        }
        if (!any) return Status();
        plan_keep(v);
        // retained centres per head, and the batch's shape
        int32_t n_center = 0;
        centers_.resize(size_t(nh));
        for (int32_t ih = 0; ih < nh; ++ih) {
            centers_[size_t(ih)].clear();
            if (keep_[size_t(ih)] < 0) continue;
            const int32_t nc = v.n_live[size_t(ih)] - fixed();
            const int32_t k = keep_[size_t(ih)] - fixed();
            centers_[size_t(ih)].resize(size_t(k));
            top_k_indices(rank_[size_t(ih)].data(), nc, k, centers_[size_t(ih)].data());
            n_center = std::max(n_center, k);
        }
        const int32_t n_slot = v.stats[0].stride;  // the largest live count of the layer
        batch_.resize(nh, n_slot, D, n_center);
        batch_.has_fixed_theta = o_.has_theta, batch_.fixed_theta = o_.theta;
        batch_.evict_only = o_.mode == Mode::kEvict, batch_.merge_all = o_.mode == Mode::kMerge;
        batch_.norm = o_.norm;
        query_scales(v);
        for (int32_t ih = 0; ih < nh; ++ih) {
            if (keep_[size_t(ih)] < 0) continue;
            const int32_t n = v.n_live[size_t(ih)];
            const size_t h0 = size_t(ih) * size_t(n_slot);
            const float* lane = lane_of(v, ih);
            // the candidates' keys and values as f32, [n - w - s0, D] each, into the batch
            v.kv.keys(ih, s0, n - w - s0, batch_.khat.data() + (h0 + size_t(s0)) * size_t(D));
            v.kv.values(ih, s0, n - w - s0, batch_.v.data() + (h0 + size_t(s0)) * size_t(D));
            for (int32_t s = s0; s < n - w; ++s) {
                const size_t hs = h0 + size_t(s);
                float* k = batch_.khat.data() + hs * size_t(D);
                float nn = 0.0f;
                for (int32_t d = 0; d < D; ++d) nn += k[d] * k[d];
                nn = std::sqrt(nn);
                const float inv = nn > 0.0f ? 1.0f / nn : 0.0f;
                for (int32_t d = 0; d < D; ++d) k[d] *= inv;
                batch_.knorm[hs] = nn;
                batch_.w[hs] = sgl_[size_t(ih)][size_t(s - s0)] + 1e-6f;  // never a zero total weight
                batch_.lane[hs] = lane ? lane[s] : 0.0f;
                batch_.role[hs] = kEmsTbm;
            }
            const std::vector<int32_t>& cs = centers_[size_t(ih)];
            for (size_t c = 0; c < cs.size(); ++c) {
                const int32_t slot = s0 + cs[c];
                batch_.role[h0 + size_t(slot)] = int32_t(c) + 1;
                batch_.center_slot[size_t(ih) * size_t(n_center + 1) + c + 1] = slot;
            }
        }
        ems_merge_batched(batch_);
        // the plan: sinks, centres, window kept; centres that absorbed slots rewritten
        writes_.clear();
        for (int32_t ih = 0; ih < nh; ++ih) {
            if (keep_[size_t(ih)] < 0) continue;
            const int32_t n = v.n_live[size_t(ih)];
            int32_t* idx = plan.head(ih);
            int32_t m = 0;
            for (int32_t s = 0; s < s0; ++s) idx[m++] = s;
            const std::vector<int32_t>& cs = centers_[size_t(ih)];
            for (size_t c = 0; c < cs.size(); ++c) {
                idx[m++] = s0 + cs[c];
                const size_t hc = size_t(ih) * size_t(n_center + 1) + c + 1;
                if (batch_.count[hc] <= 1) continue;  // nothing merged: the row stays bit for bit
                RowWrite sw;
                sw.head = ih, sw.slot = s0 + cs[c];
                sw.k = batch_.out_k.data() + hc * size_t(D);
                sw.v = batch_.out_v.data() + hc * size_t(D);
                sw.score = uses_global() ? batch_.acc_lane[hc] : NAN;  // no lane: leave it
                writes_.push_back(sw);
            }
            for (int32_t s = n - w; s < n; ++s) idx[m++] = s;
            plan.n_keep[size_t(ih)] = m;
        }
        plan.writes = writes_;
        return Status();
    }

    EmsOptions o_;
    std::vector<std::vector<float>> sgl_, rank_;  // [n_head_kv][candidates] raw and pooled s_GL
    std::vector<std::vector<int32_t>> centers_;   // [n_head_kv][kept candidates] (candidate index)
    std::vector<float> loc_, flat_;
    std::vector<int32_t> keep_, picks_;
    EmsBatch batch_;
    std::vector<RowWrite> writes_;
};

}  // namespace

Expected<std::unique_ptr<Policy>> ems_create(PolicySpec& spec) {
    EmsOptions o;
    HKV_TRY(read_evict_options(spec, 32, 4, &o.snap.evict));
    if (o.snap.evict.window < 1) {
        return Status::invalid("ems: window=0: the local score needs at least one recent query");
    }
    HKV_TRY(read_kernel_option(spec, true, &o.snap.kernel));  // kernel=auto by default
    HKV_ASSIGN_OR_RETURN(std::string pool, spec.get_choice("pool", "max", {"max", "avg"}));
    o.snap.pool = pool == "max" ? PoolKind::kMax : PoolKind::kAvg;
    HKV_ASSIGN_OR_RETURN(std::string score, spec.get_choice("score", "local", {"max", "sum", "global", "local"}));
    o.combine = score == "max" ? Combine::kMax : score == "sum" ? Combine::kSum
                : score == "global" ? Combine::kGlobal : Combine::kLocal;
    HKV_ASSIGN_OR_RETURN(std::string mode, spec.get_choice("mode", "etm", {"etm", "evict", "merge"}));
    o.mode = mode == "etm" ? Mode::kEvictThenMerge : mode == "evict" ? Mode::kEvict : Mode::kMerge;
    o.has_theta = spec.has("theta");
    HKV_ASSIGN_OR_RETURN(double theta, spec.get_float("theta", 0.0, -1.0, 1.0));
    o.theta = float(theta);
    if (o.has_theta && o.mode != Mode::kEvictThenMerge) {
        return Status::invalid("ems: theta applies to mode=etm only (mode=%s)", mode.c_str());
    }
    HKV_ASSIGN_OR_RETURN(std::string norm, spec.get_choice("norm", "keep", {"keep", "mean"}));
    o.norm = norm == "keep" ? EmsNorm::kKeep : EmsNorm::kMean;
    HKV_ASSIGN_OR_RETURN(int64_t adaptive, spec.get_int("adaptive", 0, 0, 1));
    o.adaptive = adaptive == 1;
    HKV_ASSIGN_OR_RETURN(double alpha, spec.get_float("alpha", 0.2, 0.0, 1.0));
    o.alpha = alpha;
    if (spec.has("alpha") && !o.adaptive) return Status::invalid("ems: alpha needs adaptive=1");
    HKV_ASSIGN_OR_RETURN(int64_t decode, spec.get_int("decode", 1, 0, 1));
    o.decode = decode == 1;
    HKV_ASSIGN_OR_RETURN(std::string weights, spec.get_choice("weights", o.mode == Mode::kEvict ? "score" : "attn", {"score", "attn"}));
    o.attn_weights = weights == "attn";
    if (o.attn_weights && o.mode == Mode::kEvict) return Status::invalid("ems: weights=attn needs merging (mode=evict)");
    return std::unique_ptr<Policy>(new EmsPolicy(o));
}

}  // namespace hkv
