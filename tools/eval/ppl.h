// tools/eval/ppl.h — perplexity of a text under KV compression, and how far each policy's
// next-token distributions move from the uncompressed (`full`) ones.
//
// The text is cut into non-overlapping windows of n_window tokens: BOS (when the model's tokenizer
// adds one) followed by the next n_window - 1 text tokens. Each window is run once per policy
// in a fresh sequence:
//
//   context mode:  prefill tokens [0, C) in one eval (the policy compresses at the end of its
//                  prompt, as it does in `run`), then feed tokens C .. W-1 one at a time (decode
//                  steps; the policy's decode behaviour applies). Scored: the W - C predictions of
//                  tokens C .. W-1.
//   stream mode:   C = 0: the first token is the whole prompt; every later token is a decode step,
//                  so the policy holds the cache at its budget while the window streams through
//                  (bounded memory). Scored: the W - 1 predictions of tokens 1 .. W-1.
//
// The baseline is the same window under `full` with exactly the same schedule (same chunks, same
// decode steps), so a difference in the numbers is the policy's and nothing else: `full` against
// the baseline gives KLD 0 and top-1 agreement 1 bit for bit. The baseline is computed once per
// window and shared by every policy; only its scored logits rows are kept ([n_scored, n_vocab]).
//
// Per policy: perplexity over the scored tokens, KL(full || policy) per scored token (mean, p99,
// max), top-1 agreement with full, KV bytes in use after the context (after its compression) and
// at the end of the window (means over windows), peak RSS, time. Deterministic for a given thread
// count (results do not depend on timing).
#pragma once

#include <cstdint>
#include <optional>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "heterokv/model.h"
#include "heterokv/score.h"
#include "heterokv/status.h"
#include "heterokv/types.h"

namespace hkv::eval {

class PplDump;  // eval/ppl_dump.h

struct PplParams {
    int32_t n_window = 512;     // W: tokens per window, BOS included
    int32_t n_context = 256;    // C: context tokens prefilled per window, 1 <= C < W (context mode)
    bool stream = false;        // stream mode (C = 0); n_context is then ignored
    int32_t max_windows = 0;    // windows evaluated: 0 = every window of the text; K = K windows
                                // spread evenly over the text (window i of n: floor(i * n / K))
    int32_t n_ctx = 0;          // the model's context limit W is checked against; 0 = its
                                // training context from the file (stories260K's file says 128)
    int32_t n_threads = 0;      // 0 = all hardware threads
    int32_t n_batch = 0;        // prefill chunk in tokens; 0 = the whole context in one chunk
    KvType kv_type = KvType::kF16;  // KV cache element type (K and V unless type_k / type_v are set)
    std::optional<KvType> type_k, type_v;  // ContextParams::type_k / type_v (-ctk / -ctv)
    std::optional<KvType> base_type;  // the baseline `full` run's K and V type (--base-kv-type), so KLD
                                      // and top-1 measure a quantized cache against f16; unset: the
                                      // policies' types
    int32_t kv_page_size = 64;  // slots per KV page
    std::string kv_cold_dir;    // ContextParams::kv_cold_dir (heterocache's cold tier)
    PplDump* dump = nullptr;    // if set: every window's tokens, each run's kept positions after the
                                // context and its scored logits rows are recorded (--dump; the
                                // caller opens it and calls finish())
};

// The windows of a text: where each starts in the text tokens (without BOS).
struct PplPlan {
    bool bos = false;              // windows start with the model's BOS
    int32_t n_text = 0;            // text tokens available
    int32_t n_available = 0;       // whole windows in the text
    int32_t n_context = 0;         // C (0 in stream mode)
    int32_t n_scored = 0;          // scored predictions per window: W - C (W - 1 in stream mode)
    std::vector<int64_t> starts;   // [n_windows] offsets into the text tokens, ascending
};

// Results for one policy, over every scored token of every window.
struct PplResult {
    std::string policy;            // spec as given ("full" for the baseline row)
    bool baseline = false;         // the shared `full` baseline itself
    int64_t n_scored = 0;          // tokens scored
    double nll_mean = 0.0;         // mean negative log-likelihood, nats
    double ppl = 0.0;              // exp(nll_mean)
    double kld_mean = 0.0;         // KL(full || policy), nats per token
    double kld_p99 = 0.0;          // 99th percentile (nearest rank) over scored tokens
    double kld_max = 0.0;
    double top1 = 0.0;             // fraction of scored tokens whose argmax equals full's
    double kv_bytes_context = 0.0; // KV bytes in use after the context's prefill and compression
    double kv_bytes_end = 0.0;     // KV bytes in use after the window's last token (mean over windows)
    size_t rss_peak = 0;           // resident high-water mark during this policy's runs, bytes
                                   // (reset before each run when /proc/self/clear_refs allows it;
                                   // otherwise the process's peak so far)
    double seconds = 0.0;          // wall time of this policy's runs
};

struct PplReport {
    PplPlan plan;
    int32_t n_window = 0;
    bool rss_per_policy = false;     // rss_peak was reset before each run
    std::vector<PplResult> results;  // [0] = the `full` baseline, then one per policy in order
};

// Called after each (window, policy) run with (runs done, runs total).
using PplProgressFn = std::function<void(int64_t done, int64_t total)>;

// Plans the windows of n_text text tokens. Errors (kInvalidArgument / kOutOfRange) name the
// problem: W < 2, C outside [1, W), W above the context limit, a text shorter than one window.
Expected<PplPlan> ppl_plan(int64_t n_text, bool bos, int32_t n_ctx_limit, const PplParams& params);

// Tokenizes text without BOS, as the windows take it (BOS is added per window).
std::vector<int32_t> ppl_tokenize(const Model& model, std::string_view text);

// Runs the evaluation of text tokens (without BOS) for each policy spec. Bad specs fail before
// any work is done.
Expected<PplReport> ppl_run(std::shared_ptr<const Model> model, std::span<const int32_t> text,
                            std::span<const std::string> policies, const PplParams& params,
                            const PplProgressFn& progress = {});

// ---- the per-token arithmetic (exposed for tests) ----
// All in double from f32 logits; a row is [n_vocab]. log_sum_exp and kl_divergence are the
// library's (heterokv/score.h), shared with the Python bindings.
using hkv::kl_divergence;
using hkv::log_sum_exp;
int32_t argmax(std::span<const float> logits);  // first index of the maximum
// Nearest-rank percentile (0 < pct <= 100) of values; 0 for an empty set.
double percentile(std::vector<float> values, double pct);

}  // namespace hkv::eval
