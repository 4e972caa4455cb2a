// Model tests on real pretrained weights: stories260K (../shared/models; skipped when absent).
//  - greedy 200 tokens from BOS equal llama.cpp's text byte for byte
//    (golden: tests/data/golden/stories260K_greedy200.txt, from
//     `llamacpp-ref llama-completion -m stories260K.gguf -p "" -n 200 --temp 0 -no-cnv -c 512`);
//  - next-token log-probabilities of the top-10 tokens at 32 positions after two prompts match
//    llama-server's within kLogprobTol (goldens from scripts/golden_probs.py);
//  - corrupt copies of the file fail to load with a one-line error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

#include "heterokv/engine.h"
#include "model/model.h"
#include "sample/sampler.h"
#include "test_util.h"

namespace hkv {
namespace {

// With an f32 KV cache on both sides (llama-server -fa off -ctk f32 -ctv f32) the two engines
// compute the same f32 math in different orders: measured max difference 6.5e-6.
constexpr double kLogprobTolF32Kv = 5e-5;
// With the default f16 cache, llama.cpp also rounds the f32 operand of its f16 attention matmuls
// (the query, then the attention weights) to f16 where heterokv keeps f32; on this tiny model
// (head_dim 8) that moves log-probabilities by up to ~9e-3 (measured). Before any attention mixing
// (the first step from BOS) the two agree to ~2e-6.
constexpr double kFirstStepTol = 1e-5;
constexpr double kLogprobTol = 2e-2;

const std::string kModel = test::shared_path("models/stories260K.gguf");

std::shared_ptr<const Model> load() {
    auto m = model_load(kModel);
    EXPECT_TRUE(m.ok()) << m.status().to_string();
    return m.ok() ? *m : nullptr;
}

std::vector<double> log_softmax(std::span<const float> l) {
    double mx = -1e30;
    for (float v : l) mx = std::max(mx, double(v));
    double s = 0.0;
    for (float v : l) s += std::exp(double(v) - mx);
    std::vector<double> out(l.size());
    for (size_t i = 0; i < l.size(); ++i) out[i] = double(l[i]) - mx - std::log(s);
    return out;
}

TEST(Stories260K, Greedy200MatchesReferenceText) {
    HKV_REQUIRE_SHARED(kModel);
    auto model = load();
    ASSERT_TRUE(model);
    auto ctx = Context::create(model, {.n_ctx = 512, .n_threads = 2});
    ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
    const Tokenizer& tok = model->tokenizer();
    std::vector<int32_t> prompt = tok.encode("", true);
    ASSERT_EQ(prompt, std::vector<int32_t>({1}));
    ASSERT_TRUE((*ctx)->eval(prompt).ok());
    std::string text;
    for (int i = 0; i < 200; ++i) {
        const int32_t next = sample_greedy((*ctx)->logits());
        ASSERT_FALSE(tok.is_eog(next)) << "stopped early at token " << i;
        text += tok.token_to_piece(next);
        ASSERT_TRUE((*ctx)->eval({&next, 1}).ok());
    }
    // llama-completion ends its output with two newlines of its own.
    std::string golden = test::read_file(test::data_path("golden/stories260K_greedy200.txt"));
    ASSERT_GE(golden.size(), 2u);
    ASSERT_EQ(golden.substr(golden.size() - 2), "\n\n");
    golden.resize(golden.size() - 2);
    EXPECT_EQ(text, golden);
}

void check_probs(const std::string& golden_file, int n_threads, int n_batch, KvType kv_type = KvType::kF16,
                 double tol = kLogprobTol) {
    auto model = load();
    ASSERT_TRUE(model);
    const nlohmann::json g = nlohmann::json::parse(test::read_file(test::data_path(golden_file)));
    const std::vector<int32_t> ref_prompt = g["prompt_tokens"].get<std::vector<int32_t>>();
    // Our tokenizer must agree with the reference on the prompt.
    EXPECT_EQ(model->tokenizer().encode(g["prompt"].get<std::string>(), true), ref_prompt);
    auto ctx = Context::create(model, {.n_ctx = 512, .n_threads = n_threads, .n_batch = n_batch, .kv_type = kv_type});
    ASSERT_TRUE(ctx.ok());
    ASSERT_TRUE((*ctx)->eval(ref_prompt).ok());
    double max_diff = 0.0;
    bool first = true;
    for (const auto& step : g["steps"]) {
        const auto lp = log_softmax((*ctx)->logits());
        const int32_t id = step["id"].get<int32_t>();
        EXPECT_EQ(sample_greedy((*ctx)->logits()), id);
        for (const auto& t : step["top"]) {
            const double d = std::abs(lp[t[0].get<size_t>()] - t[1].get<double>());
            max_diff = std::max(max_diff, d);
            if (first && ref_prompt.size() == 1) {
                EXPECT_LT(d, kFirstStepTol);
            }
        }
        first = false;
        ASSERT_TRUE((*ctx)->eval({&id, 1}).ok());
    }
    EXPECT_LT(max_diff, tol);
    std::printf("max |logprob diff| vs llama.cpp over %zu steps: %.3g\n", g["steps"].size(), max_diff);
}

TEST(Stories260K, LogprobsMatchReferenceFromBos) {
    HKV_REQUIRE_SHARED(kModel);
    check_probs("golden/stories260K_bos_probs.json", 1, 256);
}

TEST(Stories260K, LogprobsMatchReferenceAfterPromptAnyBatchAndThreads) {
    HKV_REQUIRE_SHARED(kModel);
    check_probs("golden/stories260K_prompt_probs.json", 2, 256);
    check_probs("golden/stories260K_prompt_probs.json", 3, 7);  // chunked prefill
}

TEST(Stories260K, LogprobsMatchReferenceTightlyWithF32Cache) {
    HKV_REQUIRE_SHARED(kModel);
    check_probs("golden/stories260K_prompt_probs_f32kv.json", 2, 256, KvType::kF32, kLogprobTolF32Kv);
    check_probs("golden/stories260K_prompt_probs_f32kv.json", 1, 9, KvType::kF32, kLogprobTolF32Kv);
}

// Chunked prefill computes the same function as one-shot prefill. Checked with an f32 cache: the
// chunks only reorder f32 sums (differences ~1e-6). With the default f16 cache a last-bit difference
// upstream can flip the f16 rounding of a K or V element, which this head_dim-8 model amplifies to
// ~5e-3 at some tokens (seen under clang's AVX-512 build: 5.5e-3 at token 20 of this prompt, while
// gcc's build happens to be bit-identical), so the f16 run is held to the f16 tolerance of the
// llama.cpp comparisons instead.
TEST(Stories260K, ChunkedPrefillEqualsOneShot) {
    HKV_REQUIRE_SHARED(kModel);
    auto model = load();
    ASSERT_TRUE(model);
    std::vector<int32_t> toks = model->tokenizer().encode(
        "Lily and Ben went to the park. They saw a big tree and a small dog. The dog was happy.", true);
    for (const KvType kv : {KvType::kF32, KvType::kF16}) {
        for (const int32_t n_batch : {5, 7, 1}) {
            std::vector<float> a, b;
            auto c1 = Context::create(model, {.n_ctx = 512, .n_threads = 1, .n_batch = 512, .kv_type = kv});
            auto c2 = Context::create(model, {.n_ctx = 512, .n_threads = 1, .n_batch = n_batch, .kv_type = kv});
            ASSERT_TRUE(c1.ok() && c2.ok());
            ASSERT_TRUE((*c1)->eval(toks, &a).ok());
            ASSERT_TRUE((*c2)->eval(toks, &b).ok());
            ASSERT_EQ(a.size(), b.size());
            double mx = 0;
            for (size_t i = 0; i < a.size(); ++i) mx = std::max(mx, double(std::abs(a[i] - b[i])));
            EXPECT_LT(mx, kv == KvType::kF32 ? 1e-4 : kLogprobTol) << "n_batch " << n_batch << ", " << (kv == KvType::kF32 ? "f32" : "f16");
            std::printf("n_batch %d, %s cache: max |logit difference| vs one-shot %.3g\n", n_batch,
                        kv == KvType::kF32 ? "f32" : "f16", mx);
        }
    }
}

TEST(Stories260K, ContextOverflowIsAnErrorAndChangesNothing) {
    HKV_REQUIRE_SHARED(kModel);
    auto model = load();
    ASSERT_TRUE(model);
    auto ctx = Context::create(model, {.n_ctx = 16, .n_threads = 1});
    std::vector<int32_t> toks(10, 5);
    ASSERT_TRUE((*ctx)->eval(toks).ok());
    Status st = (*ctx)->eval(toks);
    EXPECT_EQ(st.code(), StatusCode::kOutOfRange);
    EXPECT_EQ((*ctx)->n_past(), 10);
    std::vector<int32_t> bad = {100000};
    EXPECT_EQ((*ctx)->eval(bad).code(), StatusCode::kInvalidArgument);
}

// Context::eval's cancel hook (issue 24 item 5): polled before each n_batch chunk; a cancel after
// the first chunk fails with kCancelled and leaves the sequence as it was, under a compressing
// policy too, so the same prompt evaluated afterwards gives the logits of an uncancelled run.
TEST(Stories260K, CancelledEvalChangesNothing) {
    HKV_REQUIRE_SHARED(kModel);
    auto model = load();
    ASSERT_TRUE(model);
    std::vector<int32_t> toks = model->tokenizer().encode(
        "Lily and Ben went to the park. They saw a big tree and a small dog. The dog was happy.", true);
    for (const char* policy : {"full", "snapkv:budget=16,window=4"}) {
        const ContextParams cp{.n_ctx = 512, .n_threads = 1, .n_batch = 8, .policy = policy};
        auto ref = Context::create(model, cp);
        ASSERT_TRUE(ref.ok());
        ASSERT_TRUE((*ref)->eval(toks).ok());
        auto ctx = Context::create(model, cp);
        ASSERT_TRUE(ctx.ok());
        int polls = 0;
        Status st = (*ctx)->eval(toks, nullptr, {}, [&] { return ++polls == 2; });
        EXPECT_EQ(st.code(), StatusCode::kCancelled) << policy << ": " << st.to_string();
        EXPECT_NE(st.message().find("cancelled after 8 of"), std::string::npos) << st.message();
        EXPECT_EQ((*ctx)->n_past(), 0) << policy;
        EXPECT_EQ((*ctx)->kv_stats().slots_total, 0) << policy;
        polls = 0;
        ASSERT_TRUE((*ctx)->eval(toks, nullptr, {}, [&] { return ++polls < 0; }).ok());
        EXPECT_GE(polls, int((toks.size() + 7) / 8)) << "one poll per chunk";
        const auto a = (*ref)->logits(), b = (*ctx)->logits();
        EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin(), b.end())) << policy;
        EXPECT_EQ((*ctx)->kv_stats().n_slot, (*ref)->kv_stats().n_slot) << policy;
    }
}

TEST(Stories260K, TruncatedCopiesFailCleanly) {
    HKV_REQUIRE_SHARED(kModel);
    const std::string bytes = test::read_file(kModel);
    test::TempDir dir;
    for (size_t len : {size_t(0), size_t(3), size_t(24), size_t(1000), bytes.size() / 2, bytes.size() - 1}) {
        const std::string p = dir.file("t.gguf");
        std::ofstream(p, std::ios::binary).write(bytes.data(), std::streamsize(len));
        auto m = Model::load(p);
        ASSERT_FALSE(m.ok()) << "length " << len;
        const std::string msg = m.status().to_string();
        EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
        EXPECT_FALSE(msg.empty());
    }
}

}  // namespace
}  // namespace hkv
