// tools/eval/calibrate.h — `heterokv calibrate`: HeteroCache's offline profiling on a real model.
//
// The run (../shared/docs/methods.md §1.3 [CODE] and §1.7):
//   1. The calibration text is tokenized (BOS when the model adds one) and cut to L0 tokens.
//   2. Prefill of those L0 tokens, then n_decode greedy decode steps (argmax; an end-of-generation
//      token does not stop the run, the profile wants a fixed number of steps).
//   3. At the prompt's last token and at every decode step, each layer's attention of that query is
//      observed (Context::set_attn_observer): per KV head, the softmax row over the first L0 keys
//      (the prompt's; generated keys are dropped, not renormalized), mean over the GQA group.
//   4. Each row becomes a top-k set (avg-pool 5, top-k) and the profiling core
//      (policy/heterocache_profile.h) turns the sets into a Taxonomy: stability, similarity graph,
//      star clustering, roles, budget ratios.
// The reference observes 99 decode steps (its 100 new tokens include the one the prefill
// predicts); here n_decode counts the observed steps.
//
// Deterministic for a given thread count: greedy decoding, and top-k ties go to the smaller
// position.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "heterokv/status.h"
#include "policy/heterocache_taxonomy.h"

namespace hkv {
class Model;
}

namespace hkv::eval {

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
    uint32_t kv_type = 1;      // KV cache DType id (1 = f16, 30 = bf16, 0 = f32)
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

}  // namespace hkv::eval
