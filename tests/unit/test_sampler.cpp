// Unit tests for the sampler chain.
#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "sample/sampler.h"

namespace hkv {
namespace {

TEST(Sampler, GreedyPicksArgmaxLowestOnTies) {
    std::vector<float> l = {0.1f, 3.0f, -1.0f, 3.0f};
    EXPECT_EQ(sample_greedy(l), 1);
    auto s = Sampler::create({.temp = 0.0f});
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->sample(l), 1);
}

TEST(Sampler, RepetitionPenaltyDemotesSeenTokens) {
    std::vector<float> l = {2.0f, 1.9f, -0.5f};
    auto s = Sampler::create({.temp = 0.0f, .repeat_penalty = 1.2f});
    ASSERT_TRUE(s.ok());
    s->accept(0);
    EXPECT_EQ(s->sample(l), 1);  // 2.0/1.2 < 1.9
}

TEST(Sampler, TopKOneIsGreedyAndSeedIsReproducible) {
    std::vector<float> l(100);
    for (int i = 0; i < 100; ++i) l[size_t(i)] = float((i * 37) % 100) / 10.0f;
    auto a = Sampler::create({.temp = 1.0f, .top_k = 1, .top_p = 1.0f, .min_p = 0.0f, .seed = 7});
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->sample(l), sample_greedy(l));
    auto b = Sampler::create({.temp = 1.5f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = 42});
    auto c = Sampler::create({.temp = 1.5f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = 42});
    for (int i = 0; i < 50; ++i) EXPECT_EQ(b->sample(l), c->sample(l));
}

TEST(Sampler, DistributionFollowsSoftmax) {
    std::vector<float> l = {0.0f, std::log(3.0f)};  // p = 0.25, 0.75
    auto s = Sampler::create({.temp = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = 1});
    int ones = 0;
    const int n = 20000;
    for (int i = 0; i < n; ++i) ones += s->sample(l) == 1;
    EXPECT_NEAR(double(ones) / n, 0.75, 0.02);
}

TEST(Sampler, TopPAndMinPCutTheTail) {
    std::vector<float> l = {5.0f, 4.0f, -10.0f, -10.0f};
    auto s = Sampler::create({.temp = 1.0f, .top_k = 0, .top_p = 0.5f, .min_p = 0.0f, .seed = 3});
    for (int i = 0; i < 200; ++i) EXPECT_EQ(s->sample(l), 0);  // p0 = 0.73 >= 0.5
    auto m = Sampler::create({.temp = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.3f, .seed = 3});
    for (int i = 0; i < 200; ++i) EXPECT_LE(m->sample(l), 1);
}

TEST(Sampler, RejectsBadParams) {
    EXPECT_FALSE(Sampler::create({.top_p = 0.0f}).ok());
    EXPECT_FALSE(Sampler::create({.min_p = 1.5f}).ok());
    EXPECT_FALSE(Sampler::create({.repeat_penalty = 0.0f}).ok());
    EXPECT_FALSE(Sampler::create({.penalty_last_n = -1}).ok());
    // negative temperature / top-k are errors (they used to act as greedy / off silently)
    auto t = Sampler::create({.temp = -1.0f});
    ASSERT_FALSE(t.ok());
    EXPECT_NE(t.status().message().find("temperature -1"), std::string::npos) << t.status().to_string();
    auto k = Sampler::create({.top_k = -5});
    ASSERT_FALSE(k.ok());
    EXPECT_NE(k.status().message().find("top_k -5"), std::string::npos) << k.status().to_string();
    EXPECT_TRUE(Sampler::create({.temp = 0.0f, .top_k = 0}).ok());
}

}  // namespace
}  // namespace hkv
