// tools/eval/ruler.h — RULER's synthetic long-context tasks: generators, scoring and a runner.
//
// The generators follow RULER (NVIDIA/RULER scripts/data/synthetic/*.py, facts only):
//   niah_*   needles "One of the special magic {type_v} for {key} is: {value}." in a noise
//            ("The grass is green. ..." repeated), essay (Paul Graham essays, split into sentences)
//            or needle (many distractor needles) haystack; keys/values are numbers (7 digits),
//            words (adjective-noun) or uuids; multikey = several keys, one queried; multivalue =
//            several values per key; multiquery = several keys queried. When exactly one value is
//            asked for, the template is put in the singular ("A special magic uuid is hidden ...").
//   vt       variable tracking: a chain "VAR X = 12345", "VAR Y = VAR X " ... hidden in noise, with
//            a one-shot example in front; the answer is every variable of the chain.
//   cwe      common words: a numbered word list where 10 words repeat often; one-shot example.
//   fwe      frequent words: coded 6-letter words drawn from a Zipf(alpha) law; top three asked.
// The prompt is RULER's template with its answer prefix appended (the "input" of RULER's jsonl,
// no chat template), sized to the token budget: input tokens + tokens_to_generate <= max_length,
// the haystack size found by binary search with the model's tokenizer.
//
// Scoring as RULER: the prediction is stripped (control characters become newlines) and every task
// here uses string_match_all (fraction of the references found, case-insensitive substring);
// string_match_part (any reference) is RULER's for its QA tasks, which need SQuAD/HotpotQA and are
// not generated here. Scores are means over samples, in percent.
//
// Determinism: sample i of a task depends only on (task, max_length, seed, i) and the tokenizer.
// Randomness is our own generator (splitmix/xoshiro-style, not Python's), so the samples are
// RULER-shaped but not RULER's byte for byte.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "heterokv/engine.h"
#include "heterokv/status.h"

namespace hkv::eval {

enum class RulerKind { kNiah, kVt, kCwe, kFwe };
enum class RulerHaystack { kNoise, kEssay, kNeedle };
enum class RulerItem { kNumbers, kWords, kUuids };  // what keys / values are made of

// One of RULER's task configurations (synthetic.yaml).
struct RulerTask {
    std::string name;  // e.g. "niah_multikey_3"
    RulerKind kind = RulerKind::kNiah;
    int32_t tokens_to_generate = 128;
    // niah
    RulerHaystack haystack = RulerHaystack::kEssay;
    RulerItem type_k = RulerItem::kWords, type_v = RulerItem::kNumbers;
    int32_t num_k = 1, num_v = 1, num_q = 1;
    // vt
    int32_t num_chains = 1, num_hops = 4;
    // cwe (freq_cw / freq_ucw become 6 / 1 below 4096 tokens, as RULER does)
    int32_t freq_cw = 30, freq_ucw = 3, num_cw = 10;
    // fwe
    double alpha = 2.0;
    // niah phrasing overrides (empty: RULER's). In both, {type_v} is the singular item name
    // ("number", "word", "uuid"); the needle takes {key} and {value}, the question {query}. The
    // question replaces RULER's text after the haystack (question and answer prefix). For models
    // trained on one phrasing (retrieval-1.4M): the task's structure stays RULER's.
    std::string needle, question;
};

// The 11 generated task names in RULER's order: niah_single_{1,2,3}, niah_multikey_{1,2,3},
// niah_multivalue, niah_multiquery, vt, cwe, fwe.
std::vector<std::string> ruler_task_names();
// kInvalidArgument naming the known tasks for an unknown name.
Expected<RulerTask> ruler_task(std::string_view name);

// Word lists and the essay haystack.
struct RulerData {
    std::vector<std::string> nouns, adjs, verbs;  // wonderwords lists, one word per line
    std::string essay;                            // PaulGrahamEssays.json "text"
};
// Reads DIR/ruler/{noun,adjective,verb}list.txt and DIR/haystack/PaulGrahamEssays.json
// (DIR = ../shared/data). kIoError / kInvalidArgument naming the file.
Expected<RulerData> ruler_data_load(const std::string& data_dir);

// One sample in RULER's jsonl format (index, input, outputs, length) plus where the question starts.
struct RulerSample {
    int32_t index = 0;
    std::string input;                 // template + answer prefix
    std::vector<std::string> outputs;  // references
    int32_t length = 0;                // tokens of input + tokens_to_generate
    size_t question_at = 0;            // input[0, question_at) = instructions + context
};

// Counts the tokens of a text as the model will see it (BOS included when the model adds it).
using TokenCounter = std::function<int32_t(const std::string&)>;

// Generates n_samples samples of the task for a budget of max_length tokens (input +
// tokens_to_generate). Errors: a budget too small for even the smallest haystack, bad counts.
Expected<std::vector<RulerSample>> ruler_generate(const RulerTask& task, const RulerData& data, int32_t max_length,
                                                  int32_t n_samples, uint64_t seed, const TokenCounter& count);

// RULER's metrics on one prediction, in [0, 1]; the prediction is post-processed as RULER does.
double ruler_string_match_all(std::string_view pred, const std::vector<std::string>& refs);
double ruler_string_match_part(std::string_view pred, const std::vector<std::string>& refs);
std::string ruler_postprocess(std::string_view pred);

// Per-sample outcome of running a task under one policy.
struct RulerResult {
    std::string policy, task;
    int32_t max_length = 0;
    std::vector<std::string> predictions;  // [n_samples]
    std::vector<double> scores;            // [n_samples], in [0, 1]
    int64_t kv_bytes = 0;                  // cache bytes after the last answer
    double score() const;                  // mean, in percent
};

using RulerProgress = std::function<void(size_t done, size_t total)>;

// Runs the samples under `policy`: greedy decoding of n_gen tokens (0: the task's
// tokens_to_generate), stopping at end of generation. Query-agnostic protocol (default): the
// context (input[0, question_at)) is prefilled and compressed first, then the question and answer
// prefix are fed; aware: both in one prompt. params.n_ctx is raised to fit the longest sample.
Expected<RulerResult> ruler_run(std::shared_ptr<const Model> model, ContextParams params, const std::string& policy,
                                const RulerTask& task, const std::vector<RulerSample>& samples, bool query_aware,
                                int32_t n_gen = 0, const RulerProgress& progress = {});

}  // namespace hkv::eval
