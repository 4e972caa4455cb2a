// heterokv/calibrate.h — `heterokv calibrate`: HeteroCache's offline profiling on a real model,
// and the head taxonomy it produces (the file `heterocache:taxonomy=FILE` reads).
//
// The run (../shared/docs/methods.md §1.3 [CODE] and §1.7):
//   1. The calibration text is tokenized (BOS when the model adds one) and cut to L0 tokens.
//   2. Prefill of those L0 tokens, then n_decode greedy decode steps (argmax; an end-of-generation
//      token does not stop the run, the profile wants a fixed number of steps).
//   3. At the prompt's last token and at every decode step, each layer's attention of that query is
//      observed (Context::set_attn_observer): per KV head, the softmax row over the first L0 keys
//      (the prompt's; generated keys are dropped, not renormalized), mean over the GQA group.
//   4. Each row becomes a top-k set (avg-pool 5, top-k) and the profiling core (the library's
//      src/policy/heterocache_profile.h) turns the sets into a Taxonomy: stability, similarity
//      graph, star clustering, roles, budget ratios.
// The reference observes 99 decode steps (its 100 new tokens include the one the prefill
// predicts); here n_decode counts the observed steps.
//
// Deterministic for a given thread count: greedy decoding, and top-k ties go to the smaller
// position.
//
// The taxonomy file is the reference code's JSON (data/clusters/*.json), so the shipped files for
// Llama-3.1-8B, Qwen2.5-14B and R1-Distill-Llama-8B load as they are:
//   {"meta": {"type_map": {...}, "counts": {...}, ...},
//    "classification_matrix": [[type, ...] x n_head_kv] x n_layer,
//    "allocation_matrix":     [[ratio, ...] x n_head_kv] x n_layer,   (-1 = full KV)
//    "leader_member_relations": [{"pivot": [satellite, ...]}, ...] x n_layer}
// heterokv adds optional meta fields when it writes a file (stability per head, thresholds, the
// calibration text and model); readers ignore meta fields they do not know.
#pragma once

#include <cstdint>
#include <optional>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "heterokv/model.h"
#include "heterokv/status.h"
#include "heterokv/types.h"

namespace hkv {

// ---- the head taxonomy ----
// Roles (the reference code's type_map): anchor = 1 (unique + stable: compressed statically),
// volatile = 2 (unique + drifting: full KV), pivot = 3 (cluster centre: full KV, drift monitor),
// satellite = 4 (cluster member: compressed hot set + full KV in the cold tier).
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
    // [n_layer] or empty: the model's local (sliding-window) layers, which no policy compresses
    // (a sliding-window layer of a model that also has global layers, e.g. Gemma 2/3). Their heads
    // are volatile with no clusters, and the budget rule leaves them out. JSON: meta.local_layers,
    // a 0/1 list.
    std::vector<uint8_t> local_layers;
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

// Reads and validates a taxonomy file (JSON above). Errors name the field and (layer, head) that
// is wrong.
Expected<Taxonomy> taxonomy_load(const std::string& path);
// Writes to a temporary file and renames it over `path`, so a failed write never leaves half a file.
Status taxonomy_save(const Taxonomy& t, const std::string& path);

// ---- calibration ----

struct CalibrateParams {
    int32_t n_tokens = 5000;   // L0: prompt tokens (BOS included); capped to n_ctx - n_decode and to
                               // the text's length
    int32_t n_decode = 100;    // observed greedy decode steps (>= 1)
    double topk = 1024;        // set size: an integer >= 1, or a fraction of L0 in (0, 1); clamped
                               // to L0 (a set of all L0 keys makes every head stable and similar)
    double tau_stable = 0.5;   // anchor if stability >= tau_stable, else volatile
    double tau_sim = 0.5;      // similarity threshold of the graph
    int32_t n_ctx = 0;         // context size; 0 = the model's training context
    int32_t n_threads = 0;     // 0 = all hardware threads
    int32_t n_batch = 256;     // prefill chunk in tokens
    KvType kv_type = KvType::kF16;  // KV cache element type (K and V, unless type_k / type_v are set)
    std::optional<KvType> type_k, type_v;  // as ContextParams::type_k / type_v
};

struct CalibrateResult {
    Taxonomy taxonomy;         // validated; topk set, source left for the caller
    int32_t n_prompt = 0;      // L0 used
    int32_t n_cap = 0;         // the prompt length allowed: min(n_tokens, n_ctx - n_decode)
    int32_t topk = 0;          // the set size used (after the fraction and the clamp to L0)
    int32_t n_decode = 0;      // decode steps observed
    std::string generated;     // the greedy continuation's text
    double prefill_ms = 0.0, decode_ms = 0.0;
};

// Progress: (phase "prefill" or "decode", done, total).
using CalibrateProgressFn = std::function<void(const char* phase, int64_t done, int64_t total)>;

// The set size for L0 keys: topk >= 1 is a count, 0 < topk < 1 a fraction of L0 (rounded, >= 1);
// the result is clamped to L0. kInvalidArgument for topk <= 0 or a non-integer count >= 1.
Expected<int32_t> calibrate_topk(double topk, int32_t n_prompt);

Expected<CalibrateResult> calibrate_run(std::shared_ptr<const Model> model, std::string_view text,
                                        const CalibrateParams& params, const CalibrateProgressFn& progress = {});

// A human-readable summary of a taxonomy: role counts over all heads, the budget ratios of the
// compressed heads (min / median / max), then one line per layer (roles as letters
// A = anchor, V = volatile, P = pivot, S = satellite; counts; clusters; stability range when the
// file has it).
std::string taxonomy_summary(const Taxonomy& t);

}  // namespace hkv
