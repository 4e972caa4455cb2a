// Unit tests for HeteroCache's offline profiling core (policy/heterocache_profile.h) on hand-made
// attention rows and index sets: pooling as PyTorch's avg_pool1d, top-k ties, the median, the
// similarity graph (symmetric; both overlaps required), greedy star clustering (degree, ties),
// classification (identical heads -> pivot + satellite, unmoving sets -> anchor, drifting ->
// volatile) and ratios (inverse stability, mean 1, -1 for full heads).
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <vector>

#include "policy/heterocache_profile.h"

namespace hkv {
namespace {

using Set = std::vector<int32_t>;

Set range(int32_t a, int32_t b) {
    Set s(size_t(b - a));
    std::iota(s.begin(), s.end(), a);
    return s;
}

TEST(HcProfile, AvgPoolMatchesCountIncludePad) {
    const std::vector<float> row = {5, 0, 0, 0, 0, 0, 10};
    std::vector<float> out(row.size());
    hc_avg_pool(row, out);
    // out[i] = sum(row[i-2 .. i+2] inside) / 5, edges divided by 5 as well
    const std::vector<float> want = {1, 1, 1, 0, 2, 2, 2};
    for (size_t i = 0; i < row.size(); ++i) EXPECT_FLOAT_EQ(out[i], want[i]) << i;
    std::vector<float> one(1);
    hc_avg_pool(std::vector<float>{3.0f}, one);
    EXPECT_FLOAT_EQ(one[0], 0.6f);
}

TEST(HcProfile, TopkSetIsPooledSortedAndTieBreaksLow) {
    std::vector<float> scratch;
    Set out;
    // one spike at 10 of 20: pooling spreads it over 8..12, all equal -> those five are the top-5
    std::vector<float> row(20, 0.0f);
    row[10] = 1.0f;
    hc_topk_set(row, 5, scratch, out);
    EXPECT_EQ(out, range(8, 13));
    // top-3 of five equal pooled values: the three smallest positions
    hc_topk_set(row, 3, scratch, out);
    EXPECT_EQ(out, range(8, 11));
    // a flat row: every pooled value ties except the 2 edge positions on each side (smaller)
    std::vector<float> flat(10, 1.0f);
    hc_topk_set(flat, 4, scratch, out);
    EXPECT_EQ(out, range(2, 6));
    // k is clamped to [1, L0]
    hc_topk_set(flat, 1000, scratch, out);
    EXPECT_EQ(out, range(0, 10));
    hc_topk_set(flat, 0, scratch, out);
    EXPECT_EQ(out.size(), 1u);
    // NaN never wins and never breaks the ordering
    std::vector<float> nan_row = {NAN, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f};
    hc_topk_set(nan_row, 3, scratch, out);
    EXPECT_EQ(out, (Set{7, 8, 9}));
}

TEST(HcProfile, IntersectAndMedian) {
    EXPECT_EQ(hc_intersect(Set{1, 3, 5, 7}, Set{2, 3, 4, 7, 9}), 2);
    EXPECT_EQ(hc_intersect(Set{}, Set{1}), 0);
    EXPECT_DOUBLE_EQ(hc_median({3, 1, 2}), 2.0);
    EXPECT_DOUBLE_EQ(hc_median({4, 1, 3, 2}), 2.5);  // even count: mean of the middle two
    EXPECT_DOUBLE_EQ(hc_median({}), 0.0);
}

TEST(HcProfile, GraphIsSymmetricAndNeedsBothOverlaps) {
    // 0 and 1 share 3 of 4; 2 is a 2-element subset of 0 (sim(2,0) = 1, sim(0,2) = 0.5);
    // 3 is disjoint.
    const std::vector<Set> sets = {{0, 1, 2, 3}, {1, 2, 3, 4}, {0, 1}, {10, 11, 12, 13}};
    auto adj = hc_similarity_graph(sets, 0.75);
    auto e = [&](int i, int j) { return adj[size_t(i) * 4 + size_t(j)]; };
    EXPECT_EQ(e(0, 1), 1);
    EXPECT_EQ(e(1, 0), 1);
    EXPECT_EQ(e(0, 2), 0);  // 2 is covered by 0, but 0 only half by 2: no edge
    EXPECT_EQ(e(2, 0), 0);
    EXPECT_EQ(e(0, 3), 0);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(e(i, i), 0);
    // at tau 0.5 the subset head joins (both overlaps >= 0.5)
    adj = hc_similarity_graph(sets, 0.5);
    EXPECT_EQ(e(0, 2), 1);
    EXPECT_EQ(e(2, 0), 1);
    for (int i = 0; i < 4; ++i) {
        for (int j = 0; j < 4; ++j) EXPECT_EQ(e(i, j), e(j, i));
    }
}

std::vector<uint8_t> graph(int32_t n, std::initializer_list<std::pair<int, int>> edges) {
    std::vector<uint8_t> adj(size_t(n) * size_t(n), 0);
    for (auto [i, j] : edges) adj[size_t(i) * size_t(n) + size_t(j)] = adj[size_t(j) * size_t(n) + size_t(i)] = 1;
    return adj;
}

TEST(HcProfile, StarClusteringTakesLargestDegreeThenSmallestIndex) {
    // star around 2 (degree 3) and a pair 4-5; 6 alone
    auto c = hc_star_clusters(graph(7, {{2, 0}, {2, 1}, {2, 3}, {4, 5}}), 7);
    ASSERT_EQ(c.size(), 2u);
    EXPECT_EQ(c[0].pivot, 2);
    EXPECT_EQ(c[0].satellites, (Set{0, 1, 3}));
    EXPECT_EQ(c[1].pivot, 4);  // 4 and 5 tie at degree 1: the smaller index leads
    EXPECT_EQ(c[1].satellites, (Set{5}));
    // a chain 0-1-2-3: 1 and 2 tie at degree 2 -> 1 leads {0, 2}; 3 is then alone (degree 0)
    c = hc_star_clusters(graph(4, {{0, 1}, {1, 2}, {2, 3}}), 4);
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0].pivot, 1);
    EXPECT_EQ(c[0].satellites, (Set{0, 2}));
    // degrees count only unassigned neighbours: after the star at 0, 4-5 still forms
    c = hc_star_clusters(graph(6, {{0, 1}, {0, 2}, {0, 3}, {3, 4}, {4, 5}}), 6);
    ASSERT_EQ(c.size(), 2u);
    EXPECT_EQ(c[0].pivot, 0);
    EXPECT_EQ(c[1].pivot, 4);
    EXPECT_EQ(c[1].satellites, (Set{5}));
    // no edges: no clusters
    EXPECT_TRUE(hc_star_clusters(graph(3, {}), 3).empty());
}

// 1 layer x 4 heads: head 0 and head 1 identical (-> pivot 0, satellite 1); head 2 unmoving
// (anchor); head 3 drifting (volatile).
TEST(HcProfile, ProfilerClassifies) {
    HcProfiler p(1, 4, HcProfileParams{});
    ASSERT_TRUE(p.add_prefill(0, 0, range(0, 10)).ok());
    ASSERT_TRUE(p.add_prefill(0, 1, range(0, 10)).ok());
    ASSERT_TRUE(p.add_prefill(0, 2, range(20, 30)).ok());
    ASSERT_TRUE(p.add_prefill(0, 3, range(40, 50)).ok());
    for (int step = 0; step < 5; ++step) {
        ASSERT_TRUE(p.add_decode(0, 0, range(0, 10)).ok());
        ASSERT_TRUE(p.add_decode(0, 1, range(step, step + 10)).ok());  // overlaps 1, .9, .8, .7, .6
        ASSERT_TRUE(p.add_decode(0, 2, range(20, 30)).ok());
        ASSERT_TRUE(p.add_decode(0, 3, range(45 + step, 55 + step)).ok());  // .5 .4 .3 .2 .1
    }
    auto t = p.finish();
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    EXPECT_EQ(t->role_of(0, 0), HeadRole::kPivot);
    EXPECT_EQ(t->role_of(0, 1), HeadRole::kSatellite);
    EXPECT_EQ(t->role_of(0, 2), HeadRole::kAnchor);
    EXPECT_EQ(t->role_of(0, 3), HeadRole::kVolatile);
    ASSERT_EQ(t->clusters[0].size(), 1u);
    EXPECT_EQ(t->clusters[0][0].pivot, 0);
    EXPECT_EQ(t->clusters[0][0].satellites, (Set{1}));
    ASSERT_EQ(t->stability.size(), 4u);
    EXPECT_DOUBLE_EQ(t->stability[1], 0.8);
    EXPECT_DOUBLE_EQ(t->stability[2], 1.0);
    EXPECT_DOUBLE_EQ(t->stability[3], 0.3);
    // ratios: satellite (S .8) and anchor (S 1) share w = 1/S, normalized to mean 1
    const double w1 = 1.0 / (0.8 + 1e-6), w2 = 1.0 / (1.0 + 1e-6);
    EXPECT_NEAR(t->ratio[1], w1 / (w1 + w2) * 2.0, 1e-12);
    EXPECT_NEAR(t->ratio[2], w2 / (w1 + w2) * 2.0, 1e-12);
    EXPECT_NEAR(t->ratio[1] + t->ratio[2], 2.0, 1e-12);
    EXPECT_GT(t->ratio[1], t->ratio[2]);  // the less stable head gets more budget
    EXPECT_EQ(t->ratio[0], -1.0);
    EXPECT_EQ(t->ratio[3], -1.0);
    EXPECT_TRUE(taxonomy_validate(*t).ok());
}

// A model whose layers differ (Gemma: sliding-window local layers): local heads are written volatile
// with no clusters and stay out of the ratio normalisation.
TEST(HcProfile, ClassifyLeavesLocalLayersOut) {
    HcProfileParams params;
    params.local_layers = {1, 0};
    const std::vector<double> stab = {0.5, 0.9, 0.25, 1.0};  // 2 layers x 2 heads
    HeadCluster c;
    c.pivot = 0;
    c.satellites = {1};
    Taxonomy t = hc_classify(2, 2, stab, {{c}, {}}, params);
    EXPECT_EQ(t.role_of(0, 0), HeadRole::kVolatile);
    EXPECT_EQ(t.role_of(0, 1), HeadRole::kVolatile);
    EXPECT_TRUE(t.clusters[0].empty());
    EXPECT_EQ(t.role_of(1, 0), HeadRole::kVolatile);
    EXPECT_EQ(t.role_of(1, 1), HeadRole::kAnchor);
    EXPECT_NEAR(t.ratio[t.at(1, 1)], 1.0, 1e-9);  // the only compressed head: mean 1 over itself
    EXPECT_EQ(t.local_layers, params.local_layers);
    EXPECT_TRUE(taxonomy_validate(t).ok());
    // a profiler given flags for another number of layers fails at finish
    params.local_layers = {1, 0, 0};
    HcProfiler p(2, 2, params);
    EXPECT_FALSE(p.finish().ok());
}

// The threshold is inclusive (S >= tau_stable is an anchor) and ratios are global over layers.
TEST(HcProfile, ClassifyThresholdAndGlobalRatios) {
    HcProfileParams params;
    params.tau_stable = 0.5;
    const std::vector<double> stab = {0.5, 0.49, 0.25, 1.0};  // 2 layers x 2 heads
    Taxonomy t = hc_classify(2, 2, stab, {{}, {}}, params);
    EXPECT_EQ(t.role_of(0, 0), HeadRole::kAnchor);
    EXPECT_EQ(t.role_of(0, 1), HeadRole::kVolatile);
    EXPECT_EQ(t.role_of(1, 0), HeadRole::kVolatile);
    EXPECT_EQ(t.role_of(1, 1), HeadRole::kAnchor);
    // anchors 0.5 and 1.0 -> weights 2 : 1 -> ratios 4/3 and 2/3 (mean 1)
    EXPECT_NEAR(t.ratio[0], 4.0 / 3.0, 1e-5);
    EXPECT_NEAR(t.ratio[3], 2.0 / 3.0, 1e-5);
    EXPECT_TRUE(taxonomy_validate(t).ok());
}

TEST(HcProfile, ProfilerErrors) {
    HcProfiler p(1, 2, HcProfileParams{});
    EXPECT_FALSE(p.add_prefill(1, 0, Set{1}).ok());
    EXPECT_FALSE(p.add_prefill(0, 2, Set{1}).ok());
    EXPECT_FALSE(p.add_prefill(0, 0, Set{}).ok());
    EXPECT_FALSE(p.add_decode(0, 0, Set{1}).ok());  // before its prefill set
    ASSERT_TRUE(p.add_prefill(0, 0, Set{1, 2}).ok());
    ASSERT_TRUE(p.add_prefill(0, 1, Set{1, 2}).ok());
    ASSERT_TRUE(p.add_decode(0, 0, Set{1, 2}).ok());
    auto t = p.finish();  // head 1 has no decode steps
    ASSERT_FALSE(t.ok());
    EXPECT_NE(t.status().message().find("no decode steps"), std::string::npos);
    ASSERT_TRUE(p.add_decode(0, 1, Set{2, 3}).ok());
    t = p.finish();
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    // identical prefill sets -> one cluster: 0 leads, 1 follows
    EXPECT_EQ(t->role_of(0, 0), HeadRole::kPivot);
    EXPECT_EQ(t->role_of(0, 1), HeadRole::kSatellite);
    EXPECT_DOUBLE_EQ(t->stability[1], 0.5);
    EXPECT_DOUBLE_EQ(t->ratio[1], 1.0);  // the only compressed head: ratio 1
}

// JSON written from a profile loads back with the same roles, clusters and stability.
TEST(HcProfile, RoundTripsThroughJson) {
    const std::vector<double> stab = {0.9, 0.2, 0.7, 0.6};
    std::vector<std::vector<HeadCluster>> cl = {{HeadCluster{2, {3}}}};
    Taxonomy t = hc_classify(1, 4, stab, cl, HcProfileParams{});
    t.topk = 7;
    t.source = "unit test";
    auto back = taxonomy_from_json(taxonomy_to_json(t));
    ASSERT_TRUE(back.ok()) << back.status().to_string();
    EXPECT_EQ(back->role, t.role);
    EXPECT_EQ(back->stability, t.stability);
    EXPECT_EQ(back->topk, 7);
    EXPECT_EQ(back->source, "unit test");
    for (size_t i = 0; i < t.ratio.size(); ++i) EXPECT_DOUBLE_EQ(back->ratio[i], t.ratio[i]);
}

}  // namespace
}  // namespace hkv
