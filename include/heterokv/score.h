// heterokv/score.h — how well a logits row predicts a token, and how far two rows are apart: the
// per-token arithmetic of `heterokv eval ppl` (perplexity, KL divergence against the full cache,
// top-1 agreement) for any front end (the Python bindings' score()).
//
//   const double lse = hkv::log_sum_exp(row);             // row: [n_vocab] logits
//   nll += lse - row[target];                             // -log softmax(row)[target], nats
//   kld += hkv::kl_divergence(full, lse_full, row, lse);  // KL(softmax(full) || softmax(row))
//   agree += hkv::sample_greedy(row) == hkv::sample_greedy(full);   (heterokv/sampler.h)
//
// All in double from f32 logits, so results do not depend on the caller.
#pragma once

#include <span>

namespace hkv {

// log(sum(exp(logits))), computed around the maximum.
double log_sum_exp(std::span<const float> logits);
// KL(P || Q) with P = softmax(p), Q = softmax(q) and their log-sum-exps given; >= 0 (rounding
// below 0 is clamped). p and q have the same length.
double kl_divergence(std::span<const float> p, double lse_p, std::span<const float> q, double lse_q);

}  // namespace hkv
