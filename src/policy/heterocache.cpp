// policy/heterocache.cpp — HeteroCache (arXiv 2601.13684; reference code ponytaill/HeteroCache), as
// specified in ../shared/docs/methods.md §1.4 and §1.7.
//
// Roles come from a taxonomy file (policy/heterocache_taxonomy.h, made by `heterokv calibrate`):
//   volatile, pivot   full KV (budget -1);
//   anchor            compressed once at the prompt's end to cap_h slots (static);
//   satellite         compressed to cap_h hot slots; its whole prompt K/V goes to the KV store's
//                     cold tier (ColdOpKind::kSpill; host RAM, or files under --kv-cold-dir).
// Budgets: heterocache_budget() = the reference's get_compress_len (base from the ratio cr).
// Prefill (prompt's last chunk): per KV head, the last prompt query's softmax over the keys,
// avg-pooled (kernel `pool`), max over the GQA group; anchors/satellites keep their top cap_h
// slots in position order (no window, no sinks); a pivot's reference set R_p = its top base.
// Defaults (issue 18, docs/accuracy.md): obs=32, weights=adaptive; the reference's selection is
// obs=1,weights=taxonomy (the fidelity goldens pin it).
// weights=adaptive: per layer, the anchors and satellites share the sum of their uniform caps by
// score, as AdaKV shares a layer's budget (floor alpha=0.2 of the uniform cap per head).
// layers=pyramid (default flat): before that sharing, the compressed heads' caps are re-spread over
// the layers on PyramidKV's linear schedule (hc_pyramid_caps, strength beta=20 as PyramidKV's),
// lower layers more, the same total slots; each layer's heads are scaled alike.
// obs=N (N > 1): anchors and satellites are scored instead by the causal softmax rows of the
// prompt's last N queries summed (an observation window, as SnapKV's), then pooled and maxed the
// same way; pivots keep the last query, which is what the drift monitor compares against.
// recent=R (default: obs when obs > 1, else 0): anchors and satellites always keep the prompt's
// last R slots and select the rest of cap_h among the older ones (hc_keep), as SnapKV keeps its
// observation window: the causal window sums give the last tokens only the few queries that can
// see them, so a window without it drops the question's end (docs/accuracy.md, issue 18). A
// refresh with select=topk keeps the same last R prompt rows.
// Decode: new tokens are appended to every head (no eviction). Every W steps, per pivot with
// satellites, the W buffered queries of its group score the pivot's PROMPT keys (same scoring);
// o_t = |top_base(A_t) ∩ R_p| / base; if median(o) < tau: R_p <- top_base(A_W) and each satellite
// s gets n_s = cap_s rows of A_W — its own top n_s (select=topk) or the earliest n_s of the top
// max_s n_s (select=reference, the reference code's behaviour) — sorted by position, planned as a
// ColdOpKind::kRefresh that the store gathers from the cold tier on its I/O thread and writes over
// the satellite's prefill slots [0, n_s) before the same layer's attention at the next step
// (waited for there: the exposed time).
// A later segment (a question after the prompt, a chat turn) is appended to every head like
// decode tokens: only the first segment is compressed and spilled, and the monitor keeps scoring
// the pivots' prompt keys.
// kv=CLASS:TYPE[+VTYPE]/... (per-head precision, issue 19 item 5): each named class's heads store
// their K/V rows in those types (PolicyInfo::kv_types; the engine sizes each head's pages by them).
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
#include <cstdio>

#include "core/bytes.h"
#include "policy/head_budgets.h"
#include "policy/select.h"

namespace hkv {
namespace {

double ms_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

void hc_pool_max(const float* probs, int32_t group, int32_t n, int32_t pool, float* out, std::vector<float>& tmp) {
    // block by block, so each block of the group's rows is pooled and maxed while in cache
    constexpr int32_t kBlock = 2048;
    tmp.resize(size_t(std::min(n, kBlock)));
    float* pooled = tmp.data();
    for (int32_t b0 = 0; b0 < n; b0 += kBlock) {
        const int32_t b1 = std::min(n, b0 + kBlock), m = b1 - b0;
        float* o = out + b0;
        std::fill(o, o + m, -INFINITY);
        for (int32_t g = 0; g < group; ++g) {
            pool1d_range(probs + size_t(g) * size_t(n), n, pool, PoolKind::kAvg, b0, b1, pooled);
            for (int32_t s = 0; s < m; ++s) o[s] = std::max(o[s], pooled[s]);
        }
    }
}

void hc_head_scores(const KvLayerView& kv, int32_t ih, const float* q, int32_t group, int32_t n, float scale,
                    int32_t pool, float* out, std::vector<float>& probs, std::vector<float>& tmp) {
    probs.resize(size_t(group) * size_t(n));
    kv.key_probs(ih, q, group, n, scale, probs.data(), n);
    hc_pool_max(probs.data(), group, n, pool, out, tmp);
}

void hc_window_scores(const LayerView& v, int32_t ih, int32_t m, int32_t n, int32_t pool, float* out, HcScratch& sc) {
    const int32_t hd = v.head_dim, group = v.n_head / v.n_head_kv;
    const float scale = 1.0f / std::sqrt(float(hd));
    // the group's last m queries, [group, m, head_dim]
    sc.q.resize(size_t(group) * size_t(m) * size_t(hd));
    for (int32_t g = 0; g < group; ++g) {
        for (int32_t i = 0; i < m; ++i) {
            const int32_t t = v.n_q - m + i;
            std::copy_n(v.q.data() + (size_t(t) * size_t(v.n_head) + size_t(ih * group + g)) * size_t(hd), hd,
                        sc.q.data() + (size_t(g) * size_t(m) + size_t(i)) * size_t(hd));
        }
    }
    sc.probs.resize(size_t(group) * size_t(m) * size_t(n));
    v.kv.key_probs(ih, sc.q.data(), group * m, n, scale, sc.probs.data(), n);
    // causal: query i (position n_past - m + i) sees the slots at or before it; its softmax over the
    // visible slots is the full row renormalised over them. Summed over the window: sums [group, n].
    sc.pos.resize(size_t(n));
    const int32_t* pos = v.pos[size_t(ih)].rows(0, size_t(n), sc.pos.data());  // a plain array for the loops below
    sc.sums.assign(size_t(group) * size_t(n), 0.0f);
    for (int32_t g = 0; g < group; ++g) {
        float* acc = sc.sums.data() + size_t(g) * size_t(n);
        for (int32_t i = 0; i < m; ++i) {
            const float* p = sc.probs.data() + (size_t(g) * size_t(m) + size_t(i)) * size_t(n);
            const int32_t qpos = v.n_past - m + i;
            double z = 0.0;
            for (int32_t s = 0; s < n; ++s) z += pos[s] <= qpos ? double(p[s]) : 0.0;
            const float inv = z > 0.0 ? float(1.0 / z) : 0.0f;
            for (int32_t s = 0; s < n; ++s) acc[s] += pos[s] <= qpos ? p[s] * inv : 0.0f;
        }
    }
    hc_pool_max(sc.sums.data(), group, n, pool, out, sc.tmp);
}

void hc_keep(const float* score, int32_t n, int32_t cap, int32_t recent, int32_t* out) {
    cap = std::clamp(cap, 0, n);
    const int32_t r = std::clamp(recent, 0, cap);
    top_k_indices(score, n - r, cap - r, out);  // sorted, all < n - r
    for (int32_t i = 0; i < r; ++i) out[cap - r + i] = n - r + i;
}

void hc_keep_among(const float* score, int32_t n, const int32_t* cand, int32_t n_cand, int32_t cap, int32_t recent,
                   int32_t* out, std::vector<float>& cs, std::vector<int32_t>& idx) {
    cap = std::clamp(cap, 0, n);
    const int32_t r = std::clamp(recent, 0, cap);
    // The top cap - r of [0, n - r) are among the top cap of [0, n): at most r of those lie in the
    // tail, and ties rank the earlier (prefix) slot first. The candidates below n - r are a prefix
    // of cand (ascending); ranking their scores in that order keeps the tie rule.
    int32_t m = 0;
    while (m < n_cand && cand[m] < n - r) ++m;
    cs.resize(size_t(m));
    for (int32_t i = 0; i < m; ++i) cs[size_t(i)] = score[cand[i]];
    const int32_t k = cap - r;
    idx.resize(size_t(std::max(k, 0)));
    top_k_indices(cs.data(), m, std::min(k, m), idx.data());
    for (int32_t i = 0; i < std::min(k, m); ++i) out[i] = cand[idx[size_t(i)]];
    for (int32_t i = 0; i < r; ++i) out[cap - r + i] = n - r + i;
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

std::vector<int64_t> hc_pyramid_caps(const Taxonomy& t, const std::vector<int64_t>& cap, int64_t n_prompt, double beta) {
    const int32_t nl = t.n_layer, nh = t.n_head_kv;
    auto comp = [&](int32_t il, int32_t ih) {
        const HeadRole r = t.role_of(il, ih);
        return r == HeadRole::kAnchor || r == HeadRole::kSatellite;
    };
    // per layer: the compressed heads' slots c_l and their largest / smallest cap (the clip bounds)
    std::vector<double> c(size_t(nl), 0.0), hi_cap(size_t(nl), 0.0), lo_cap(size_t(nl), 0.0);
    int32_t layers = 0;
    for (int32_t il = 0; il < nl; ++il) {
        for (int32_t ih = 0; ih < nh; ++ih) {
            if (!comp(il, ih)) continue;
            const double x = double(cap[t.at(il, ih)]);
            lo_cap[size_t(il)] = c[size_t(il)] > 0 ? std::min(lo_cap[size_t(il)], x) : x;
            c[size_t(il)] += x;
            hi_cap[size_t(il)] = std::max(hi_cap[size_t(il)], x);
        }
        layers += c[size_t(il)] > 0 ? 1 : 0;
    }
    if (layers < 2 || nl < 2 || beta <= 1.0) return cap;
    // f_l = hi (1 - t_l) + lo t_l with t_l = l / (nl - 1); sum_l c_l f_l = C fixes lo given hi:
    // lo = (C - hi P) / S with P = sum c_l (1 - t_l), S = sum c_l t_l (> 0: two layers hold slots)
    double C = 0.0, P = 0.0, S = 0.0;
    for (int32_t il = 0; il < nl; ++il) {
        const double tl = double(il) / double(nl - 1);
        C += c[size_t(il)];
        P += c[size_t(il)] * (1.0 - tl);
        S += c[size_t(il)] * tl;
    }
    const double r = 1.0 / (2.0 * beta - 1.0);  // lo / hi unclipped
    double hi = C / (P + r * S);
    // f_l = a_l hi + b_l is linear in hi, and hi = 1 is flat (f = 1, feasible); the largest hi with
    // every head in [1, n_prompt]: an upper bound from each layer whose f_l rises (ceiling) or
    // falls (floor) with hi
    for (int32_t il = 0; il < nl; ++il) {
        if (c[size_t(il)] <= 0) continue;
        const double tl = double(il) / double(nl - 1);
        const double a = (1.0 - tl) - tl * P / S, b = tl * C / S;
        if (a > 0) hi = std::min(hi, (double(n_prompt) / hi_cap[size_t(il)] - b) / a);
        if (a < 0) hi = std::min(hi, (b - 1.0 / lo_cap[size_t(il)]) / -a);
    }
    hi = std::max(hi, 1.0);
    const double lo = (C - hi * P) / S;
    std::vector<double> want;
    std::vector<size_t> at;
    int64_t total = 0;
    for (int32_t il = 0; il < nl; ++il) {
        const double tl = double(il) / double(nl - 1), f = hi * (1.0 - tl) + lo * tl;
        for (int32_t ih = 0; ih < nh; ++ih) {
            if (!comp(il, ih)) continue;
            at.push_back(t.at(il, ih));
            total += cap[at.back()];
            want.push_back(std::clamp(double(cap[at.back()]) * f, 1.0, double(n_prompt)));
        }
    }
    const std::vector<int32_t> k = round_to_total(want, total);
    std::vector<int64_t> out = cap;
    for (size_t j = 0; j < at.size(); ++j) out[at[j]] = k[j];
    return out;
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
    bool adaptive = false;  // weights=adaptive: the layer's anchor/satellite slots shared by score (AdaKV)
    double alpha = 0.2;     // adaptive: each head's floor share of the uniform cap
    bool pyramid = false;   // layers=pyramid: the compressed slots spread over layers (hc_pyramid_caps)
    double beta = 20.0;     // pyramid: PyramidKV's beta (1: flat)
    bool reference_select = false;
    int32_t pool = 5;
    int32_t obs = 32;  // prompt queries scoring anchors / satellites (1: the reference's last query)
    int32_t recent = 32;  // the prompt's last slots anchors / satellites always keep (0: none, the reference)
    bool spill_chunk = false;  // spill=chunk: cold-tier append and cut to cap after every prefill chunk
    KvHeadTypes role_types[5];  // kv=: [HeadRole] each class's K/V cache types (unset: the context's)
};

// kv=CLASS:TYPE[+VTYPE]/CLASS:...: each named head class's K and V cache types (one type for both,
// or K+V), e.g. "volatile:f16/pivot:f16/anchor:q8_0/satellite:q4_0+q8_0"; classes not named keep
// the context's types.
Status hc_parse_kv(const std::string& text, KvHeadTypes* role_types) {
    size_t start = 0;
    while (start <= text.size()) {
        size_t slash = text.find('/', start);
        if (slash == std::string::npos) slash = text.size();
        const std::string item = text.substr(start, slash - start);
        start = slash + 1;
        const size_t colon = item.find(':');
        if (colon == std::string::npos || colon == 0 || colon + 1 == item.size()) {
            return Status::invalid("heterocache: kv=%s: '%s' is not CLASS:TYPE or CLASS:KTYPE+VTYPE (classes: volatile, "
                                   "pivot, anchor, satellite; types: f16, bf16, f32, q8_0, q4_0, hq4)",
                                   text.c_str(), item.c_str());
        }
        const std::string cls = item.substr(0, colon), types = item.substr(colon + 1);
        int r = 0;
        for (HeadRole hr : {HeadRole::kVolatile, HeadRole::kPivot, HeadRole::kAnchor, HeadRole::kSatellite}) {
            if (cls == head_role_name(hr)) r = int(hr);
        }
        if (r == 0) {
            return Status::invalid("heterocache: kv=%s: unknown head class '%s' (volatile, pivot, anchor, satellite)",
                                   text.c_str(), cls.c_str());
        }
        if (role_types[r].set) return Status::invalid("heterocache: kv=%s: class %s given twice", text.c_str(), cls.c_str());
        const size_t plus = types.find('+');
        auto k = kv_type_parse(types.substr(0, plus));
        auto v = kv_type_parse(plus == std::string::npos ? types : types.substr(plus + 1));
        if (!k.ok() || !v.ok()) {
            return Status::invalid("heterocache: kv=%s: class %s: %s", text.c_str(), cls.c_str(),
                                   (!k.ok() ? k.status() : v.status()).message().c_str());
        }
        role_types[r] = KvHeadTypes{*k, *v, true};
        if (slash == text.size()) break;
    }
    return Status();
}

class HeteroCachePolicy final : public Policy {
public:
    HeteroCachePolicy(const HcOptions& o, Taxonomy t) : opt_(o), tax_(std::move(t)) {
        if (opt_.uniform || opt_.adaptive) {
            for (size_t i = 0; i < tax_.ratio.size(); ++i) {
                if (tax_.ratio[i] > 0) tax_.ratio[i] = 1.0;
            }
        }
    }

    PolicyInfo info() const override {
        PolicyInfo i;
        i.name = "heterocache";
        // the prompt's end (spill=chunk: every prefill chunk), and the drift monitor at every decode step
        i.calls = (opt_.spill_chunk ? kStepPrefill : kStepSegmentEnd) |
                  (opt_.refresh != RefreshMode::kNever ? kStepDecode : 0u);
        i.cold_tier = tax_.count(HeadRole::kSatellite) > 0;
        bool typed = false;
        for (const KvHeadTypes& t : opt_.role_types) typed = typed || t.set;
        if (typed) {  // per-head precision: each head its class's types
            i.kv_types.resize(tax_.role.size());
            for (size_t h = 0; h < tax_.role.size(); ++h) i.kv_types[h] = opt_.role_types[size_t(tax_.role[h])];
        }
        return i;  // no statistics: the scores are the last query's, read through LayerView::kv
    }

    Status begin(const ModelShape& shape, const Segment& prompt, KvBudget& budget) override {
        Status sh = taxonomy_check_shape(tax_, shape.n_layer, shape.n_head_kv);
        if (!sh.ok()) {
            return Status::invalid("heterocache: taxonomy %s does not fit this model (%s); make one for it with "
                                   "`heterokv calibrate`", opt_.taxonomy_path.c_str(), sh.message().c_str());
        }
        for (const KvHeadTypes& t : opt_.role_types) {  // kv=: every named type fits the head size
            if (!t.set) continue;
            HKV_TRY(kv_type_check(t.k, shape.head_dim, "heterocache: kv= (K rows)"));
            HKV_TRY(kv_type_check(t.v, shape.head_dim, "heterocache: kv= (V rows)"));
        }
        shape_ = shape;
        HKV_ASSIGN_OR_RETURN(HcBudget b, heterocache_budget(tax_, opt_.ratio, prompt.n_tokens));
        hb_ = std::move(b);
        if (opt_.pyramid) hb_.cap = hc_pyramid_caps(tax_, hb_.cap, prompt.n_tokens, opt_.beta);
        hot_ = hb_.cap;
        n_prompt_ = prompt.n_tokens;
        budget.init(shape.n_layer, shape.n_head_kv, -1);
        for (int32_t il = 0; il < shape.n_layer; ++il) {
            for (int32_t ih = 0; ih < shape.n_head_kv; ++ih) {
                const HeadRole r = tax_.role_of(il, ih);
                if (r == HeadRole::kAnchor || r == HeadRole::kSatellite) {
                    budget.at(il, ih) = int32_t(hb_.cap[tax_.at(il, ih)]);
                }
            }
            if (!opt_.adaptive) continue;
            int64_t total = 0;  // the layer's compressed slots, any head may get most of them
            for (int32_t ih = 0; ih < shape.n_head_kv; ++ih) total += compressed(il, ih) ? hb_.cap[tax_.at(il, ih)] : 0;
            for (int32_t ih = 0; ih < shape.n_head_kv; ++ih) {
                if (compressed(il, ih)) budget.at(il, ih) = int32_t(std::min<int64_t>(total, prompt.n_tokens));
            }
        }
        const size_t nl = size_t(shape.n_layer);
        ref_mask_.assign(nl * size_t(shape.n_head_kv), {});
        qbuf_.assign(nl, {});
        qfill_.assign(nl, 0);
        windows_.assign(nl, 0);
        monitor_ms_ = mon_dots_ms_ = mon_steps_ms_ = 0.0;
        refreshes_.assign(nl, 0);
        peak_hot_ = 0;
        return Status();
    }

    Status on_layer(const LayerView& v, LayerPlan& plan) override {
        return v.step == kStepDecode ? on_decode(v, plan) : on_prefill(v, plan);
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
        char head[256], tail[160];
        std::snprintf(head, sizeof head,
                      "heterocache: prompt %d, base %lld; monitor %lld checks in %.1f ms (key dots %.1f ms, steps %.1f ms), "
                      "%lld refreshes (rate %.3f; per layer ",
                      n_prompt_, (long long)hb_.base, (long long)w, monitor_ms_, mon_dots_ms_, mon_steps_ms_,
                      (long long)r, w ? double(r) / double(w) : 0.0);
        std::snprintf(tail, sizeof tail, "); spill %s, peak anchor/satellite slots %lld", opt_.spill_chunk ? "chunk" : "end",
                      (long long)peak_hot_);
        return std::string(head) + (per.empty() ? "-" : per) + tail;
    }

    // Saved contexts: the monitor's state (hot sizes, reference sets, buffered queries, counters).
    Status state(PolicyStateIO& io) override { return io.saving() ? save_state(io.out) : load_state(io.in); }

private:
    Status save_state(std::string* out) const {
        ByteWriter w(out);
        w.put<int32_t>(n_prompt_);
        w.vec(hot_);
        w.vecs(ref_mask_);
        w.vecs(qbuf_);
        w.vec(qfill_);
        w.vec(windows_);
        w.vec(refreshes_);
        w.put<int64_t>(peak_hot_);
        return Status();
    }
    Status load_state(std::string_view in) {
        ByteReader r(in);
        const size_t heads = size_t(shape_.n_layer) * size_t(shape_.n_head_kv), nl = size_t(shape_.n_layer);
        const size_t qmax = size_t(opt_.window) * size_t(shape_.n_head) * size_t(shape_.head_dim);
        const int32_t n_prompt = r.get<int32_t>();
        std::vector<int64_t> hot, windows, refreshes;
        std::vector<std::vector<uint8_t>> mask;
        std::vector<std::vector<float>> qbuf;
        std::vector<int32_t> qfill;
        r.vec(hot, hot_.size());
        r.vecs(mask, heads, uint64_t(std::max(n_prompt_, 0)));
        r.vecs(qbuf, nl, qmax);
        r.vec(qfill, nl);
        r.vec(windows, nl);
        r.vec(refreshes, nl);
        const int64_t peak = r.get<int64_t>();
        if (!r.done()) return Status::invalid("heterocache: saved state is truncated or too long");
        if (n_prompt != n_prompt_ || hot.size() != hot_.size() || mask.size() != heads || qbuf.size() != nl ||
            qfill.size() != nl || windows.size() != nl || refreshes.size() != nl) {
            return Status::invalid("heterocache: saved state does not fit this model and prompt (%d tokens, saved %d)",
                                   n_prompt_, n_prompt);
        }
        for (int64_t h : hot) {
            if (h < -1 || h > shape_.n_ctx) return Status::invalid("heterocache: saved hot size %lld", (long long)h);
        }
        for (const auto& m : mask) {
            if (!m.empty() && m.size() != size_t(n_prompt_)) return Status::invalid("heterocache: saved reference set size");
        }
        for (size_t il = 0; il < nl; ++il) {
            if (qfill[il] < 0 || qfill[il] >= opt_.window || (!qbuf[il].empty() && qbuf[il].size() != qmax)) {
                return Status::invalid("heterocache: saved query buffer of layer %zu", il);
            }
        }
        hot_ = std::move(hot);
        ref_mask_ = std::move(mask);
        qbuf_ = std::move(qbuf);
        qfill_ = std::move(qfill);
        windows_ = std::move(windows);
        refreshes_ = std::move(refreshes);
        peak_hot_ = peak;
        return Status();
    }

    // The prompt's end (spill=chunk: every chunk of it): anchors and satellites keep their top cap_h
    // slots by the last query's scores, satellites first spill the rows the cold tier does not hold
    // yet, pivots with satellites record their reference sets. A later segment is appended.
    Status on_prefill(const LayerView& v, LayerPlan& plan) {
        if (v.segment.index > 0) return Status();  // a question after the prompt: appended to every head
        const int32_t il = v.il, nh = v.n_head_kv, hd = v.head_dim;
        const int32_t group = v.n_head / nh;
        const bool last = v.step == kStepSegmentEnd;
        const float* q_last = v.q.data() + size_t(v.n_q - 1) * size_t(v.n_head) * size_t(hd);
        const float scale = 1.0f / std::sqrt(float(hd));
        cold_ops_.clear();
        caps_.assign(size_t(nh), -1);
        scores_.resize(size_t(nh));
        for (int32_t ih = 0; ih < nh; ++ih) {
            const HeadRole r = tax_.role_of(il, ih);
            if (r == HeadRole::kVolatile) continue;
            const int32_t n = v.n_live[size_t(ih)];
            if (r == HeadRole::kPivot && (!last || !has_satellites(il, ih))) continue;
            score_.resize(size_t(n));
            const int32_t m = std::min(opt_.obs, v.n_q);
            if (r == HeadRole::kPivot || m <= 1) {
                hc_head_scores(v.kv, ih, q_last + size_t(ih) * size_t(group) * size_t(hd), group, n, scale, opt_.pool,
                               score_.data(), probs_, tmp_);
            } else {
                hc_window_scores(v, ih, m, n, opt_.pool, score_.data(), scratch_);
            }
            if (r == HeadRole::kPivot) {
                const int32_t k = int32_t(std::min<int64_t>(hb_.base, n));
                top_.resize(size_t(k));
                top_k_indices(score_.data(), n, k, top_.data());
                auto& mask = ref_mask_[size_t(il) * size_t(nh) + size_t(ih)];
                mask.assign(size_t(n), 0);
                for (int32_t s : top_) mask[size_t(s)] = 1;
                continue;
            }
            if (r == HeadRole::kSatellite) cold_ops_.push_back(ColdOp{ColdOpKind::kSpill, ih});
            peak_hot_ = std::max<int64_t>(peak_hot_, n);
            // the kept window counts first in weights=adaptive's shares (hc_keep keeps it anyway)
            for (int32_t s = std::max(0, n - opt_.recent); s < n; ++s) score_[size_t(s)] = INFINITY;
            scores_[size_t(ih)] = score_;
            caps_[size_t(ih)] = int32_t(std::min<int64_t>(hb_.cap[tax_.at(il, ih)], n));
        }
        if (opt_.adaptive && last) share_caps(v);
        for (int32_t ih = 0; ih < nh; ++ih) {
            const int32_t n = v.n_live[size_t(ih)], cap = caps_[size_t(ih)];
            if (cap >= 0) hot_[tax_.at(il, ih)] = cap;
            if (cap < 0 || cap >= n) continue;
            hc_keep(scores_[size_t(ih)].data(), n, cap, opt_.recent, plan.head(ih));
            plan.n_keep[size_t(ih)] = cap;
        }
        plan.cold = cold_ops_;
        return Status();
    }

    bool compressed(int32_t il, int32_t ih) const {
        const HeadRole r = tax_.role_of(il, ih);
        return r == HeadRole::kAnchor || r == HeadRole::kSatellite;
    }

    // weights=adaptive: the layer's anchors and satellites share the sum of their caps (caps_) as
    // AdaKV shares a layer's budget: the top-(sum) of their scores over all of them counts per head,
    // each head gets alpha of its uniform cap plus (1 - alpha) of its count.
    void share_caps(const LayerView& v) {
        std::vector<int32_t> heads, offset{0}, uniform;
        flat_.clear();
        for (int32_t ih = 0; ih < v.n_head_kv; ++ih) {
            if (caps_[size_t(ih)] < 0) continue;
            heads.push_back(ih);
            uniform.push_back(caps_[size_t(ih)]);
            flat_.insert(flat_.end(), scores_[size_t(ih)].begin(), scores_[size_t(ih)].end());
            offset.push_back(int32_t(flat_.size()));
        }
        if (heads.size() < 2) return;
        const std::vector<int32_t> b = adaptive_head_budgets(flat_, offset, uniform, opt_.alpha, top_);
        for (size_t j = 0; j < heads.size(); ++j) {
            caps_[size_t(heads[j])] = std::min(b[j], offset[j + 1] - offset[j]);
        }
    }

    // Every decode step: the step's query joins the layer's buffer; every `window` steps, monitor().
    Status on_decode(const LayerView& v, LayerPlan& plan) {
        const int32_t il = v.il;
        if (!layer_has_satellites(il) || hb_.base < 1) return Status();
        const size_t qrow = size_t(v.n_head) * size_t(v.head_dim);
        auto& buf = qbuf_[size_t(il)];
        buf.resize(size_t(opt_.window) * qrow);
        std::copy_n(v.q.data() + size_t(v.n_q - 1) * qrow, qrow, buf.data() + size_t(qfill_[size_t(il)]) * qrow);
        if (++qfill_[size_t(il)] < opt_.window) return Status();
        qfill_[size_t(il)] = 0;
        const auto t0 = std::chrono::steady_clock::now();
        const Status st = monitor(v, plan);
        monitor_ms_ += ms_between(t0, std::chrono::steady_clock::now());
        return st;
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

    // The drift check of layer v.il over the W buffered queries; a pivot that drifted gets its
    // satellites' hot sets refreshed from the cold tier (planned here, gathered and applied by the
    // store before the layer's next attention).
    Status monitor(const LayerView& v, LayerPlan& plan) {
        const int32_t il = v.il, nh = v.n_head_kv, hd = v.head_dim;
        const int32_t group = v.n_head / nh;
        const int32_t W = opt_.window;
        const int32_t L = n_prompt_;
        const float scale = 1.0f / std::sqrt(float(hd));
        const size_t qrow = size_t(v.n_head) * size_t(hd);
        cold_ops_.clear();
        size_t n_rows = 0;  // sat_rows_ in use
        for (const HeadCluster& c : tax_.clusters[size_t(il)]) {
            if (c.satellites.empty()) continue;
            const int32_t p = c.pivot;
            const int32_t n = std::min(L, v.n_live[size_t(p)]);  // the pivot's prompt keys
            if (ref_mask_[size_t(il) * size_t(nh) + size_t(p)].size() < size_t(n) ||
                qbuf_[size_t(il)].size() < size_t(W) * qrow) {
                return Status::internal("heterocache: layer %d pivot %d has no reference set", il, p);
            }
            const int32_t base = int32_t(std::min<int64_t>(hb_.base, n));
            // the W buffered queries of the pivot's group, [W * group, head_dim], against its prompt keys
            // in one pass over the pages: dots dots_ [W * group, n], each step's rows normalised below
            keys_.resize(size_t(W) * size_t(group) * size_t(hd));
            for (int32_t t = 0; t < W; ++t) {
                std::copy_n(qbuf_[size_t(il)].data() + size_t(t) * qrow + size_t(p) * size_t(group) * size_t(hd),
                            size_t(group) * size_t(hd), keys_.data() + size_t(t) * size_t(group) * size_t(hd));
            }
            dots_.resize(size_t(W) * size_t(group) * size_t(n));
            const auto t_dots = std::chrono::steady_clock::now();
            v.kv.key_dots(p, keys_.data(), W * group, n, dots_.data(), n);
            const auto t_steps = std::chrono::steady_clock::now();
            mon_dots_ms_ += ms_between(t_dots, t_steps);
            aw_.resize(size_t(W) * size_t(n));
            std::vector<double>& o = overlap_;
            o.resize(size_t(W));
            auto& mask = ref_mask_[size_t(il) * size_t(nh) + size_t(p)];
            mask.resize(size_t(n), 0);
            // each satellite's refresh size n_s; the last step selects its top max(base, n_s) slots once
            // (cand_), and C_W and every satellite's rows are chosen among those (hc_keep_among)
            sat_n_.clear();
            int32_t n_max = 0;
            for (int32_t s : c.satellites) {
                const int32_t n_s =
                    std::max(0, std::min(int32_t(std::min<int64_t>(hot_[tax_.at(il, s)], n)), v.kv.cold_rows(s)));
                sat_n_.push_back(n_s);
                n_max = std::max(n_max, n_s);
            }
            const int32_t n_cand = std::max(base, n_max);
            // the W steps' probabilities (key_probs' bits), pooled scores, top sets and overlaps, one step
            // per item over the threads: a step's group rows ([group, n], 512 KiB at 32K) stay in its
            // core's cache from the softmax to the pooling
            const size_t nth = size_t(v.kv.n_threads());
            if (tmps_.size() < nth) tmps_.resize(nth);
            tops_.resize(size_t(W));
            v.kv.parallel_for(W, [&](int32_t item, int32_t th) {
                const int32_t t = (W - 1 + item) % W;  // the last (largest) step first: the threads end together
                float* a = aw_.data() + size_t(t) * size_t(n);
                std::vector<int32_t>& top = tops_[size_t(t)];
                top.resize(size_t(base));
                float* rows = dots_.data() + size_t(t) * size_t(group) * size_t(n);
                for (int32_t g = 0; g < group; ++g) KvLayerView::scaled_softmax(rows + size_t(g) * size_t(n), n, scale);
                hc_pool_max(rows, group, n, opt_.pool, a, tmps_[size_t(th)]);
                if (t < W - 1) {
                    top_k_indices(a, n, base, top.data());
                } else {
                    cand_.resize(size_t(n_cand));
                    top_k_indices(a, n, n_cand, cand_.data());
                    hc_keep_among(a, n, cand_.data(), n_cand, base, 0, top.data(), cand_scores_, cand_idx_);
                }
                o[size_t(t)] = hc_overlap(top.data(), base, mask, base);
            });
            mon_steps_ms_ += ms_between(t_steps, std::chrono::steady_clock::now());
            const std::vector<int32_t>& last_top = tops_[size_t(W - 1)];  // the last step's set
            ++windows_[size_t(il)];
            const double med = hc_lower_median(o);
            const bool trigger = opt_.refresh == RefreshMode::kAlways || med < opt_.tau;
            if (!trigger) continue;
            ++refreshes_[size_t(il)];
            const float* a_w = aw_.data() + size_t(W - 1) * size_t(n);
            // R_p <- C_W (last_top: the last step's set)
            std::fill(mask.begin(), mask.end(), 0);
            for (int32_t s : last_top) mask[size_t(s)] = 1;
            std::vector<int32_t>& union_idx = union_idx_;
            if (opt_.reference_select) {  // the top n_max of a_w, in position order
                union_idx.resize(size_t(n_max));
                hc_keep_among(a_w, n, cand_.data(), n_cand, n_max, 0, union_idx.data(), cand_scores_, cand_idx_);
            }
            const size_t row0 = n_rows;  // this cluster's satellites: sat_rows_[row0 ..]
            for (size_t i = 0; i < c.satellites.size(); ++i) {
                if (sat_rows_.size() <= n_rows) sat_rows_.emplace_back();
                std::vector<int32_t>& rows = sat_rows_[n_rows++];
                const int32_t n_s = sat_n_[i];
                rows.resize(size_t(n_s));
                if (opt_.reference_select) {
                    std::copy_n(union_idx.begin(), n_s, rows.begin());
                } else if (i > 0 && n_s == sat_n_[i - 1]) {  // equal sizes select the same rows
                    rows = sat_rows_[n_rows - 2];
                } else {
                    hc_keep_among(a_w, n, cand_.data(), n_cand, n_s, opt_.recent, rows.data(), cand_scores_, cand_idx_);
                }
            }
            for (size_t i = 0; i < c.satellites.size(); ++i) {
                cold_ops_.push_back(ColdOp{ColdOpKind::kRefresh, c.satellites[i], 0, sat_rows_[row0 + i]});
            }
        }
        plan.cold = cold_ops_;
        return Status();
    }

    HcOptions opt_;
    Taxonomy tax_;
    ModelShape shape_;
    HcBudget hb_;
    std::vector<int64_t> hot_;                    // [n_layer * n_head_kv] slots kept at the last cut (refresh size)
    int32_t n_prompt_ = 0;
    std::vector<std::vector<uint8_t>> ref_mask_;  // [n_layer * n_head_kv] -> [L] pivots' R_p
    std::vector<std::vector<float>> qbuf_;        // [n_layer] -> [W, n_head, head_dim]
    std::vector<int32_t> qfill_;                  // [n_layer]
    // metrics
    std::vector<int64_t> windows_, refreshes_;    // [n_layer] pivot checks / refreshes
    int64_t peak_hot_ = 0;                        // most slots an anchor/satellite held at a prefill cut
    double monitor_ms_ = 0.0;                     // wall time in monitor() (scoring and planning refreshes)
    double mon_dots_ms_ = 0.0, mon_steps_ms_ = 0.0;  // of which: the key dots; the steps' softmax, pooling, top sets
    // scratch
    std::vector<float> keys_, score_, probs_, tmp_, aw_, dots_;
    HcScratch scratch_;
    std::vector<std::vector<float>> scores_;      // [n_head_kv] -> [n_live] prefill scores
    std::vector<int32_t> caps_;                   // [n_head_kv] slots to keep at this cut (-1: none)
    std::vector<float> flat_;
    std::vector<int32_t> top_, union_idx_;
    std::vector<std::vector<float>> tmps_;        // [thread] the monitor's pooling scratch
    std::vector<std::vector<int32_t>> tops_;      // [W] each step's top set
    std::vector<int32_t> sat_n_;                  // a check's satellites: refresh sizes n_s
    std::vector<int32_t> cand_, cand_idx_;        // the last step's top max(base, n_s) slots; hc_keep_among scratch
    std::vector<float> cand_scores_;              // hc_keep_among scratch
    std::vector<double> overlap_;                 // [W] the monitor's per-step overlaps
    std::vector<ColdOp> cold_ops_;                // the plan's cold-tier operations
    std::vector<std::vector<int32_t>> sat_rows_;  // [refreshed satellites] -> cold rows, kept across checks
};

}  // namespace

Expected<std::unique_ptr<Policy>> heterocache_create(PolicySpec& spec) {
    HcOptions o;
    o.taxonomy_path = spec.get_string("taxonomy", "");
    HKV_ASSIGN_OR_RETURN(o.ratio, spec.get_float("ratio", 0.5, 1e-9, 1.0));
    HKV_ASSIGN_OR_RETURN(int64_t w, spec.get_int("window", 5, 1, 1 << 20));
    o.window = int32_t(w);
    HKV_ASSIGN_OR_RETURN(o.tau, spec.get_float("tau", 0.5, 0.0, 2.0));
    HKV_ASSIGN_OR_RETURN(std::string refresh, spec.get_choice("refresh", "drift", {"drift", "never", "always"}));
    o.refresh = refresh == "never" ? RefreshMode::kNever : refresh == "always" ? RefreshMode::kAlways : RefreshMode::kDrift;
    HKV_ASSIGN_OR_RETURN(std::string weights, spec.get_choice("weights", "adaptive", {"taxonomy", "uniform", "adaptive"}));
    o.uniform = weights == "uniform";
    o.adaptive = weights == "adaptive";
    HKV_ASSIGN_OR_RETURN(o.alpha, spec.get_float("alpha", 0.2, 0.0, 1.0));
    if (spec.has("alpha") && !o.adaptive) return Status::invalid("heterocache: alpha needs weights=adaptive");
    HKV_ASSIGN_OR_RETURN(std::string layers, spec.get_choice("layers", "flat", {"flat", "pyramid"}));
    o.pyramid = layers == "pyramid";
    HKV_ASSIGN_OR_RETURN(o.beta, spec.get_float("beta", 20.0, 1.0, 1e6));
    if (spec.has("beta") && !o.pyramid) return Status::invalid("heterocache: beta needs layers=pyramid");
    HKV_ASSIGN_OR_RETURN(std::string sel, spec.get_choice("select", "topk", {"topk", "reference"}));
    o.reference_select = sel == "reference";
    HKV_ASSIGN_OR_RETURN(int64_t pool, spec.get_int("pool", 5, 1, 255));
    if (pool % 2 == 0) return Status::invalid("heterocache: pool=%lld must be odd", (long long)pool);
    o.pool = int32_t(pool);
    HKV_ASSIGN_OR_RETURN(int64_t obs, spec.get_int("obs", 32, 1, 4096));
    o.obs = int32_t(obs);
    HKV_ASSIGN_OR_RETURN(int64_t recent, spec.get_int("recent", obs > 1 ? obs : 0, 0, 1 << 20));
    o.recent = int32_t(recent);
    HKV_ASSIGN_OR_RETURN(std::string spill, spec.get_choice("spill", "end", {"end", "chunk"}));
    o.spill_chunk = spill == "chunk";
    if (spec.has("kv")) HKV_TRY(hc_parse_kv(spec.get_string("kv", ""), o.role_types));
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
