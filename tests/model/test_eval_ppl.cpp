// eval ppl (tools/eval/ppl.h): the per-token arithmetic and window planning (no model), then on
// stories260K (../shared; skipped when absent) over its own generated text:
//  - `full` against the shared `full` baseline: KLD exactly 0, top-1 agreement exactly 1;
//  - perplexity finite and plausible for in-domain text (measured 2.77 on 4 windows, context 256);
//  - streaming:budget=32 moves the distributions (KLD > 0, agreement < 1) and holds less KV;
//  - stream mode scores W - 1 tokens per window and keeps the cache bounded;
//  - two runs give the same numbers; bad inputs give errors;
//  - --dump (eval/ppl_dump.h): the windows' tokens, the positions each head keeps after the context
//    (all of them under full, sinks + recent under streaming), per-token KLD whose mean is the
//    report's, and the logits file's rows (the baseline's first row is the logits after the context).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "eval/ppl.h"
#include "eval/ppl_dump.h"
#include "heterokv/engine.h"
#include "model/model.h"
#include "policy/heterocache.h"
#include "test_util.h"

namespace hkv::eval {
namespace {

const std::string kModel = test::shared_path("models/stories260K.gguf");
const std::string kText = test::shared_path("data/text/stories260K-generated.txt");

TEST(EvalPplMath, LogSumExpArgmaxKl) {
    const std::vector<float> a = {0.0f, std::log(3.0f)};  // softmax = {0.25, 0.75}
    const std::vector<float> b = {5.0f, 5.0f};            // softmax = {0.5, 0.5}
    EXPECT_NEAR(log_sum_exp(a), std::log(4.0), 1e-7);
    EXPECT_NEAR(log_sum_exp(b), 5.0 + std::log(2.0), 1e-12);
    const double kl = 0.25 * std::log(0.25 / 0.5) + 0.75 * std::log(0.75 / 0.5);
    EXPECT_NEAR(kl_divergence(a, log_sum_exp(a), b, log_sum_exp(b)), kl, 1e-7);
    EXPECT_EQ(kl_divergence(a, log_sum_exp(a), a, log_sum_exp(a)), 0.0);
    // KL is not symmetric
    EXPECT_GT(std::abs(kl_divergence(b, log_sum_exp(b), a, log_sum_exp(a)) - kl), 1e-3);
    EXPECT_EQ(argmax(std::vector<float>{1.0f, 3.0f, 3.0f, 2.0f}), 1);  // first of equal maxima
    EXPECT_EQ(argmax(std::vector<float>{7.0f}), 0);
}

TEST(EvalPplMath, PercentileNearestRank) {
    std::vector<float> v;
    for (int i = 100; i >= 1; --i) v.push_back(float(i));
    EXPECT_EQ(percentile(v, 99.0), 99.0);
    EXPECT_EQ(percentile(v, 100.0), 100.0);
    EXPECT_EQ(percentile(v, 50.0), 50.0);
    EXPECT_EQ(percentile({4.0f, 1.0f, 3.0f}, 99.0), 4.0);
    EXPECT_EQ(percentile({}, 99.0), 0.0);
}

TEST(EvalPplPlan, WindowsSpreadEvenly) {
    PplParams p;
    p.n_window = 10;
    p.n_context = 4;
    auto all = ppl_plan(95, /*bos=*/true, 64, p);  // 9 text tokens per window: 10 windows
    ASSERT_TRUE(all.ok()) << all.status().to_string();
    EXPECT_EQ(all->n_available, 10);
    EXPECT_EQ(all->n_scored, 6);
    EXPECT_EQ(all->starts, (std::vector<int64_t>{0, 9, 18, 27, 36, 45, 54, 63, 72, 81}));
    p.max_windows = 3;
    auto three = ppl_plan(95, true, 64, p);
    ASSERT_TRUE(three.ok());
    EXPECT_EQ(three->starts, (std::vector<int64_t>{0, 27, 54}));  // windows 0, 3, 6 of 10
    p.max_windows = 50;  // more than there are: all of them
    EXPECT_EQ(ppl_plan(95, true, 64, p)->starts.size(), 10u);
    p.max_windows = 0;
    p.stream = true;
    p.n_context = 99;  // ignored in stream mode
    auto st = ppl_plan(100, /*bos=*/false, 64, p);
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->n_context, 0);
    EXPECT_EQ(st->n_scored, 9);
    EXPECT_EQ(st->starts.size(), 10u);
}

TEST(EvalPplPlan, Errors) {
    PplParams p;
    p.n_window = 512;
    p.n_context = 256;
    EXPECT_EQ(ppl_plan(510, true, 512, p).status().code(), StatusCode::kOutOfRange);  // short text
    EXPECT_TRUE(ppl_plan(511, true, 512, p).ok());
    EXPECT_EQ(ppl_plan(4096, true, 128, p).status().code(), StatusCode::kOutOfRange);  // W > context
    for (int32_t c : {0, -1, 512, 600}) {
        p.n_context = c;
        EXPECT_EQ(ppl_plan(4096, true, 512, p).status().code(), StatusCode::kInvalidArgument) << c;
    }
    p.n_context = 256;
    p.n_window = 1;
    EXPECT_FALSE(ppl_plan(4096, true, 512, p).ok());
}

class EvalPplStories : public ::testing::Test {
protected:
    void SetUp() override {
        if (!test::exists(kModel) || !test::exists(kText)) GTEST_SKIP() << "not present: " << kModel << ", " << kText;
        auto m = model_load(kModel);
        ASSERT_TRUE(m.ok()) << m.status().to_string();
        model_ = *m;
        text_ = ppl_tokenize(*model_, test::read_file(kText));
        params_.n_window = 512;
        params_.n_context = 256;
        params_.max_windows = 3;
        params_.n_ctx = 512;  // the file says 128; the model was trained at 512
        params_.n_threads = 1;
    }
    Expected<PplReport> run(const std::vector<std::string>& policies) {
        return ppl_run(model_, text_, policies, params_);
    }
    std::shared_ptr<const Model> model_;
    std::vector<int32_t> text_;
    PplParams params_;
};

TEST_F(EvalPplStories, FullAgainstFullIsExact) {
    auto r = run({"full"});
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    ASSERT_EQ(r->results.size(), 2u);
    const PplResult& base = r->results[0];
    const PplResult& full = r->results[1];
    EXPECT_TRUE(base.baseline);
    EXPECT_FALSE(full.baseline);
    EXPECT_EQ(full.n_scored, 3 * 256);
    EXPECT_EQ(full.kld_mean, 0.0);
    EXPECT_EQ(full.kld_max, 0.0);
    EXPECT_EQ(full.top1, 1.0);
    EXPECT_EQ(full.ppl, base.ppl);
    EXPECT_EQ(full.kv_bytes_end, base.kv_bytes_end);
    EXPECT_GT(full.kv_bytes_end, full.kv_bytes_context);
}

TEST_F(EvalPplStories, PerplexityPlausible) {
    auto r = run({});
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    ASSERT_EQ(r->results.size(), 1u);
    const double ppl = r->results[0].ppl;
    EXPECT_TRUE(std::isfinite(ppl));
    EXPECT_GT(ppl, 1.0);
    EXPECT_LT(ppl, 20.0);  // in-domain text; the vocabulary has 512 tokens
}

TEST_F(EvalPplStories, StreamingBudgetMovesDistributionsDeterministically) {
    const std::vector<std::string> pols = {"streaming:budget=32"};
    auto r1 = run(pols);
    auto r2 = run(pols);
    ASSERT_TRUE(r1.ok()) << r1.status().to_string();
    ASSERT_TRUE(r2.ok());
    const PplResult& base = r1->results[0];
    const PplResult& s = r1->results[1];
    EXPECT_GT(s.kld_mean, 0.0);
    EXPECT_GE(s.kld_p99, s.kld_mean);
    EXPECT_GE(s.kld_max, s.kld_p99);
    EXPECT_LT(s.top1, 1.0);
    EXPECT_GT(s.top1, 0.5);
    EXPECT_LT(s.kv_bytes_context, base.kv_bytes_context);
    EXPECT_LT(s.kv_bytes_end, base.kv_bytes_end);
    for (size_t i = 0; i < 2; ++i) {  // run to run: the same numbers, bit for bit
        const PplResult& a = r1->results[i];
        const PplResult& b = r2->results[i];
        EXPECT_EQ(a.ppl, b.ppl);
        EXPECT_EQ(a.kld_mean, b.kld_mean);
        EXPECT_EQ(a.kld_p99, b.kld_p99);
        EXPECT_EQ(a.top1, b.top1);
        EXPECT_EQ(a.kv_bytes_end, b.kv_bytes_end);
    }
}

TEST_F(EvalPplStories, StreamModeScoresFromFirstTokenWithBoundedCache) {
    params_.stream = true;
    params_.max_windows = 2;
    auto r = run({"streaming:budget=32", "full"});
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    ASSERT_EQ(r->results.size(), 3u);
    EXPECT_EQ(r->plan.n_context, 0);
    EXPECT_EQ(r->results[0].n_scored, 2 * 511);
    EXPECT_EQ(r->results[2].kld_mean, 0.0);
    const PplResult& s = r->results[1];
    EXPECT_GT(s.kld_mean, 0.0);
    // The same policy with a prefilled context scores only the second half; here every prediction
    // after the first is made from a bounded cache.
    EXPECT_LT(s.kv_bytes_end, r->results[0].kv_bytes_end / 2);
}

TEST_F(EvalPplStories, DumpKeptPositionsKldAndLogits) {
    params_.n_window = 320;
    params_.max_windows = 2;
    test::TempDir dir;
    const std::string prefix = dir.file("d");
    auto d = PplDump::open(prefix);
    ASSERT_TRUE(d.ok()) << d.status().to_string();
    params_.dump = d->get();
    const std::vector<std::string> pols = {"streaming:budget=32"};
    auto r = run(pols);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    PplDumpMeta meta;
    meta.model = kModel;
    meta.file = kText;
    meta.n_window = 320;
    meta.n_context = 256;
    meta.n_scored = r->plan.n_scored;
    meta.n_vocab = model_->config().n_vocab;
    meta.policies = {"full", pols[0]};
    ASSERT_TRUE((*d)->finish(meta).ok());
    EXPECT_FALSE(test::exists(prefix + ".json.tmp"));

    const nlohmann::json j = nlohmann::json::parse(test::read_file(prefix + ".json"));
    EXPECT_EQ(j["format"], "heterokv-ppl-dump-1");
    EXPECT_EQ(j["model"], "stories260K.gguf");
    EXPECT_EQ(j["scored"], 64);
    ASSERT_EQ(j["windows"].size(), 2u);
    const auto& w0 = j["windows"][0];
    ASSERT_EQ(w0["tokens"].size(), 320u);
    EXPECT_EQ(w0["tokens"][0], model_->tokenizer().bos());
    EXPECT_EQ(w0["tokens"][1], text_[size_t(w0["start"].get<int64_t>())]);
    ASSERT_EQ(j["runs"].size(), 4u);  // 2 windows x (full, streaming)
    double kld_sum = 0.0;
    size_t kld_n = 0;
    for (const auto& run : j["runs"]) {
        const bool full = run["policy"] == 0;
        ASSERT_EQ(run["kept"].size(), size_t(model_->config().n_layer));
        for (const auto& layer : run["kept"]) {
            ASSERT_EQ(layer.size(), size_t(model_->config().n_head_kv));
            for (const auto& head : layer) {
                const auto pos = head.get<std::vector<int32_t>>();
                if (full) {
                    ASSERT_EQ(pos.size(), 256u);
                    EXPECT_EQ(pos.back(), 255);
                } else {  // 4 sinks + the last 28 context positions
                    ASSERT_EQ(pos.size(), 32u);
                    EXPECT_EQ(pos[3], 3);
                    EXPECT_EQ(pos[4], 256 - 28);
                    EXPECT_EQ(pos[31], 255);
                }
            }
        }
        ASSERT_EQ(run["kld"].size(), 64u);
        ASSERT_EQ(run["nll"].size(), 64u);
        for (const auto& k : run["kld"]) {
            if (full) EXPECT_EQ(k.get<double>(), 0.0);
            else kld_sum += k.get<double>(), ++kld_n;
        }
    }
    EXPECT_NEAR(kld_sum / double(kld_n), r->results[1].kld_mean, 1e-6);

    // logits: [window][policy][scored][n_vocab] f32; the baseline's first row of window 0 is the
    // model's logits after the window's context
    const std::string bin = test::read_file(prefix + ".logits.f32");
    const size_t nv = size_t(model_->config().n_vocab);
    ASSERT_EQ(bin.size(), 2 * 2 * 64 * nv * sizeof(float));
    ContextParams cp;
    cp.n_ctx = 320;
    cp.n_threads = 1;
    cp.n_batch = 256;
    auto ctx = Context::create(model_, cp);
    ASSERT_TRUE(ctx.ok());
    const auto toks = w0["tokens"].get<std::vector<int32_t>>();
    ASSERT_TRUE((*ctx)->eval(std::span<const int32_t>(toks.data(), 256)).ok());
    std::vector<float> row(nv);
    std::memcpy(row.data(), bin.data(), nv * sizeof(float));
    const auto logits = (*ctx)->logits();
    for (size_t i = 0; i < nv; ++i) ASSERT_EQ(row[i], logits[i]) << i;

    // an unwritable prefix is an error before any work
    EXPECT_EQ(PplDump::open(dir.file("missing/dir/d")).status().code(), StatusCode::kIoError);
}

TEST_F(EvalPplStories, Errors) {
    auto bad = run({"streaming:budget=0"});
    EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
    // a spec that only the model can reject (a taxonomy of another shape), after a good one: no
    // window of any policy runs before the error
    test::TempDir dir;
    const std::string tax = dir.file("tax.json");
    ASSERT_TRUE(taxonomy_save(taxonomy_structural(3, 8), tax).ok());
    int64_t windows = 0;
    auto late = ppl_run(model_, text_, std::vector<std::string>{"streaming:budget=64", "heterocache:taxonomy=" + tax},
                        params_, [&](int64_t, int64_t) { ++windows; });
    EXPECT_EQ(late.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(late.status().message().find("heterokv calibrate"), std::string::npos) << late.status().to_string();
    EXPECT_EQ(windows, 0);
    auto unknown = run({"nosuchpolicy"});
    EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
    std::vector<int32_t> short_text(text_.begin(), text_.begin() + 100);
    auto s = ppl_run(model_, short_text, std::vector<std::string>{}, params_);
    EXPECT_EQ(s.status().code(), StatusCode::kOutOfRange);
    params_.n_ctx = 0;  // the file's 128 tokens: a 512-token window does not fit
    EXPECT_EQ(run({}).status().code(), StatusCode::kOutOfRange);
}

}  // namespace
}  // namespace hkv::eval
