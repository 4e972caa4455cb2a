// tools/eval/longbench.h — LongBench (v1, THUDM/LongBench): data, prompts, metrics and a runner.
//
// As LongBench's pred.py and eval.py do (facts only):
//   prompt    dataset2prompt.json[dataset] with {context} and {input} substituted from the row;
//   truncate  when the tokenized prompt is longer than max_length tokens, keep its first and last
//             max_length/2 tokens: prompt = decode(first half) + decode(last half) (re-tokenized);
//   generate  greedily dataset2maxlen.json[dataset] tokens (samsum also stops at a newline);
//   score     per row the max over the reference answers of the dataset's metric (trec, triviaqa,
//             samsum, lsht: the prediction's first line only, after stripping leading newlines);
//             the task score is 100 x the mean over rows, rounded to 2 decimals.
// No chat template is applied (the models here are base models; LongBench wraps only chat models).
//
// Metrics (English and code; the Chinese datasets need jieba and are refused with an error):
//   qa_f1        SQuAD normalisation (lower case, drop ASCII punctuation, drop the words a/an/the,
//                collapse white space), token-multiset F1;
//   rouge_l      the `rouge` package's summary-level ROUGE-L F (what LongBench calls): sentences
//                split on '.', words on ' ', the union of the word sets of the LCSs;
//   classification, retrieval (the "Paragraph N" id), count (digit runs), code_sim (first line
//                without ` # //, fuzzywuzzy ratio with python-Levenshtein: 2·LCS/(|a|+|b|), rounded).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "heterokv/engine.h"
#include "heterokv/status.h"

namespace hkv::eval {

// One row of a LongBench-format jsonl file.
struct LongBenchRow {
    std::string id, dataset, language;
    std::string input, context;
    std::vector<std::string> answers;
    std::vector<std::string> all_classes;  // classification datasets only
    int32_t length = 0;                    // words, as in the file
};

// Reads up to max_rows rows (0 = all). kIoError / kInvalidArgument naming the file and line.
Expected<std::vector<LongBenchRow>> longbench_load(const std::string& path, int32_t max_rows = 0);

// dataset2prompt.json and dataset2maxlen.json from DIR.
struct LongBenchConfig {
    std::map<std::string, std::string> prompt;
    std::map<std::string, int32_t> max_gen;
};
Expected<LongBenchConfig> longbench_config_load(const std::string& dir);

// Python str.format of a LongBench template with the row's {context} and {input}.
std::string longbench_prompt(const std::string& tmpl, const LongBenchRow& row);

// The metrics, each on one (prediction, reference) pair, in [0, 1].
std::string longbench_normalize_answer(std::string_view s);
double longbench_qa_f1(std::string_view pred, std::string_view ref);
double longbench_rouge_l(std::string_view pred, std::string_view ref);  // 0 when either side has no sentence
double longbench_classification(std::string_view pred, std::string_view ref, const std::vector<std::string>& classes);
double longbench_retrieval(std::string_view pred, std::string_view ref);
double longbench_count(std::string_view pred, std::string_view ref);
double longbench_code_sim(std::string_view pred, std::string_view ref);
int32_t longbench_fuzz_ratio(std::string_view a, std::string_view b);  // fuzzywuzzy fuzz.ratio, 0..100

// A row's score in [0, 1] for its dataset (the max over answers, with the first-line rule).
// kInvalidArgument for a dataset without an implemented metric.
Expected<double> longbench_score(const std::string& dataset, std::string_view pred,
                                 const std::vector<std::string>& answers, const std::vector<std::string>& classes);

struct LongBenchResult {
    std::string policy, dataset;
    std::vector<std::string> predictions;  // [n_rows]
    std::vector<double> scores;            // [n_rows], in [0, 1]
    std::vector<int32_t> prompt_tokens;    // [n_rows], after truncation
    int64_t kv_bytes = 0;                  // cache bytes after the last answer
    double score() const;                  // LongBench's: round(100 x mean, 2)
};

using LongBenchProgress = std::function<void(size_t done, size_t total)>;

// Runs rows (all of one dataset) under `policy`: prompt, middle truncation to max_length tokens,
// greedy generation of max_gen tokens, scoring. max_length <= 0: params.n_ctx - max_gen.
Expected<LongBenchResult> longbench_run(std::shared_ptr<const Model> model, ContextParams params,
                                        const std::string& policy, const LongBenchConfig& cfg,
                                        const std::vector<LongBenchRow>& rows, int32_t max_length,
                                        const LongBenchProgress& progress = {});

}  // namespace hkv::eval
