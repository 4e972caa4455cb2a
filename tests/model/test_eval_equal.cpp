// eval equal (tools/eval/equal.h) end to end on stories260K (../shared; skipped when absent), small
// enough for seconds: one method (EMS) against SnapKV and StreamingLLM on two windows of its own
// text and two needles per protocol. SnapKV at EMS's budget holds EMS's bytes (no score lane), so
// the search must land on exactly those bytes; every spec has KLD on the text and NIAH in both
// protocols; the table names every spec; the charts have one series per family.
#include <gtest/gtest.h>

#include "eval/equal.h"
#include "heterokv/file_io.h"
#include "test_util.h"

namespace hkv::eval {
namespace {

const std::string kModel = test::shared_path("models/stories260K.gguf");
const std::string kText = test::shared_path("data/text/stories260K-generated.txt");
const std::string kEssay = test::shared_path("data/haystack/essays/addiction.txt");

TEST(EvalEqual, MatchesBytesAndReportsEverySpec) {
    HKV_REQUIRE_SHARED(kModel);
    HKV_REQUIRE_SHARED(kText);
    HKV_REQUIRE_SHARED(kEssay);
    auto model = model_load(kModel);
    ASSERT_TRUE(model.ok()) << model.status().to_string();
    auto text = file_read(kText, kFileMaxText, "text");
    ASSERT_TRUE(text.ok());
    EqualConfig cfg;
    cfg.methods = {"ems:budget=48,window=8"};
    cfg.baselines = {"snapkv:window=8", "streaming"};
    cfg.text_names = {"stories"};
    cfg.texts = {ppl_tokenize(**model, *text)};
    cfg.ppl.n_window = 128;
    cfg.ppl.n_context = 96;
    cfg.ppl.max_windows = 2;
    cfg.ppl.n_ctx = 512;
    cfg.ppl.n_threads = 1;
    cfg.niah.haystack_files = {kEssay};
    cfg.niah.lengths = {128};
    cfg.niah.depths = {0.5};
    cfg.niah.trials = 2;
    auto r = equal_run(*model, cfg);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    r->model = "stories260K";
    ASSERT_EQ(r->points.size(), 1u);
    const EqualPoint& pt = r->points[0];
    ASSERT_EQ(pt.ppl_match.size(), 2u);
    ASSERT_EQ(pt.niah_match.size(), 2u);
    EXPECT_GT(pt.target_ppl, 0.0);
    EXPECT_LT(pt.target_ppl, r->full_kv_ppl);
    EXPECT_EQ(pt.ppl_match[0].bytes, pt.target_ppl) << pt.ppl_match[0].spec;
    EXPECT_GE(pt.ppl_match[0].budget, 48);
    EXPECT_LT(pt.ppl_match[0].budget, 56) << "8-slot tails: 48..55 hold the same bytes";
    EXPECT_LE(std::abs(pt.ppl_match[1].rel()), 0.1) << pt.ppl_match[1].spec;
    for (const auto& m : pt.ppl_match) {
        ASSERT_TRUE(r->runs.count(m.spec)) << m.spec;
        const EqualRun& run = r->runs.at(m.spec);
        EXPECT_GT(run.kld_mean, 0.0) << m.spec;
        EXPECT_NEAR(run.kv_context, m.bytes, 0.2 * m.bytes) << "eval ppl's bytes are the probe's (other windows)";
    }
    for (const auto& m : pt.niah_match) {
        const EqualRun& run = r->runs.at(m.spec);
        ASSERT_EQ(run.niah.size(), 2u) << m.spec;
        EXPECT_EQ(run.niah.at("aware").cells.at(0).trials, 2);
        EXPECT_GT(run.niah_kv_context.at("agnostic"), 0.0);
    }
    const std::string md = equal_table_md(*r, cfg);
    for (const std::string& s : {pt.method, pt.ppl_match[0].spec, pt.ppl_match[1].spec, std::string("aware ± SE")}) {
        EXPECT_NE(md.find(s), std::string::npos) << s << "\n" << md;
    }
    EXPECT_EQ(equal_method_names(*r), std::vector<std::string>{"ems"});
    const LineChart k = equal_kld_chart(*r, "ems");
    ASSERT_GE(k.series.size(), 2u) << "streaming may be off scale";
    EXPECT_EQ(k.series[0].name, "ems:window=8");
    EXPECT_EQ(k.series[1].name, "snapkv:window=8");
    EXPECT_EQ(k.series.size() == 2, k.title.find("off scale: streaming") != std::string::npos) << k.title;
    const LineChart n = equal_niah_chart(*r, "agnostic", "ems");
    ASSERT_EQ(n.series.size(), 3u);
    EXPECT_EQ(n.series[0].y_lo.size(), n.series[0].y.size());  // 95% Wilson intervals
    EXPECT_EQ(n.series[0].y_hi.size(), n.series[0].y.size());
    const std::string js = equal_json(*r, cfg);
    EXPECT_NE(js.find("\"niah_match\""), std::string::npos);
    EqualConfig back;
    auto again = equal_from_json(js, &back);
    ASSERT_TRUE(again.ok()) << again.status().to_string();
    EXPECT_EQ(equal_table_md(*again, back), md) << "--replot renders the same table";
    EXPECT_EQ(equal_niah_chart(*again, "agnostic", "ems").series[2].y, n.series[2].y);
    EXPECT_EQ(equal_from_json("{\"model\": 1}", &back).status().code(), StatusCode::kInvalidArgument);
}

TEST(EvalEqual, Errors) {
    HKV_REQUIRE_SHARED(kModel);
    auto model = model_load(kModel);
    ASSERT_TRUE(model.ok());
    EqualConfig cfg;
    EXPECT_EQ(equal_run(*model, cfg).status().code(), StatusCode::kInvalidArgument) << "no method";
    cfg.methods = {"ems:budget=48"};
    EXPECT_EQ(equal_run(*model, cfg).status().code(), StatusCode::kInvalidArgument) << "no text";
    cfg.text_names = {"t"};
    cfg.texts = {std::vector<int32_t>(300, 5)};
    cfg.ppl.n_window = 128;
    cfg.ppl.n_context = 64;
    cfg.ppl.n_ctx = 512;
    cfg.baselines = {"nosuchpolicy"};
    EXPECT_FALSE(equal_run(*model, cfg).ok());
}

}  // namespace
}  // namespace hkv::eval
