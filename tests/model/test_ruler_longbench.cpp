// RULER and LongBench on the shared data and the retrieval model (skipped when ../shared is absent):
// the generated niah_multikey_3 has the structure of RULER's own reference samples; RULER niah in
// the model's trained phrasing is answered with the full cache and lost by a window that drops the
// needle, deterministically; LongBench multi_news runs end to end with middle truncation.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "eval/longbench.h"
#include "eval/ruler.h"
#include "model/model.h"
#include "test_util.h"

namespace hkv::eval {
namespace {

const std::string kModel = test::shared_path("models/retrieval-1.4M.gguf");
const std::string kData = test::shared_path("data");
const std::string kReference = kData + "/ruler/reference_samples/niah_multikey_3_4096.jsonl";

// The input with every uuid replaced by U: RULER's template text remains.
std::vector<std::string> shape(const std::string& input) {
    static const std::regex uuid("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");
    std::vector<std::string> lines;
    std::stringstream ss(std::regex_replace(input, uuid, "U"));
    for (std::string l; std::getline(ss, l);) lines.push_back(l);
    return lines;
}

TEST(RulerModel, MultikeyThreeHasTheReferenceFormat) {
    HKV_REQUIRE_SHARED(kModel);
    HKV_REQUIRE_SHARED(kReference);
    auto model = model_load(kModel);
    ASSERT_TRUE(model.ok());
    auto data = ruler_data_load(kData);
    ASSERT_TRUE(data.ok()) << data.status().to_string();
    const Tokenizer& tok = (*model)->tokenizer();
    auto task = ruler_task("niah_multikey_3");
    ASSERT_TRUE(task.ok());
    auto ours = ruler_generate(*task, *data, 4096, 2, 42, [&](const std::string& s) {
        return 1 + int32_t(tok.encode(s, false).size());
    });
    ASSERT_TRUE(ours.ok()) << ours.status().to_string();
    std::ifstream in(kReference);
    std::string line;
    ASSERT_TRUE(std::getline(in, line));
    const nlohmann::json ref = nlohmann::json::parse(line);
    std::vector<std::string> keys;
    for (const auto& [k, v] : ref.items()) keys.push_back(k);
    EXPECT_EQ(keys, (std::vector<std::string>{"index", "input", "length", "outputs"}));  // what we write (--dump-samples)
    const std::vector<std::string> r = shape(ref["input"].get<std::string>());
    for (const RulerSample& s : *ours) {
        const std::vector<std::string> o = shape(s.input);
        ASSERT_GE(o.size(), 3u);
        EXPECT_EQ(o.front(), r.front());  // the singular header sentence
        EXPECT_EQ(o.back(), r.back());    // question + answer prefix
        EXPECT_EQ(o[1], r[1]);            // a needle line: "One of the special magic uuids for U is: U."
        for (size_t i = 1; i + 1 < o.size(); ++i) EXPECT_EQ(o[i], r[1]) << "line " << i;
        ASSERT_EQ(s.outputs.size(), ref["outputs"].size());
        EXPECT_EQ(shape(s.outputs[0]), shape(ref["outputs"][0].get<std::string>()));
        EXPECT_LE(s.length, 4096);
    }
}

TEST(RulerModel, FullRetrievesWindowLosesDeterministically) {
    HKV_REQUIRE_SHARED(kModel);
    auto model = model_load(kModel);
    ASSERT_TRUE(model.ok());
    auto data = ruler_data_load(kData);
    ASSERT_TRUE(data.ok()) << data.status().to_string();
    auto task = ruler_task("niah_single_2");
    ASSERT_TRUE(task.ok());
    task->needle = " The special magic {type_v} for {key} is: {value}. ";
    task->question = "\nWhat is the special magic {type_v} for {query}? The special magic {type_v} for {query} is:";
    const Tokenizer& tok = (*model)->tokenizer();
    auto samples = ruler_generate(*task, *data, 1024, 3, 42, [&](const std::string& s) {
        return 1 + int32_t(tok.encode(s, false).size());
    });
    ASSERT_TRUE(samples.ok()) << samples.status().to_string();
    ContextParams cp;
    cp.n_threads = 2;
    auto full = ruler_run(*model, cp, "full", *task, *samples, false, 12);
    ASSERT_TRUE(full.ok()) << full.status().to_string();
    EXPECT_GE(full->score(), 66.0);
    auto win = ruler_run(*model, cp, "streaming:budget=64", *task, *samples, false, 12);
    ASSERT_TRUE(win.ok());
    EXPECT_LE(win->score(), 34.0);
    EXPECT_LT(win->kv_bytes, full->kv_bytes / 4);
    auto again = ruler_run(*model, cp, "full", *task, *samples, false, 12);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->predictions, full->predictions);
}

TEST(LongBenchModel, MultiNewsEndToEnd) {
    HKV_REQUIRE_SHARED(kModel);
    HKV_REQUIRE_SHARED(kData + "/longbench/multi_news.jsonl");
    auto model = model_load(kModel);
    ASSERT_TRUE(model.ok());
    auto cfg = longbench_config_load(kData + "/longbench");
    ASSERT_TRUE(cfg.ok()) << cfg.status().to_string();
    EXPECT_EQ(cfg->max_gen.at("multi_news"), 512);
    auto rows = longbench_load(kData + "/longbench/multi_news.jsonl", 1);
    ASSERT_TRUE(rows.ok()) << rows.status().to_string();
    ASSERT_EQ(rows->size(), 1u);
    EXPECT_EQ((*rows)[0].dataset, "multi_news");
    ContextParams cp;
    cp.n_threads = 2;
    cp.n_ctx = 1024;
    auto res = longbench_run(*model, cp, "full", *cfg, *rows, 256);  // 256 prompt tokens: truncated
    ASSERT_TRUE(res.ok()) << res.status().to_string();
    EXPECT_LE(res->prompt_tokens[0], 256);
    EXPECT_GE(res->prompt_tokens[0], 240);
    EXPECT_GE(res->score(), 0.0);
    EXPECT_LE(res->score(), 100.0);
    EXPECT_FALSE(res->predictions[0].empty());
    EXPECT_EQ(longbench_load("/nonexistent.jsonl").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace hkv::eval
