// policy/heterocache_taxonomy.h — HeteroCache's head taxonomy: which role each (layer, KV head)
// plays, its budget weight, and which satellites follow which pivot (../shared/docs/methods.md §1).
//
// The Taxonomy struct, its file format, taxonomy_load / taxonomy_save are public:
// include/heterokv/calibrate.h. Here: validation, JSON text and the budget rule.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "heterokv/calibrate.h"
#include "heterokv/status.h"

namespace hkv {

// Checks the taxonomy's internal consistency: roles in 1..4; ratio -1 exactly for full heads and
// finite > 0 for compressed ones; every pivot leads a cluster of >= 1 satellites of its layer, every
// satellite belongs to exactly one cluster, no head is in two roles. kInvalidArgument saying where.
Status taxonomy_validate(const Taxonomy& t);
// kInvalidArgument unless the taxonomy has the model's n_layer x n_head_kv shape.
Status taxonomy_check_shape(const Taxonomy& t, int32_t n_layer, int32_t n_head_kv);

// Parses and validates the JSON text. Errors name the field and (layer, head) that is wrong.
Expected<Taxonomy> taxonomy_from_json(std::string_view text);
// JSON text in the reference schema (meta.type_map and meta.counts included), plus heterokv's meta.
std::string taxonomy_to_json(const Taxonomy& t);

// The reference code's budget rule (get_compress_len) for a prompt of L tokens and compression
// ratio cr (the fraction of the total prefill KV kept hot, full heads included):
//   N_total = n_layer * n_head_kv, N_full = #volatile + #pivot,
//   base = floor((cr * N_total - N_full) * L / (N_total - N_full)),
//   cap_h = min(floor(base * ratio_h), L) for anchors / satellites, L for full heads.
// Errors: cr outside (0, 1], L < 1, or cr * N_total <= N_full (the full heads alone exceed it).
// N_total and N_full count the heads of the global layers only (t.local_layers; a local head's
// cap is L, unused: the runtime leaves local layers alone).
struct HcBudget {
    int64_t base = 0;
    std::vector<int64_t> cap;   // [n_layer * n_head_kv]
};
Expected<HcBudget> heterocache_budget(const Taxonomy& t, double cr, int64_t n_prompt);

}  // namespace hkv
