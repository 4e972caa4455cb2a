// eval sweep's spec expansion, markdown table and chart series.
#include <gtest/gtest.h>

#include "eval/sweep.h"
#include "heterokv/policy.h"

namespace hkv::eval {
namespace {

TEST(Sweep, PointsExpandPoliciesTimesBudgetsWithFullFirst) {
    auto p = sweep_points({"snapkv", "quest:page_size=16", "full"}, {64, 128}, "");
    ASSERT_TRUE(p.ok()) << p.status().to_string();
    std::vector<std::string> specs;
    for (const SweepPoint& x : *p) specs.push_back(x.spec);
    EXPECT_EQ(specs, (std::vector<std::string>{"full", "snapkv:budget=64", "snapkv:budget=128",
                                               "quest:page_size=16,budget=64", "quest:page_size=16,budget=128"}));
    EXPECT_EQ((*p)[3].family, "quest:page_size=16");
    EXPECT_EQ((*p)[3].budget, 64);
    auto e = sweep_points({"streaming"}, {32}, "sinks=8");
    ASSERT_TRUE(e.ok());
    EXPECT_EQ((*e)[1].spec, "streaming:sinks=8,budget=32");
    EXPECT_TRUE(policy_create((*e)[1].spec).ok()) << "a spec the registry accepts";
    EXPECT_EQ(sweep_points({"snapkv"}, {}, "").status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(sweep_points({"snapkv"}, {0}, "").status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(sweep_points({"snapkv:budget=5"}, {64}, "").status().code(), StatusCode::kInvalidArgument);
}

TEST(Sweep, TableAndChart) {
    SweepResult r;
    r.title = "T";
    r.metric = "score (%)";
    r.points = *sweep_points({"a", "b"}, {128, 64}, "");
    r.score = {90, 10, 20, 30, 40};  // full, a@128, a@64, b@128, b@64
    r.kv_mib = {1, 0.1, 0.05, 0.1, 0.05};
    const std::string md = sweep_table_md(r);
    EXPECT_NE(md.find("| policy | budget 64 | budget 128 |"), std::string::npos) << md;
    EXPECT_NE(md.find("| full | 90.0 (1.00) | 90.0 (1.00) |"), std::string::npos) << md;
    EXPECT_NE(md.find("| a | 20.0 (0.05) | 10.0 (0.10) |"), std::string::npos) << md;
    EXPECT_NE(md.find("| b | 40.0 (0.05) | 30.0 (0.10) |"), std::string::npos) << md;
    const LineChart c = sweep_chart(r);
    ASSERT_EQ(c.series.size(), 3u);
    EXPECT_EQ(c.series[0].name, "full cache");
    EXPECT_TRUE(c.series[0].reference) << "drawn as a dashed reference line";
    EXPECT_FALSE(c.series[1].reference);
    EXPECT_EQ(c.series[0].x, (std::vector<double>{64, 128}));
    EXPECT_EQ(c.series[0].y, (std::vector<double>{90, 90}));
    EXPECT_EQ(c.series[1].name, "a");
    EXPECT_EQ(c.series[1].x, (std::vector<double>{128, 64}));
    EXPECT_TRUE(c.log_x);
}

}  // namespace
}  // namespace hkv::eval
