// policy/heterocache_profile.h — HeteroCache's offline profiling core: from each KV head's top-k
// attention index sets (the prompt's last query, then every decode step) to a head Taxonomy
// (roles, clusters, budget ratios). Pure logic: no model, no engine; `heterokv calibrate`
// (tools/eval/calibrate.h) captures the attention rows and feeds them here.
//
// The numbers follow the reference code (../shared/docs/methods.md §1.3 "What the code actually
// computes", §1.7 hc_profile):
//   set       K = topk(avg_pool1d(row[0:L0], k=5, pad=2, count_include_pad), k), row = the last
//             query's softmax attention over the first L0 (prompt) keys, mean over the GQA group
//             (hc_topk_set). Ties in topk go to the smaller position, so sets are deterministic.
//   stability S(h) = median over decode steps t of |K_t ∩ K_prefill| / |K_prefill|; the median of
//             an even count is the mean of the two middle values (numpy's median).
//   similarity sim(i, j) = |K_i ∩ K_j| / |K_i| at the prefill step only (not a median over time).
//   graph     an undirected edge i — j (i != j) when sim(i, j) >= tau_sim AND sim(j, i) >= tau_sim.
//             The reference writes "edge i→j if sim(i, j) >= tau" and takes a head's degree over
//             its row. In calibration every set of a layer is a top-k over the same L0 keys, so all
//             sets have the same size, sim is symmetric and the row rule, the paper's overlap
//             coefficient (|∩| / min size) and this rule give the same graph. When sets differ in
//             size (a caller's own sets), heterokv requires the overlap both ways: a satellite
//             then holds at least tau of the pivot's set and the pivot at least tau of the
//             satellite's, so the pivot's top tokens (what a refresh copies) cover the satellite,
//             and "neighbour" and "degree" are well defined (star clustering needs an undirected
//             graph).
//   clustering greedy star clustering per layer: while some unassigned head has an unassigned
//             neighbour, the unassigned head with the most unassigned neighbours (ties: smallest
//             index) becomes a pivot and all its unassigned neighbours its satellites.
//   roles     pivot = 3, satellite = 4; every other head anchor = 1 if S >= tau_stable, else
//             volatile = 2.
//   ratios    over anchors and satellites of ALL layers: w = 1 / (S + 1e-6),
//             ratio = w / sum(w) * N_targets (mean 1); pivots and volatile heads -1 (full KV).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "policy/heterocache_taxonomy.h"

namespace hkv {

// Smoothing window of the reference (avg_pool1d kernel 5, padding 2, stride 1).
inline constexpr int32_t kHcPoolKernel = 5;

// out[i] = (sum of row[j] for j in [i-2, i+2] inside the row) / 5: PyTorch's avg_pool1d with
// count_include_pad = true (the zero padding counts, so edges are divided by 5 too).
// row: [n] f32; out: [n]. n >= 1.
void hc_avg_pool(std::span<const float> row, std::span<float> out);

// The top-k set of one head's attention row: avg-pools row ([L0] f32), takes the k largest pooled
// values (ties: the smaller position first) and returns their positions in ascending order.
// k is clamped to [1, L0]. scratch is reused between calls (no allocation once it is large enough).
void hc_topk_set(std::span<const float> row, int32_t k, std::vector<float>& scratch, std::vector<int32_t>& out);

// |a ∩ b| for two strictly ascending index sets.
int32_t hc_intersect(std::span<const int32_t> a, std::span<const int32_t> b);

// Median of the values (numpy's: the mean of the two middle values for an even count).
// 0 for an empty list.
double hc_median(std::vector<double> v);

// The similarity graph of one layer: adj[i * n + j] = 1 when i != j and both
// |K_i ∩ K_j| / |K_i| >= tau and |K_i ∩ K_j| / |K_j| >= tau (see the header comment for why both).
// sets: [n] ascending index sets; an empty set has no edges. Returns [n * n] (symmetric).
std::vector<uint8_t> hc_similarity_graph(const std::vector<std::vector<int32_t>>& sets, double tau_sim);

// Greedy star clustering of an undirected graph adj [n * n] (see the header comment). Clusters come
// out in the order they were formed; satellites ascending.
std::vector<HeadCluster> hc_star_clusters(std::span<const uint8_t> adj, int32_t n);

// Tuning of the profile (the reference's defaults).
struct HcProfileParams {
    double tau_stable = 0.5;  // anchor if stability >= tau_stable, else volatile
    double tau_sim = 0.5;     // similarity threshold of the graph
    // [n_layer] or empty: local layers (Taxonomy::local_layers), which no policy compresses. Their
    // heads are written volatile with no clusters and stay out of the ratio normalisation, so the
    // global layers' ratios are those of a model made of them alone.
    std::vector<uint8_t> local_layers;
};

// Collects the sets step by step and builds the taxonomy. Memory: the prefill sets
// ([n_layer, n_head_kv] sets of k ints) plus one float per (head, decode step); a decode step's sets
// are reduced to overlaps as they arrive.
class HcProfiler {
public:
    HcProfiler(int32_t n_layer, int32_t n_head_kv, const HcProfileParams& params);

    // Head (il, ih)'s set at the prefill step (ascending). Must come before its decode sets.
    Status add_prefill(int32_t il, int32_t ih, std::span<const int32_t> set);
    // Head (il, ih)'s set at one decode step (ascending).
    Status add_decode(int32_t il, int32_t ih, std::span<const int32_t> set);

    // Stability of every head ([n_layer * n_head_kv]); requires >= 1 decode set per head.
    Expected<std::vector<double>> stability() const;
    // Roles, clusters and ratios from the sets so far (taxonomy.topk / source are left for the
    // caller). Errors: a head without a prefill set or without decode sets.
    Expected<Taxonomy> finish() const;

private:
    int32_t n_layer_, n_head_kv_;
    HcProfileParams params_;
    std::vector<std::vector<int32_t>> prefill_;   // [n_layer * n_head_kv] ascending sets
    std::vector<uint8_t> have_prefill_;           // [n_layer * n_head_kv]
    std::vector<std::vector<double>> overlap_;    // [n_layer * n_head_kv] -> one per decode step
};

// Classification and ratios from per-head stability and per-layer clusters (the last two steps of
// the profile, exposed for tests): fills t.role, t.ratio, t.clusters, t.stability.
// stability: [n_layer * n_head_kv]; clusters: [n_layer].
Taxonomy hc_classify(int32_t n_layer, int32_t n_head_kv, const std::vector<double>& stability,
                     std::vector<std::vector<HeadCluster>> clusters, const HcProfileParams& params);

}  // namespace hkv
