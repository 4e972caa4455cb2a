// Model tests on synthetic llama and qwen2 models (tiny presets of `heterokv make-model`, q8_0,
// seed 1, SmolLM2 tokenizer) against llama.cpp's log-probabilities on the same files
// (goldens: scripts/gen_synthetic_golden.sh). Skipped when ../shared's tokenizer is absent.
//
// Thresholds: both engines quantize activations to q8_0 for q8_0 weights and keep an f16 KV cache,
// so only summation order differs: top-1 must agree at every step where the reference's top-2 gap
// exceeds kTieGap, and the top-10 log-probabilities must agree within kLogprobTol.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "heterokv/engine.h"
#include "model/model.h"
#include "model/synthetic.h"
#include "sample/sampler.h"
#include "test_util.h"

namespace hkv {
namespace {

constexpr double kLogprobTol = 0.02;
constexpr double kTieGap = 0.01;

const std::string kTokenizer = test::shared_path("models/smollm2-135m-tokenizer/tokenizer.json");

void check_preset(const std::string& preset) {
    HKV_REQUIRE_SHARED(kTokenizer);
    test::TempDir dir;
    auto shape = synth_preset(preset);
    ASSERT_TRUE(shape.ok());
    auto tok = tokenizer_data_from_hf_json(kTokenizer);
    ASSERT_TRUE(tok.ok()) << tok.status().to_string();
    SynthOptions so;
    so.weight_type = DType::kQ8_0;
    so.seed = 1;
    ThreadPool pool(2);
    const std::string path = dir.file(preset + ".gguf");
    ASSERT_TRUE(synth_model_write(*shape, *tok, so, pool, path).ok());
    auto model = model_load(path);
    ASSERT_TRUE(model.ok()) << model.status().to_string();
    EXPECT_EQ((*model)->config().arch, shape->arch);

    const nlohmann::json g =
        nlohmann::json::parse(test::read_file(test::data_path("golden/" + preset + "_q8_0_probs.json")));
    const auto prompt = g["prompt_tokens"].get<std::vector<int32_t>>();
    EXPECT_EQ((*model)->tokenizer().encode(g["prompt"].get<std::string>(), true), prompt);
    auto ctx = Context::create(*model, {.n_ctx = 512, .n_threads = 2});
    ASSERT_TRUE(ctx.ok());
    ASSERT_TRUE((*ctx)->eval(prompt).ok());
    double max_diff = 0.0;
    int agree = 0, decisive = 0;
    for (const auto& step : g["steps"]) {
        std::span<const float> l = (*ctx)->logits();
        double mx = -1e30, s = 0.0;
        for (float v : l) mx = std::max(mx, double(v));
        for (float v : l) s += std::exp(double(v) - mx);
        const int32_t id = step["id"].get<int32_t>();
        const auto& top = step["top"];
        const bool near_tie = top.size() > 1 && top[0][1].get<double>() - top[1][1].get<double>() < kTieGap;
        if (!near_tie) {
            ++decisive;
            agree += sample_greedy(l) == id;
        }
        for (const auto& t : top) {
            const double lp = double(l[t[0].get<size_t>()]) - mx - std::log(s);
            max_diff = std::max(max_diff, std::abs(lp - t[1].get<double>()));
        }
        ASSERT_TRUE((*ctx)->eval({&id, 1}).ok());
    }
    std::printf("%s: top-1 agreement %d/%d decisive steps, max |logprob diff| %.3g\n", preset.c_str(), agree,
                decisive, max_diff);
    EXPECT_EQ(agree, decisive);
    EXPECT_LT(max_diff, kLogprobTol);
}

TEST(Synthetic, TinyLlamaMatchesReference) { check_preset("tiny-llama"); }
TEST(Synthetic, TinyQwen2MatchesReference) { check_preset("tiny-qwen2"); }

}  // namespace
}  // namespace hkv
