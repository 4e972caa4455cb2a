// tools/eval/niah.h — needle in a haystack: a grid of context lengths x needle depths.
//
// For each cell: the haystack's first tokens are taken so that BOS + haystack + needle + question fill
// `length` tokens; the needle goes at `depth` (0 = start, 1 = end of the haystack), moved back to the
// nearest sentence end as the original benchmark does. With the query-agnostic protocol (default,
// kvpress's) the context (BOS + haystack with needle) is prefilled and compressed by the policy first,
// then the question is fed and the answer generated greedily; with the query-aware protocol the
// question is part of the prompt that is compressed. Correct = the needle's value appears in the
// generated text. Each trial uses a different key and value (seeded).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "heterokv/engine.h"
#include "heterokv/model.h"

namespace hkv::eval {

struct NiahConfig {
    std::vector<std::string> haystack_files;  // read and concatenated in this order
    std::vector<int32_t> lengths = {512, 1024, 2048};
    std::vector<double> depths = {0.0, 0.25, 0.5, 0.75, 1.0};
    int32_t trials = 3;
    // {key} and {value} are substituted.
    std::string needle = " The special magic number for {key} is: {value}. ";
    std::string question = "\nWhat is the special magic number for {key}? The special magic number for {key} is:";
    std::vector<std::string> keys;            // empty: a built-in list of nouns
    int32_t value_digits = 7;
    int32_t n_gen = 12;                       // tokens generated for the answer
    bool query_aware = false;                 // protocol: false = agnostic (question after compression)
    uint64_t seed = 1;
};

struct NiahCell {
    int32_t length = 0;        // requested context tokens
    double depth = 0.0;
    int32_t trials = 0, correct = 0;
    int64_t kv_bytes = 0;      // cache bytes after the answer (last trial)
    double kv_bytes_context = 0.0;  // cache bytes right after the compressed prompt (aware: with the
                                    // question; agnostic: the context before it), mean over trials
    int32_t prompt_tokens = 0; // actual tokens of context + question (last trial)
    std::vector<std::string> answers;  // generated text per trial
    std::vector<std::string> expected; // value per trial
};

struct NiahResult {
    std::string policy;
    std::vector<NiahCell> cells;  // lengths-major: cells[i_len * n_depth + i_depth]
    double accuracy() const;
};

using NiahProgress = std::function<void(const std::string& policy, size_t done, size_t total, const NiahCell& last)>;

// Runs the grid for one policy. params.policy is replaced by `policy`; params.n_ctx must hold the
// longest length plus n_gen. Errors: unreadable haystack, a haystack too short for a length,
// a length too short for needle + question, engine errors.
Expected<NiahResult> niah_run(std::shared_ptr<const Model> model, ContextParams params, const std::string& policy,
                              const NiahConfig& cfg, const NiahProgress& progress = {});

}  // namespace hkv::eval
