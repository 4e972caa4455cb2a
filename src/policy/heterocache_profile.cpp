// policy/heterocache_profile.cpp — see heterocache_profile.h.
#include "policy/heterocache_profile.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace hkv {

void hc_avg_pool(std::span<const float> row, std::span<float> out) {
    const int64_t n = int64_t(row.size());
    const int64_t half = kHcPoolKernel / 2;
    // each window summed on its own (no running sum: a NaN or rounding stays local, and equal
    // windows give equal values); the zero padding adds nothing but counts in the divisor
    for (int64_t i = 0; i < n; ++i) {
        float sum = 0.0f;
        for (int64_t j = std::max<int64_t>(0, i - half); j <= std::min(n - 1, i + half); ++j) sum += row[size_t(j)];
        out[size_t(i)] = sum / float(kHcPoolKernel);
    }
}

void hc_topk_set(std::span<const float> row, int32_t k, std::vector<float>& scratch, std::vector<int32_t>& out) {
    const int32_t n = int32_t(row.size());
    out.clear();
    if (n == 0) return;
    k = std::clamp(k, 1, n);
    scratch.resize(size_t(n));
    hc_avg_pool(row, scratch);
    for (float& v : scratch) {
        if (std::isnan(v)) v = -INFINITY;  // keeps the ordering strict-weak
    }
    out.resize(size_t(n));
    std::iota(out.begin(), out.end(), 0);
    const float* s = scratch.data();
    auto better = [s](int32_t a, int32_t b) { return s[a] > s[b] || (s[a] == s[b] && a < b); };
    if (k < n) std::nth_element(out.begin(), out.begin() + (k - 1), out.end(), better);
    out.resize(size_t(k));
    std::sort(out.begin(), out.end());
}

int32_t hc_intersect(std::span<const int32_t> a, std::span<const int32_t> b) {
    int32_t n = 0;
    size_t i = 0, j = 0;
    while (i < a.size() && j < b.size()) {
        if (a[i] < b[j]) {
            ++i;
        } else if (b[j] < a[i]) {
            ++j;
        } else {
            ++n;
            ++i;
            ++j;
        }
    }
    return n;
}

double hc_median(std::vector<double> v) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    const size_t m = v.size() / 2;
    return v.size() % 2 == 1 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

std::vector<uint8_t> hc_similarity_graph(const std::vector<std::vector<int32_t>>& sets, double tau_sim) {
    const size_t n = sets.size();
    std::vector<uint8_t> adj(n * n, 0);
    for (size_t i = 0; i < n; ++i) {
        for (size_t j = i + 1; j < n; ++j) {
            if (sets[i].empty() || sets[j].empty()) continue;
            const double inter = double(hc_intersect(sets[i], sets[j]));
            const bool edge = inter / double(sets[i].size()) >= tau_sim && inter / double(sets[j].size()) >= tau_sim;
            adj[i * n + j] = adj[j * n + i] = edge ? 1 : 0;
        }
    }
    return adj;
}

std::vector<HeadCluster> hc_star_clusters(std::span<const uint8_t> adj, int32_t n) {
    std::vector<HeadCluster> out;
    std::vector<uint8_t> assigned(size_t(n), 0);
    for (;;) {
        int32_t best = -1, best_deg = 0;
        for (int32_t i = 0; i < n; ++i) {
            if (assigned[size_t(i)]) continue;
            int32_t deg = 0;
            for (int32_t j = 0; j < n; ++j) deg += (j != i && !assigned[size_t(j)] && adj[size_t(i) * size_t(n) + size_t(j)]);
            if (deg > best_deg) {  // strict: ties keep the smaller index
                best = i;
                best_deg = deg;
            }
        }
        if (best < 0) break;  // every unassigned head has degree 0
        HeadCluster c;
        c.pivot = best;
        for (int32_t j = 0; j < n; ++j) {
            if (j != best && !assigned[size_t(j)] && adj[size_t(best) * size_t(n) + size_t(j)]) c.satellites.push_back(j);
        }
        assigned[size_t(best)] = 1;
        for (int32_t s : c.satellites) assigned[size_t(s)] = 1;
        out.push_back(std::move(c));
    }
    return out;
}

Taxonomy hc_classify(int32_t n_layer, int32_t n_head_kv, const std::vector<double>& stability,
                     std::vector<std::vector<HeadCluster>> clusters, const HcProfileParams& params) {
    Taxonomy t;
    t.n_layer = n_layer;
    t.n_head_kv = n_head_kv;
    t.tau_stable = params.tau_stable;
    t.tau_sim = params.tau_sim;
    t.stability = stability;
    const size_t n = size_t(n_layer) * size_t(n_head_kv);
    t.role.assign(n, HeadRole::kVolatile);
    t.ratio.assign(n, -1.0);
    t.local_layers = params.local_layers;
    const bool any_local = !params.local_layers.empty();
    for (int32_t il = 0; il < n_layer; ++il) {
        auto& cl = clusters[size_t(il)];
        if (any_local && params.local_layers[size_t(il)]) {  // stays volatile, ratio -1
            cl.clear();
            continue;
        }
        for (const HeadCluster& c : cl) {
            t.role[t.at(il, c.pivot)] = HeadRole::kPivot;
            for (int32_t s : c.satellites) t.role[t.at(il, s)] = HeadRole::kSatellite;
        }
        std::sort(cl.begin(), cl.end(), [](const HeadCluster& a, const HeadCluster& b) { return a.pivot < b.pivot; });
        for (int32_t ih = 0; ih < n_head_kv; ++ih) {
            HeadRole& r = t.role[t.at(il, ih)];
            if (r == HeadRole::kPivot || r == HeadRole::kSatellite) continue;
            r = stability[t.at(il, ih)] >= params.tau_stable ? HeadRole::kAnchor : HeadRole::kVolatile;
        }
    }
    t.clusters = std::move(clusters);
    // inverse-stability weights over the compressed heads of all layers, normalized to mean 1
    double sum_w = 0.0;
    int64_t n_targets = 0;
    for (size_t i = 0; i < n; ++i) {
        if (t.role[i] != HeadRole::kAnchor && t.role[i] != HeadRole::kSatellite) continue;
        sum_w += 1.0 / (stability[i] + 1e-6);
        ++n_targets;
    }
    for (size_t i = 0; i < n; ++i) {
        if (t.role[i] != HeadRole::kAnchor && t.role[i] != HeadRole::kSatellite) continue;
        t.ratio[i] = (1.0 / (stability[i] + 1e-6)) / sum_w * double(n_targets);
    }
    return t;
}

HcProfiler::HcProfiler(int32_t n_layer, int32_t n_head_kv, const HcProfileParams& params)
    : n_layer_(n_layer), n_head_kv_(n_head_kv), params_(params) {
    const size_t n = size_t(std::max(n_layer, 0)) * size_t(std::max(n_head_kv, 0));
    prefill_.resize(n);
    have_prefill_.assign(n, 0);
    overlap_.resize(n);
}

Status HcProfiler::add_prefill(int32_t il, int32_t ih, std::span<const int32_t> set) {
    if (il < 0 || il >= n_layer_ || ih < 0 || ih >= n_head_kv_) {
        return Status::invalid("hc profile: head (%d, %d) outside %d layers x %d heads", il, ih, n_layer_, n_head_kv_);
    }
    if (set.empty()) return Status::invalid("hc profile: layer %d head %d: empty prefill set", il, ih);
    const size_t i = size_t(il) * size_t(n_head_kv_) + size_t(ih);
    prefill_[i].assign(set.begin(), set.end());
    have_prefill_[i] = 1;
    overlap_[i].clear();
    return Status();
}

Status HcProfiler::add_decode(int32_t il, int32_t ih, std::span<const int32_t> set) {
    if (il < 0 || il >= n_layer_ || ih < 0 || ih >= n_head_kv_) {
        return Status::invalid("hc profile: head (%d, %d) outside %d layers x %d heads", il, ih, n_layer_, n_head_kv_);
    }
    const size_t i = size_t(il) * size_t(n_head_kv_) + size_t(ih);
    if (!have_prefill_[i]) return Status::invalid("hc profile: layer %d head %d: decode set before the prefill set", il, ih);
    const std::vector<int32_t>& ref = prefill_[i];
    overlap_[i].push_back(double(hc_intersect(set, ref)) / double(ref.size()));
    return Status();
}

Expected<std::vector<double>> HcProfiler::stability() const {
    std::vector<double> s(overlap_.size());
    for (size_t i = 0; i < overlap_.size(); ++i) {
        if (!have_prefill_[i] || overlap_[i].empty()) {
            return Status::invalid("hc profile: layer %zu head %zu has %s", i / size_t(n_head_kv_), i % size_t(n_head_kv_),
                                   have_prefill_[i] ? "no decode steps" : "no prefill set");
        }
        s[i] = hc_median(overlap_[i]);
    }
    return s;
}

Expected<Taxonomy> HcProfiler::finish() const {
    if (n_layer_ <= 0 || n_head_kv_ <= 0) return Status::invalid("hc profile: empty model shape");
    if (!params_.local_layers.empty() && params_.local_layers.size() != size_t(n_layer_)) {
        return Status::invalid("hc profile: %zu local-layer flags for %d layers", params_.local_layers.size(), n_layer_);
    }
    auto st = stability();
    if (!st.ok()) return st.status();
    std::vector<std::vector<HeadCluster>> clusters(static_cast<size_t>(n_layer_));
    for (int32_t il = 0; il < n_layer_; ++il) {
        const auto first = prefill_.begin() + long(il) * n_head_kv_;
        const std::vector<std::vector<int32_t>> sets(first, first + n_head_kv_);
        const std::vector<uint8_t> adj = hc_similarity_graph(sets, params_.tau_sim);
        clusters[size_t(il)] = hc_star_clusters(adj, n_head_kv_);
    }
    Taxonomy t = hc_classify(n_layer_, n_head_kv_, *st, std::move(clusters), params_);
    HKV_TRY(taxonomy_validate(t));
    return t;
}

}  // namespace hkv
