// eval equal's budget search (against a bytes function with pages and 8-slot tails, as the KV store
// holds them), spec building and binomial standard error; the run itself: tests/model/test_equal.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "eval/equal.h"

namespace hkv::eval {
namespace {

// Bytes of a head holding `budget` slots rounded up to 8 (the store's short tail), 100 bytes a slot;
// budgets <= 32 are invalid (a window of 32 must fit), as SnapKV's are.
Expected<double> tail_bytes(const std::string& spec, int* calls) {
    ++*calls;
    const int b = std::stoi(spec.substr(spec.find("budget=") + 7));
    if (b <= 32) return Status::invalid("budget %d <= window", b);
    return 100.0 * double((b + 7) / 8 * 8);
}

TEST(Equal, BudgetSpecAppendsTheBudget) {
    EXPECT_EQ(budget_spec("snapkv", 64), "snapkv:budget=64");
    EXPECT_EQ(budget_spec("snapkv:window=16", 64), "snapkv:window=16,budget=64");
}

TEST(Equal, MatchFindsTheClosestBytesAndTheLargestBudgetHoldingThem) {
    int calls = 0;
    const BytesFn f = [&](const std::string& s) { return tail_bytes(s, &calls); };
    auto m = match_budget("snapkv", 100.0 * 256, 1, 1024, f);  // exactly 256 slots
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    EXPECT_EQ(m->budget, 256);
    EXPECT_DOUBLE_EQ(m->bytes, 25600.0);
    EXPECT_DOUBLE_EQ(m->rel(), 0.0);
    EXPECT_LT(calls, 40) << "a bisection, not a scan";
    m = match_budget("snapkv", 100.0 * 250, 1, 1024, f);  // 248 (-0.8%) is closer than 256 (+2.4%)
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->budget, 248);
    EXPECT_EQ(m->spec, "snapkv:budget=248");
    m = match_budget("snapkv", 100.0 * 254.5, 1, 1024, f);  // 256 (+0.6%); budgets 249..256 hold it: 256
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->budget, 256);
    m = match_budget("snapkv", 100.0 * 4000, 1, 1024, f);  // more than the context holds: the context
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->budget, 1024);
    EXPECT_LT(m->rel(), -0.7);
    m = match_budget("snapkv", 100.0, 1, 1024, f);  // below every valid budget: the smallest valid one
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->budget, 40) << "33..40 hold the same bytes";
}

TEST(Equal, MatchErrors) {
    int calls = 0;
    const BytesFn f = [&](const std::string& s) { return tail_bytes(s, &calls); };
    EXPECT_EQ(match_budget("snapkv", 1000, 10, 5, f).status().code(), StatusCode::kInvalidArgument);
    auto m = match_budget("snapkv", 1000, 1, 32, f);  // invalid at every budget
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.status().to_string().find("snapkv"), std::string::npos) << m.status().to_string();
}

TEST(Equal, BinomialStandardError) {
    EXPECT_DOUBLE_EQ(binomial_se(10, 40), std::sqrt(0.25 * 0.75 / 40));
    EXPECT_DOUBLE_EQ(binomial_se(0, 20), 0.0);
    EXPECT_DOUBLE_EQ(binomial_se(0, 0), 0.0);
}

TEST(Equal, WilsonIntervalIsNeverEmpty) {
    // 20/20: the interval reaches down to n / (n + z^2) = 20 / 23.84 (the error bar the SE would omit)
    const auto [lo, hi] = wilson_interval(20, 20);
    EXPECT_NEAR(lo, 20.0 / (20.0 + 1.96 * 1.96), 1e-12);
    EXPECT_DOUBLE_EQ(hi, 1.0);
    EXPECT_NEAR(wilson_interval(0, 20).second, 1.0 - lo, 1e-12) << "symmetric in correct <-> n - correct";
    const auto [l5, h5] = wilson_interval(5, 10);  // centred at 0.5: 0.5 ± 1.96 / (1 + 0.384) * sqrt(0.025 + 0.0096)
    EXPECT_NEAR(l5, 0.5 - 1.96 / (1 + 0.38416) * std::sqrt(0.025 + 0.0096040), 1e-9);
    EXPECT_NEAR(h5, 1.0 - l5, 1e-12);
    EXPECT_LT(h5 - l5, wilson_interval(1, 2).second - wilson_interval(1, 2).first) << "narrows with n";
    EXPECT_EQ(wilson_interval(0, 0), (std::pair<double, double>{0.0, 1.0}));
}

}  // namespace
}  // namespace hkv::eval
