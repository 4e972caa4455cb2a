// heterokv/sampler.h — turns a logits row into the next token (the chain `heterokv run` uses).
//
// The chain follows the reference engine's order: repetition penalty (over the last
// `penalty_last_n` tokens) -> top-k -> top-p -> min-p -> temperature -> draw. temp == 0 is greedy
// (argmax, ties to the lowest id) and ignores the other filters except the penalty. Draws use a
// std::mt19937_64 seeded with `seed`, so a run is reproducible. Not thread-safe (one per sequence).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "heterokv/status.h"

namespace hkv {

struct SamplerParams {
    float temp = 0.8f;          // >= 0; 0: greedy
    int32_t top_k = 40;         // >= 0; 0: off
    float top_p = 0.95f;        // >= 1: off
    float min_p = 0.05f;        // <= 0: off
    float repeat_penalty = 1.0f;  // 1: off; > 1 discourages tokens seen in the last penalty_last_n
    int32_t penalty_last_n = 64;
    uint64_t seed = 0;
};

class Sampler {
public:
    // Validates ranges (temp finite and >= 0, top_k >= 0, top_p in (0, 1], min_p in [0, 1],
    // penalty > 0, last_n >= 0); a negative temperature or top-k is an error, not "greedy"/"off".
    static Expected<Sampler> create(const SamplerParams& params);

    // Picks a token from logits [n_vocab]. The logits are not modified.
    int32_t sample(std::span<const float> logits);
    // Records an accepted token (prompt or generated) for the repetition penalty.
    void accept(int32_t token);
    void reset();
    const SamplerParams& params() const { return params_; }

private:
    explicit Sampler(const SamplerParams& p) : params_(p), rng_(p.seed) {}
    struct Cand {
        int32_t id;
        float logit;
    };
    SamplerParams params_;
    std::mt19937_64 rng_;
    std::vector<int32_t> recent_;
    std::vector<Cand> cand_;   // scratch, reused
    std::vector<float> work_;  // scratch, reused
};

// argmax, ties to the lowest id.
int32_t sample_greedy(std::span<const float> logits);

}  // namespace hkv
