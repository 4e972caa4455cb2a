// policy/heterocache_taxonomy.h — HeteroCache's head taxonomy: which role each (layer, KV head)
// plays, its budget weight, and which satellites follow which pivot (../shared/docs/methods.md §1).
//
// Roles (the reference code's type_map): anchor = 1 (unique + stable: compressed statically),
// volatile = 2 (unique + drifting: full KV), pivot = 3 (cluster centre: full KV, drift monitor),
// satellite = 4 (cluster member: compressed hot set + full KV in the cold tier).
//
// File format: the reference code's taxonomy JSON (data/clusters/*.json), so the shipped files for
// Llama-3.1-8B, Qwen2.5-14B and R1-Distill-Llama-8B load as they are:
//   {"meta": {"type_map": {...}, "counts": {...}, ...},
//    "classification_matrix": [[type, ...] x n_head_kv] x n_layer,
//    "allocation_matrix":     [[ratio, ...] x n_head_kv] x n_layer,   (-1 = full KV)
//    "leader_member_relations": [{"pivot": [satellite, ...]}, ...] x n_layer}
// heterokv adds optional meta fields when it writes a file (stability per head, thresholds, the
// calibration text and model); readers ignore meta fields they do not know.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "heterokv/status.h"

namespace hkv {

enum class HeadRole : uint8_t { kAnchor = 1, kVolatile = 2, kPivot = 3, kSatellite = 4 };

// "anchor", "volatile", "pivot", "satellite".
const char* head_role_name(HeadRole r);

struct HeadCluster {
    int32_t pivot = 0;                 // KV head index within the layer
    std::vector<int32_t> satellites;   // ascending KV head indices within the layer
};

struct Taxonomy {
    int32_t n_layer = 0, n_head_kv = 0;
    std::vector<HeadRole> role;                      // [n_layer * n_head_kv]
    std::vector<double> ratio;                       // [n_layer * n_head_kv]; -1 for pivot / volatile
    std::vector<std::vector<HeadCluster>> clusters;  // [n_layer] -> clusters, ascending by pivot
    // Optional calibration record (empty when the file had none).
    std::vector<double> stability;                   // [n_layer * n_head_kv] or empty
    double tau_stable = 0.5, tau_sim = 0.5;
    int32_t topk = 1024;
    std::string source;                              // free text: model and calibration text

    size_t at(int32_t il, int32_t ih) const { return size_t(il) * size_t(n_head_kv) + size_t(ih); }
    HeadRole role_of(int32_t il, int32_t ih) const { return role[at(il, ih)]; }
    // Heads with full KV (volatile + pivot) over all layers.
    int32_t n_full() const;
    int32_t count(HeadRole r) const;
    // The pivot whose cluster holds satellite (il, ih), or -1.
    int32_t pivot_of(int32_t il, int32_t ih) const;
};

// Checks the taxonomy's internal consistency: roles in 1..4; ratio -1 exactly for full heads and
// finite > 0 for compressed ones; every pivot leads a cluster of >= 1 satellites of its layer, every
// satellite belongs to exactly one cluster, no head is in two roles. kInvalidArgument saying where.
Status taxonomy_validate(const Taxonomy& t);
// kInvalidArgument unless the taxonomy has the model's n_layer x n_head_kv shape.
Status taxonomy_check_shape(const Taxonomy& t, int32_t n_layer, int32_t n_head_kv);

// Parses and validates the JSON text. Errors name the field and (layer, head) that is wrong.
Expected<Taxonomy> taxonomy_from_json(std::string_view text);
Expected<Taxonomy> taxonomy_load(const std::string& path);
// JSON text in the reference schema (meta.type_map and meta.counts included), plus heterokv's meta.
std::string taxonomy_to_json(const Taxonomy& t);
// Writes to a temporary file and renames it over `path`, so a failed write never leaves half a file.
Status taxonomy_save(const Taxonomy& t, const std::string& path);

// The reference code's budget rule (get_compress_len) for a prompt of L tokens and compression
// ratio cr (the fraction of the total prefill KV kept hot, full heads included):
//   N_total = n_layer * n_head_kv, N_full = #volatile + #pivot,
//   base = floor((cr * N_total - N_full) * L / (N_total - N_full)),
//   cap_h = min(floor(base * ratio_h), L) for anchors / satellites, L for full heads.
// Errors: cr outside (0, 1], L < 1, or cr * N_total <= N_full (the full heads alone exceed it).
struct HcBudget {
    int64_t base = 0;
    std::vector<int64_t> cap;   // [n_layer * n_head_kv]
};
Expected<HcBudget> heterocache_budget(const Taxonomy& t, double cr, int64_t n_prompt);

}  // namespace hkv
