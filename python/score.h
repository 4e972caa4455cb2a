// python/score.h — heterokv.score(): one window of tokens scored under compression policies
// against the full cache, as `heterokv eval ppl` scores a window in context mode (tools/eval/ppl.h),
// on the public API only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "heterokv/engine.h"

namespace hkv::python {

// One policy's scores over the window's scored tokens.
struct ScoreResult {
    std::string policy;
    int64_t n_scored = 0;          // W - C predictions
    double nll_mean = 0.0;         // mean negative log-likelihood, nats
    double ppl = 0.0;              // exp(nll_mean)
    double kld_mean = 0.0;         // KL(full || policy) per scored token, nats
    double kld_max = 0.0;
    double top1 = 0.0;             // fraction of scored tokens whose argmax equals full's
    int64_t kv_bytes_context = 0;  // KV bytes in use after the context's prefill (and compression)
    int64_t kv_bytes_end = 0;      // after the window's last token
};

// The tokens `heterokv eval ppl` makes of a text for one window: BOS when the model's tokenizer adds
// one, then the text's tokens.
std::vector<int32_t> score_tokens(const Model& model, const std::string& text);

// Runs the window (W = tokens.size() tokens) under `full`, then under each policy, each in a fresh
// context of W tokens built from cp (its n_ctx and policy are set here; n_batch 0 = the whole context
// in one chunk): tokens [0, C) in one eval, then tokens C .. W-1 one decode step each; scored: the
// W - C predictions of tokens C .. W-1 (C = n_context). Every spec is validated before any work.
// cancel is polled between steps (an eval's cancel hook); a cancel fails with kCancelled.
// Errors: C outside [1, W), a bad spec, the context's.
Expected<std::vector<ScoreResult>> score_window(std::shared_ptr<const Model> model, const std::vector<int32_t>& tokens,
                                                const std::vector<std::string>& policies, int32_t n_context,
                                                ContextParams cp, const Context::CancelFn& cancel);

}  // namespace hkv::python
