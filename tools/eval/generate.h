// tools/eval/generate.h — the answer step shared by the generation evals (RULER, LongBench):
// prefill a prompt in up to two parts, then decode greedily.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "heterokv/engine.h"

namespace hkv::eval {

struct GenerateOptions {
    int32_t n_gen = 32;            // tokens generated at most
    bool stop_at_newline = false;  // stop once a generated piece holds '\n' (LongBench's samsum)
};

// Forgets the sequence in cx, feeds `context` as one prompt (the policy compresses at its end),
// then `question` if non-empty as a second prompt (query-agnostic protocol: the question sees the
// compressed cache), then decodes greedily until an end-of-generation token or n_gen tokens.
// Returns the generated text (pieces of the generated tokens concatenated).
Expected<std::string> generate_greedy(Context& cx, std::span<const int32_t> context,
                                      std::span<const int32_t> question, const GenerateOptions& opt);

}  // namespace hkv::eval
