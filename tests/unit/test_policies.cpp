// Unit tests for the compression policies on synthetic layers (no model): spec errors; for every
// policy the plan invariants (never above budget, ascending, window kept, deterministic); and for
// each baseline that it keeps what its paper says it keeps.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "heterokv/policy.h"
#include "kv/kv_store.h"
#include "policy/select.h"
#include "policy/spec.h"
#include "policy_test_util.h"

namespace hkv {
namespace {

using test::error_of;
using test::make;

// A hand-built layer: heads with n slots each at positions 0..n-1 and given scores (the policy's
// first statistic), plus the plan buffers the runtime would provide (n_keep preset to -1).
struct Layer {
    int32_t nh, n;
    std::vector<int32_t> n_live, pos, idx, n_keep;
    std::vector<PosLane> pos_rows;  // [nh]
    std::vector<float> scores;  // [nh, n]
    std::vector<StatValues> stats;
    KvBudget budget;
    LayerView view;
    LayerPlan plan;

    Layer(int32_t heads, int32_t slots, std::vector<float> sc, int32_t il = 0, int32_t n_layer = 1)
        : nh(heads), n(slots), scores(std::move(sc)) {
        n_live.assign(size_t(nh), n);
        pos.resize(size_t(nh) * size_t(n));
        for (int32_t ih = 0; ih < nh; ++ih) std::iota(pos.begin() + long(ih) * n, pos.begin() + long(ih + 1) * n, 0);
        for (int32_t ih = 0; ih < nh; ++ih) pos_rows.emplace_back(pos.data() + size_t(ih) * size_t(n), size_t(n));
        view.il = il;
        view.n_layer = n_layer;
        view.n_head = nh;
        view.n_head_kv = nh;
        view.head_dim = 8;
        view.segment = Segment{0, 0, n};
        view.n_past = n;
        view.step = kStepSegmentEnd;
        reset_plan();
    }
    void reset_plan() {
        view.n_live = n_live;
        view.pos = pos_rows;
        stats.assign(1, StatValues{n, scores, {}});
        view.stats = stats;
        view.budget = &budget;
        idx.assign(size_t(nh) * size_t(n), -7);
        n_keep.assign(size_t(nh), -1);
        plan.stride = n;
        plan.keep = idx;
        plan.n_keep = n_keep;
    }
    // Plans budgets for a model of n_layer x nh and runs the prompt's end.
    void run(Policy& p, int32_t n_layer = 1) {
        ModelShape shape{n_layer, nh, nh, 8, 4096};
        ASSERT_TRUE(p.begin(shape, Segment{0, 0, n}, budget).ok());
        reset_plan();
        ASSERT_TRUE(p.on_layer(view, plan).ok());
    }
    // The slots head ih keeps (all of them when the plan leaves it alone).
    std::vector<int32_t> kept(int32_t ih) const {
        std::vector<int32_t> r(static_cast<size_t>(n));
        std::iota(r.begin(), r.end(), 0);
        if (n_keep[size_t(ih)] < 0) return r;
        return std::vector<int32_t>(idx.begin() + long(ih) * n, idx.begin() + long(ih) * n + n_keep[size_t(ih)]);
    }
};

std::vector<int32_t> range(int32_t b, int32_t e) {
    std::vector<int32_t> r(static_cast<size_t>(e - b));
    std::iota(r.begin(), r.end(), b);
    return r;
}
std::vector<int32_t> join(std::initializer_list<std::vector<int32_t>> parts) {
    std::vector<int32_t> r;
    for (const auto& p : parts) r.insert(r.end(), p.begin(), p.end());
    return r;
}
// Distinct small background scores, decreasing with the slot index.
std::vector<float> background(int32_t nh, int32_t n) {
    std::vector<float> s(size_t(nh) * size_t(n));
    for (size_t i = 0; i < s.size(); ++i) s[i] = 1e-3f / float(1 + (i % size_t(n)));
    return s;
}

// ---------------------------------------------------------------- specs

TEST(PolicySpec, BadSpecsGiveClearErrors) {
    EXPECT_NE(error_of("snapk:budget=64").find("unknown policy 'snapk' (policies: full, streaming, h2o"),
              std::string::npos);
    EXPECT_NE(error_of("snapkv:budget=64,windw=8").find("unknown option 'windw'"), std::string::npos);
    EXPECT_NE(error_of("snapkv:budget=0").find("budget=0 is out of range"), std::string::npos);
    EXPECT_NE(error_of("h2o:budget=-4").find("out of range"), std::string::npos);
    EXPECT_NE(error_of("snapkv:budget=32,window=32").find("window=32 must be smaller than budget=32"),
              std::string::npos);
    EXPECT_NE(error_of("pyramidkv:budget=40,window=64").find("must be smaller"), std::string::npos);
    EXPECT_NE(error_of("snapkv:budget=6x4").find("budget='6x4' is not an integer"), std::string::npos);
    EXPECT_NE(error_of("adakv:budget=64,alpha=0.2.1").find("is not a number"), std::string::npos);
    EXPECT_NE(error_of("adakv:budget=64,alpha=1.5").find("out of range"), std::string::npos);
    EXPECT_NE(error_of("snapkv:budget").find("is not key=value"), std::string::npos);
    EXPECT_NE(error_of("snapkv:budget=").find("is not key=value"), std::string::npos);
    EXPECT_NE(error_of("snapkv:budget=64,budget=32").find("given twice"), std::string::npos);
    EXPECT_NE(error_of("h2o").find("budget=N (slots per KV head) is required"), std::string::npos);
    EXPECT_NE(error_of("quest:dense=2").find("required"), std::string::npos);
    EXPECT_NE(error_of("snapkv:budget=64,kernel=4").find("must be odd"), std::string::npos);
    EXPECT_NE(error_of("snapkv:budget=64,pool=min").find("not one of: avg, max"), std::string::npos);
    EXPECT_NE(error_of("snapkv:budget=64,window=0").find("observation window"), std::string::npos);
    EXPECT_NE(error_of("chunkkv:budget=40,chunk=10,window=32").find("does not fit"), std::string::npos);
    EXPECT_NE(error_of("full:budget=64").find("unknown option 'budget'"), std::string::npos);
}

TEST(PolicySpec, EveryRegisteredPolicyIsCreatedWithItsDefaults) {
    const std::vector<std::string> names = {"full", "streaming", "h2o", "snapkv", "pyramidkv", "adakv", "chunkkv", "quest", "knorm", "tova", "ems", "dynsplit"};
    for (const std::string& name : names) {
        EXPECT_NE(policy_names().find(name), std::string::npos) << name;
        auto p = make(name == "full" ? name : name + ":budget=64");
        ASSERT_TRUE(p) << name;
        EXPECT_EQ(p->name(), name);
    }
    // + heterocache, which needs a taxonomy file (tests/unit/test_heterocache.cpp creates it)
    EXPECT_EQ(policy_entries().size(), names.size() + 1);
    // SnapKV: the attention of the segment's last `window` queries, at a prompt's end only
    const PolicyInfo snap = make("snapkv:budget=64")->info();
    ASSERT_EQ(snap.stats.size(), 1u);
    EXPECT_EQ(snap.stats[0].kind, StatKind::kAttention);
    EXPECT_EQ(snap.stats[0].n_query, 32);
    EXPECT_TRUE(snap.stats[0].segment_tail);
    EXPECT_EQ(snap.calls, uint32_t(kStepSegmentEnd));
    EXPECT_EQ(snap.decode, DecodeKv::kAppends);
    EXPECT_EQ(make("snapkv:budget=64,window=8")->info().stats[0].n_query, 8);
    // H2O: every query's attention, accumulated; evicts back to budget while decoding
    const PolicyInfo h = make("h2o:budget=64")->info();
    ASSERT_EQ(h.stats.size(), 1u);
    EXPECT_EQ(h.stats[0].kind, StatKind::kAttentionSum);
    EXPECT_EQ(h.stats[0].n_query, 0);
    EXPECT_EQ(h.stats[0].steps, kStepAll);
    EXPECT_EQ(h.decode, DecodeKv::kEvicts);
    EXPECT_EQ(h.decode_slack, 64);
    EXPECT_EQ(make("h2o:budget=64,slack=0")->info().decode_slack, 0);
    EXPECT_EQ(make("streaming:budget=64")->info().decode, DecodeKv::kEvicts);
    EXPECT_TRUE(make("quest:budget=64")->info().select_pages);
    EXPECT_TRUE(make("quest:budget=64")->info().stats.empty());
    EXPECT_EQ(make("adakv:budget=64")->info().decode, DecodeKv::kAppends);
    // `full` asks for nothing: the runtime never calls it
    const PolicyInfo f = make("full")->info();
    EXPECT_TRUE(f.calls == 0 && f.decode == DecodeKv::kAppends && !f.select_pages && f.stats.empty());
}

TEST(PolicySpec, ValidateAgainstTheModelBeforeAnyWork) {
    const ModelShape shape{4, 8, 2, 16, 512};
    EXPECT_TRUE(policy_validate("streaming:budget=64", shape).ok());
    // the default 4 sinks must leave room for a recent token (these failed at run time before)
    for (const char* spec : {"streaming:budget=1", "streaming:budget=3", "streaming:budget=4"}) {
        const Status st = policy_validate(spec, shape);
        EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << spec;
        EXPECT_NE(st.message().find("sinks"), std::string::npos) << st.message();
    }
    EXPECT_TRUE(policy_validate("streaming:budget=3,sinks=2", shape).ok());
    EXPECT_TRUE(policy_validate("streaming:budget=5", shape).ok());
    EXPECT_EQ(policy_validate("snapkv:budget=0", shape).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(policy_validate("nosuch", shape).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(policy_validate("snapkv:budget=64", ModelShape{4, 8, 2, 16, 0}).code(), StatusCode::kInvalidArgument);
    // dynsplit's default split reads the tokenizer's delimiters, which this shape does not have
    EXPECT_NE(policy_validate("dynsplit:budget=64", shape).message().find("delimiter"), std::string::npos);
    EXPECT_TRUE(policy_validate("dynsplit:budget=64,split=fixed", shape).ok());
    // the smallest accepted streaming budgets keep what they promise
    for (const auto& [spec, want] : {std::pair<std::string, std::vector<int32_t>>{"streaming:budget=1,sinks=0", {99}},
                                     {"streaming:budget=5", {0, 1, 2, 3, 99}}}) {
        auto p = make(spec);
        Layer l(1, 100, background(1, 100));
        l.run(*p);
        EXPECT_EQ(l.kept(0), want) << spec;
    }
}

// ---------------------------------------------------------------- helpers of select.h

TEST(PolicySelect, PoolingAndTopK) {
    const std::vector<float> in = {0, 5, 0, 0, 0, 3, 0};
    std::vector<float> out(in.size());
    pool1d(in.data(), 7, 3, PoolKind::kMax, out.data());
    EXPECT_EQ(out, (std::vector<float>{5, 5, 5, 0, 3, 3, 3}));
    pool1d(in.data(), 7, 3, PoolKind::kAvg, out.data());
    EXPECT_FLOAT_EQ(out[0], 5.0f / 3);  // the pad counts as zero
    EXPECT_FLOAT_EQ(out[3], 0.0f);
    EXPECT_FLOAT_EQ(out[6], 1.0f);
    std::vector<int32_t> top(3);
    const std::vector<float> s = {1, 4, 4, 2, 4, 0};
    top_k_indices(s.data(), 6, 3, top.data());
    EXPECT_EQ(top, (std::vector<int32_t>{1, 2, 4}));
    top_k_indices(s.data(), 6, 2, top.data());  // ties go to the lower index
    EXPECT_EQ(std::vector<int32_t>(top.begin(), top.begin() + 2), (std::vector<int32_t>{1, 2}));
    EXPECT_EQ(round_to_total({2.5, 2.5, 1.0}, 6), (std::vector<int32_t>{3, 2, 1}));
    EXPECT_EQ(round_to_total({27.2, 4.8}, 32), (std::vector<int32_t>{27, 5}));
}

// top_k_indices against the definition: sort every index by (score descending, index ascending),
// keep the first k, return them ascending. Scores with many ties, infinities and NaN (which ranks
// below every number), every k from 0 to n.
TEST(PolicySelect, TopKMatchesTheFullSort) {
    std::mt19937 rng(7);
    for (int trial = 0; trial < 200; ++trial) {
        const int32_t n = 1 + int32_t(rng() % 97);
        std::vector<float> s(static_cast<size_t>(n));
        for (float& x : s) {
            const uint32_t r = rng() % 20;
            x = r == 0 ? -INFINITY : r == 1 ? INFINITY : r == 2 ? NAN : r == 3 ? -0.0f  // -0 ties +0
                : float(int32_t(rng() % 6) - 2) * 0.25f;                                         // ties
        }
        std::vector<int32_t> order(static_cast<size_t>(n));
        std::iota(order.begin(), order.end(), 0);
        auto key = [&](int32_t i) { return std::isnan(s[size_t(i)]) ? -INFINITY : s[size_t(i)]; };
        std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return key(a) > key(b); });
        for (int32_t k = 0; k <= n; ++k) {
            std::vector<int32_t> want(order.begin(), order.begin() + k), got(size_t(k), -1);
            std::sort(want.begin(), want.end());
            top_k_indices(s.data(), n, k, got.data());
            ASSERT_EQ(got, want) << "n " << n << " k " << k << " trial " << trial;
        }
    }
}

// The same on long score vectors (the selection's bucket pass): continuous scores, scores that share
// one bucket (most equal), and all equal, at several k.
TEST(PolicySelect, TopKMatchesTheFullSortOnLongVectors) {
    std::mt19937 rng(11);
    for (int kind = 0; kind < 3; ++kind) {
        const int32_t n = 5000;
        std::vector<float> s(static_cast<size_t>(n));
        std::exponential_distribution<float> e(1.0f);
        for (float& x : s) x = kind == 0 ? e(rng) * 1e-4f : kind == 1 ? 1.0f + float(rng() % 3) * 1e-7f : 0.5f;
        std::vector<int32_t> order(static_cast<size_t>(n));
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return s[size_t(a)] > s[size_t(b)]; });
        for (int32_t k : {1, 7, 333, 2500, 4999}) {
            std::vector<int32_t> want(order.begin(), order.begin() + k), got(size_t(k), -1);
            std::sort(want.begin(), want.end());
            top_k_indices(s.data(), n, k, got.data());
            ASSERT_EQ(got, want) << "kind " << kind << " k " << k;
        }
    }
}

// Long vectors at k <= n / 4 take the sampled path (a threshold from every 8th slot, then a filter):
// the same indices as the full sort, whether the sample's bound holds (smooth, tied, with NaN and
// infinities) or not (every 8th slot large: too few pass, the full selection runs).
TEST(PolicySelect, TopKSampledPathMatchesTheFullSort) {
    std::mt19937 rng(13);
    std::normal_distribution<float> g(0.0f, 2.0f);
    for (int kind = 0; kind < 4; ++kind) {
        for (int32_t n : {4096, 32768, 40001}) {
            std::vector<float> s(static_cast<size_t>(n));
            for (size_t i = 0; i < s.size(); ++i) {
                const float x = std::exp(g(rng));
                s[i] = kind == 0   ? x
                       : kind == 1 ? float(int32_t(rng() % 50)) * 0.5f                                  // many ties
                       : kind == 2 ? (rng() % 50 == 0 ? (rng() % 2 ? NAN : rng() % 2 ? INFINITY : -INFINITY) : x)
                                   : (i % 8 == 0 ? 1000.0f + x : x);                                      // periodic
            }
            auto key = [&](int32_t i) { return std::isnan(s[size_t(i)]) ? -INFINITY : s[size_t(i)]; };
            std::vector<int32_t> order(static_cast<size_t>(n));
            std::iota(order.begin(), order.end(), 0);
            std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return key(a) > key(b); });
            for (int32_t k : {1, 9, 100, n / 15, n / 8, n / 4}) {
                std::vector<int32_t> want(order.begin(), order.begin() + k), got(size_t(k), -1);
                std::sort(want.begin(), want.end());
                top_k_indices(s.data(), n, k, got.data());
                ASSERT_EQ(got, want) << "kind " << kind << " n " << n << " k " << k;
            }
        }
    }
}

// pool1d against its definition (each output's clipped window, in order), bit for bit, for every
// kernel from 1 to 9 and lengths below, at and above the kernel.
TEST(PolicySelect, PoolingMatchesTheDefinition) {
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (int32_t kernel = 1; kernel <= 9; kernel += 2) {
        for (int32_t n : {1, 2, 3, 4, 5, 8, 9, 10, 64, 101}) {
            std::vector<float> in(static_cast<size_t>(n)), out(static_cast<size_t>(n));
            for (float& x : in) x = u(rng);
            for (PoolKind kind : {PoolKind::kMax, PoolKind::kAvg}) {
                pool1d(in.data(), n, kernel, kind, out.data());
                for (int32_t i = 0; i < n; ++i) {
                    const int32_t lo = std::max(0, i - kernel / 2), hi = std::min(n - 1, i + kernel / 2);
                    float want = kind == PoolKind::kMax ? in[size_t(lo)] : 0.0f;
                    for (int32_t j = kind == PoolKind::kMax ? lo + 1 : lo; j <= hi; ++j) {
                        want = kind == PoolKind::kMax ? std::max(want, in[size_t(j)]) : want + in[size_t(j)];
                    }
                    if (kind == PoolKind::kAvg) want /= float(kernel);
                    ASSERT_EQ(out[size_t(i)], want) << "kernel " << kernel << " n " << n << " i " << i;
                }
                for (int32_t i0 = 0; i0 <= n; i0 += 3) {  // any range gives the same outputs
                    const int32_t i1 = std::min(n, i0 + 1 + (i0 * 7) % 11);
                    std::vector<float> part(size_t(std::max(1, i1 - i0)));
                    pool1d_range(in.data(), n, kernel, kind, i0, i1, part.data());
                    for (int32_t i = i0; i < i1; ++i) ASSERT_EQ(part[size_t(i - i0)], out[size_t(i)]) << i0 << " " << i;
                }
            }
        }
    }
}

// ---------------------------------------------------------------- invariants of every policy

struct InvariantCase {
    std::string spec;
    int32_t window;  // recent slots the policy always keeps
    int32_t sinks;   // first slots the policy always keeps
};

class EveryPolicy : public ::testing::TestWithParam<InvariantCase> {};

TEST_P(EveryPolicy, NeverAboveBudgetAscendingKeepsEndsAndDeterministic) {
    const InvariantCase c = GetParam();
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    const int32_t nh = 3, n = 300, n_layer = 4;
    std::vector<float> sc(size_t(nh) * size_t(n));
    for (float& x : sc) x = u(rng) * u(rng) * u(rng);
    int64_t total = 0;
    for (int32_t il = 0; il < n_layer; ++il) {
        auto p1 = make(c.spec), p2 = make(c.spec);
        Layer a(nh, n, sc, il, n_layer), b(nh, n, sc, il, n_layer);
        a.run(*p1, n_layer);
        b.run(*p2, n_layer);
        for (int32_t ih = 0; ih < nh; ++ih) {
            const std::vector<int32_t> k = a.kept(ih);
            EXPECT_EQ(k, b.kept(ih)) << c.spec << " is not deterministic";
            ASSERT_GE(a.n_keep[size_t(ih)], 0) << c.spec << " kept everything of 300 slots with budget 64";
            EXPECT_LE(int32_t(k.size()), a.budget.at(il, ih)) << c.spec << " layer " << il << " head " << ih;
            EXPECT_TRUE(std::is_sorted(k.begin(), k.end()) && std::adjacent_find(k.begin(), k.end()) == k.end());
            EXPECT_TRUE(k.front() >= 0 && k.back() < n);
            for (int32_t s = 0; s < c.sinks; ++s) EXPECT_TRUE(std::binary_search(k.begin(), k.end(), s)) << c.spec;
            for (int32_t s = n - c.window; s < n; ++s) {
                EXPECT_TRUE(std::binary_search(k.begin(), k.end(), s)) << c.spec << " dropped recent slot " << s;
            }
            total += int64_t(k.size());
        }
    }
    EXPECT_LE(total, int64_t(n_layer) * nh * 64) << c.spec;  // the mean budget over layers and heads
}

INSTANTIATE_TEST_SUITE_P(Baselines, EveryPolicy,
                         ::testing::Values(InvariantCase{"streaming:budget=64", 60, 4},
                                           InvariantCase{"h2o:budget=64", 32, 0},
                                           InvariantCase{"h2o:budget=64,window=10,sinks=2", 10, 2},
                                           InvariantCase{"snapkv:budget=64", 32, 0},
                                           InvariantCase{"snapkv:budget=64,window=16,sinks=4,pool=avg", 16, 4},
                                           InvariantCase{"pyramidkv:budget=64,window=8", 8, 0},
                                           InvariantCase{"adakv:budget=64,window=8", 8, 0},
                                           InvariantCase{"chunkkv:budget=64,window=8", 8, 0},
                                           InvariantCase{"chunkkv:budget=64,window=8,reuse=2,chunk=7", 8, 0}),
                         [](const auto& info) {
                             std::string s = info.param.spec;
                             for (char& ch : s) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                             return s;
                         });

// ---------------------------------------------------------------- H2O

TEST(H2o, KeepsHeavyHittersAndRecentWindow) {
    const int32_t n = 40;
    std::vector<float> sc = background(1, n);
    for (int32_t s : {3, 11, 17, 30}) sc[size_t(s)] = 5.0f + float(s);  // heavy hitters
    sc[38] = 100.0f;  // inside the window: kept anyway, not counted as a heavy hitter
    auto p = make("h2o:budget=8");  // window = budget / 2 = 4
    Layer l(1, n, sc);
    l.run(*p);
    EXPECT_EQ(l.kept(0), join({{3, 11, 17, 30}, range(36, 40)}));
    // During decoding the same rule applies to the accumulated lanes.
    l.view.step = kStepDecode;
    l.reset_plan();
    ASSERT_TRUE(p->on_layer(l.view, l.plan).ok());
    EXPECT_EQ(l.kept(0), join({{3, 11, 17, 30}, range(36, 40)}));
    // Only a prompt's last chunk compresses: the runtime does not call it at the others.
    EXPECT_EQ(p->info().calls, uint32_t(kStepSegmentEnd));
}

// ---------------------------------------------------------------- SnapKV

TEST(SnapKv, KeepsThePooledTopKPlusWindow) {
    const int32_t n = 40;
    std::vector<float> sc = background(1, n);
    sc[10] = 5.0f;
    sc[20] = 4.0f;
    sc[25] = 3.5f;  // a lone peak below the pooled neighbours of 10 and 20
    auto p = make("snapkv:budget=10,window=4,kernel=3");
    Layer l(1, n, sc);
    l.run(*p);
    EXPECT_EQ(l.kept(0), join({{9, 10, 11, 19, 20, 21}, range(36, 40)}));
    // Without pooling the raw top 6 is kept.
    auto raw = make("snapkv:budget=10,window=4,kernel=1");
    l.run(*raw);
    EXPECT_EQ(l.kept(0), join({{0, 1, 2, 10, 20, 25}, range(36, 40)}));
}

TEST(SnapKv, DefaultsAreWindow32Kernel7MaxPool) {
    const int32_t n = 200;
    std::vector<float> sc = background(1, n);
    sc[100] = 9.0f;
    auto p = make("snapkv:budget=39");  // 7 selected slots + 32 window
    Layer l(1, n, sc);
    l.run(*p);
    EXPECT_EQ(l.kept(0), join({range(97, 104), range(168, 200)}));
    // Heads at or under budget are left alone.
    Layer small(1, 39, background(1, 39));
    small.run(*p);
    EXPECT_EQ(small.n_keep[0], -1);
}

TEST(SnapKv, KernelAutoWidensWithTheScoredSlots) {
    // kernel=auto: max(7, n / 64) made odd for n scored slots (issue 18): 7 up to 511, then wider
    EXPECT_EQ(snap_kernel(kKernelAuto, 224), 7);  // stories260K's 256-token contexts
    EXPECT_EQ(snap_kernel(kKernelAuto, 511), 7);
    EXPECT_EQ(snap_kernel(kKernelAuto, 992), 15);   // retrieval-1.4M, 1024-token context
    EXPECT_EQ(snap_kernel(kKernelAuto, 2016), 31);  // its 2048-token needle prompts
    EXPECT_EQ(snap_kernel(kKernelAuto, 1 << 20), 255);
    EXPECT_EQ(snap_kernel(kKernelAuto, 0), 7);
    EXPECT_EQ(snap_kernel(5, 4096), 5);  // a given width is kept
    // a peak at slot 500 of 1100: prefix 1068 -> kernel 17 (radius 8) keeps 492..508 whole; the
    // baselines' default 7 keeps 497..503 and fills the rest with the lowest-index background slots
    const int32_t n = 1100;
    std::vector<float> sc = background(1, n);
    sc[500] = 9.0f;
    Layer l(1, n, sc);
    auto a = make("snapkv:budget=49,kernel=auto");  // 17 selected + 32 window
    l.run(*a);
    EXPECT_EQ(l.kept(0), join({range(492, 509), range(n - 32, n)}));
    auto d = make("snapkv:budget=49");
    l.run(*d);
    const std::vector<int32_t> k7 = l.kept(0);
    EXPECT_TRUE(std::binary_search(k7.begin(), k7.end(), 497) && std::binary_search(k7.begin(), k7.end(), 503));
    EXPECT_FALSE(std::binary_search(k7.begin(), k7.end(), 496) || std::binary_search(k7.begin(), k7.end(), 504));
    EXPECT_NE(error_of("snapkv:budget=64,kernel=wide").find("'wide' is not an integer"), std::string::npos);
    EXPECT_NE(error_of("ems:budget=64,kernel=8").find("must be odd or auto"), std::string::npos);
}

// ---------------------------------------------------------------- PyramidKV

TEST(PyramidKv, LayerBudgetsDecreaseWithDepthAndAverageToBudget) {
    auto p = make("pyramidkv:budget=64,window=8");
    KvBudget b;
    ASSERT_TRUE(p->begin(ModelShape{8, 2, 2, 8, 4096}, Segment{0, 0, 1000}, b).ok());
    int64_t sum = 0;
    for (int32_t il = 0; il < 8; ++il) {
        EXPECT_EQ(b.at(il, 0), b.at(il, 1));
        if (il > 0) {
            EXPECT_LE(b.at(il, 0), b.at(il - 1, 0));
        }
        sum += b.at(il, 0);
    }
    EXPECT_EQ(sum, 8 * 64);
    // V = 56: max = 2V - V/20 = 109.2 -> layer 0 keeps 8 + 109 (+1 of the rounding), layer 7 8 + 2.8.
    EXPECT_NEAR(b.at(0, 0), 8 + 109.2, 1.0);
    EXPECT_NEAR(b.at(7, 0), 8 + 2.8, 1.0);
    // A short prompt clips the first layer at the prompt length; the mean is kept.
    ASSERT_TRUE(p->begin(ModelShape{8, 2, 2, 8, 4096}, Segment{0, 0, 100}, b).ok());
    EXPECT_EQ(b.at(0, 0), 100);
    sum = 0;
    for (int32_t il = 0; il < 8; ++il) sum += b.at(il, 0);
    EXPECT_EQ(sum, 8 * 64);
    // Each layer selects with its own budget.
    Layer top(2, 300, background(2, 300), 7, 8);
    top.run(*p, 8);
    EXPECT_EQ(int32_t(top.kept(0).size()), top.budget.at(7, 0));
    Layer bottom(2, 300, background(2, 300), 0, 8);
    bottom.run(*p, 8);
    EXPECT_EQ(int32_t(bottom.kept(0).size()), bottom.budget.at(0, 0));
    EXPECT_GT(bottom.kept(0).size(), top.kept(0).size() * 5);
}

// ---------------------------------------------------------------- AdaKV

TEST(AdaKv, GivesMoreToHeadsWithDominantScoresAndKeepsTheFloor) {
    const int32_t n = 100;
    std::vector<float> sc = background(2, n);
    for (int32_t s = 0; s < 30; ++s) sc[size_t(s * 3)] = 1.0f + 1e-3f * float(s);  // head 0: 30 strong slots
    for (int32_t s = 0; s < n; ++s) sc[size_t(n + s)] = 0.05f - 1e-5f * float(s);  // head 1: flat
    auto p = make("adakv:budget=20,window=4,kernel=1");  // B' = 16, layer total 32 selected
    Layer l(2, n, sc);
    l.run(*p);
    // Global top 32: all 30 strong slots of head 0 and the 2 best of head 1; budgets
    // 30 * 0.8 + 0.2 * 16 = 27.2 and 2 * 0.8 + 3.2 = 4.8, rounded to 27 + 5 = 32.
    const std::vector<int32_t> k0 = l.kept(0), k1 = l.kept(1);
    ASSERT_EQ(k0.size(), 27u + 4u);
    ASSERT_EQ(k1.size(), 5u + 4u);
    EXPECT_GE(double(k1.size() - 4), 0.2 * 16);  // the floor
    std::vector<int32_t> strong;
    for (int32_t s = 3; s < 30; ++s) strong.push_back(s * 3);  // head 0's top 27
    EXPECT_EQ(k0, join({strong, range(96, 100)}));
    EXPECT_EQ(k1, join({range(0, 5), range(96, 100)}));
    EXPECT_LE(int32_t(k0.size()), l.budget.at(0, 0));  // the per-head cap covers the allocation
    // alpha = 1 is the uniform budget: exactly SnapKV's selection.
    auto uni = make("adakv:budget=20,window=4,kernel=1,alpha=1");
    auto snap = make("snapkv:budget=20,window=4,kernel=1");
    Layer a(2, n, sc), b(2, n, sc);
    a.run(*uni);
    b.run(*snap);
    for (int32_t ih = 0; ih < 2; ++ih) EXPECT_EQ(a.kept(ih), b.kept(ih));
}

// ---------------------------------------------------------------- ChunkKV

TEST(ChunkKv, KeepsWholeChunksByMeanScoreSharedAcrossHeads) {
    const int32_t n = 64;  // candidates [0, 60): six chunks of 10
    std::vector<float> sc = background(2, n);
    for (int32_t s = 20; s < 30; ++s) sc[size_t(s)] = 1.0f;       // head 0 favours chunk 2
    for (int32_t s = 40; s < 50; ++s) sc[size_t(n + s)] = 0.8f;   // head 1 favours chunk 4
    sc[size_t(n + 5)] = 6.0f;  // one spike: chunk 0 mean 0.6 + ..., below chunk 4's 0.8
    auto p = make("chunkkv:budget=24,window=4,kernel=1");  // room for two chunks
    Layer l(2, n, sc);
    l.run(*p);
    const std::vector<int32_t> want = join({range(20, 30), range(40, 50), range(60, 64)});
    EXPECT_EQ(l.kept(0), want);
    EXPECT_EQ(l.kept(1), want);
    // A partial last chunk fills leftover room: 57 candidates = 5 chunks of 10 + one of 7.
    std::vector<float> sc2 = background(1, 61);
    for (int32_t s = 50; s < 57; ++s) sc2[size_t(s)] = 1.0f;
    for (int32_t s = 0; s < 10; ++s) sc2[size_t(s)] = 0.5f;
    auto q = make("chunkkv:budget=22,window=4,kernel=1");  // room 18: the 7-chunk and one 10-chunk
    Layer m(1, 61, sc2);
    m.run(*q);
    // ... and the one slot of room left goes to the latest candidate not taken (49): 22 slots
    EXPECT_EQ(m.kept(0), join({range(0, 10), range(49, 61)}));
}

TEST(ChunkKv, LayerIndexReuseSharesTheLeadersChoice) {
    const int32_t n = 64;
    std::vector<float> s0 = background(1, n), s1 = background(1, n);
    for (int32_t s = 20; s < 30; ++s) s0[size_t(s)] = 1.0f;
    for (int32_t s = 0; s < 10; ++s) s1[size_t(s)] = 1.0f;  // layer 1 alone would keep chunk 0
    auto p = make("chunkkv:budget=14,window=4,kernel=1,reuse=2");
    KvBudget b;
    ASSERT_TRUE(p->begin(ModelShape{3, 1, 1, 8, 4096}, Segment{0, 0, n}, b).ok());
    Layer l0(1, n, s0, 0, 3), l1(1, n, s1, 1, 3), l2(1, n, s1, 2, 3);
    for (Layer* l : {&l0, &l1, &l2}) {
        l->budget = b;
        l->reset_plan();
        ASSERT_TRUE(p->on_layer(l->view, l->plan).ok());
    }
    EXPECT_EQ(l0.kept(0), join({range(20, 30), range(60, 64)}));
    EXPECT_EQ(l1.kept(0), join({range(20, 30), range(60, 64)}));  // reused from layer 0
    EXPECT_EQ(l2.kept(0), join({range(0, 10), range(60, 64)}));   // a new group scores itself
    auto no_reuse = make("chunkkv:budget=14,window=4,kernel=1");
    Layer alone(1, n, s1, 1, 3);
    alone.run(*no_reuse, 3);
    EXPECT_EQ(alone.kept(0), join({range(0, 10), range(60, 64)}));
}

// ---------------------------------------------------------------- TOVA, Knorm

TEST(Tova, LatestQuerysAttentionSummedOverHeadsSameTokensEveryHead) {
    const int32_t n = 12;
    std::vector<float> sc(size_t(2 * n), 0.0f);  // [2 heads, 12 slots]: the latest query's attention
    sc[2] = 0.5f, sc[5] = 0.3f;                  // head 0
    sc[size_t(n + 7)] = 0.6f, sc[size_t(n + 2)] = 0.1f;  // head 1
    sc[size_t(n - 1)] = 0.0f;                    // the latest token itself scores nothing but stays
    auto p = make("tova:budget=4");
    ASSERT_TRUE(p);
    const PolicyInfo i = p->info();
    EXPECT_TRUE(i.calls == kStepSegmentEnd && i.decode == DecodeKv::kEvicts && i.decode_slack == 64);
    ASSERT_EQ(i.stats.size(), 1u);
    EXPECT_EQ(i.stats[0].n_query, 1);
    EXPECT_TRUE(i.stats[0].steps & kStepDecode);
    Layer l(2, n, sc);
    l.run(*p);
    const std::vector<int32_t> want = {2, 5, 7, 11};  // sums 0.6, 0.3, 0.6 + the latest
    EXPECT_EQ(l.kept(0), want);
    EXPECT_EQ(l.kept(1), want);
    EXPECT_EQ(make("tova:budget=4,slack=0")->info().decode_slack, 0);
    EXPECT_NE(error_of("tova:window=4").find("budget"), std::string::npos);
}

TEST(Knorm, KeepsTheKeysOfSmallestNorm) {
    KvStoreConfig c;
    c.n_layer = 1, c.n_head_kv = 1, c.head_dim = 2, c.page_size = 4, c.k_type = c.v_type = DType::kF32;
    auto kv = std::move(KvStore::create(c)).value();
    std::vector<float> k(16, 0.0f), v(16, 0.0f);  // 8 slots: |k| = 1 + s except slots 3 (0.1) and 6 (0.2)
    for (int32_t s = 0; s < 8; ++s) k[size_t(2 * s + 1)] = s == 3 ? 0.1f : s == 6 ? -0.2f : 1.0f + float(s);
    std::vector<int32_t> pos(8);
    std::iota(pos.begin(), pos.end(), 0);
    ASSERT_TRUE(kv->append(0, 0, 8, k.data(), 2, v.data(), 2, pos.data()).ok());
    for (const auto& [spec, want] : std::vector<std::pair<std::string, std::vector<int32_t>>>{
             {"knorm:budget=3", {0, 3, 6}}, {"knorm:budget=3,window=2", {3, 6, 7}}}) {
        auto p = make(spec);
        ASSERT_TRUE(p);
        EXPECT_TRUE(p->info().stats.empty());
        Layer l(1, 8, std::vector<float>(8, 0.0f));
        l.view.head_dim = 2;
        l.view.kv = KvLayerView(kv.get(), 0, nullptr);
        l.run(*p);
        EXPECT_EQ(l.kept(0), want) << spec;
    }
}

// ---------------------------------------------------------------- Quest

// One layer of f32 keys (head_dim 2) in a real KvStore with pages of 4 slots; values are zeros.
struct QuestLayer {
    int32_t ps = 4, hd = 2, nh, il;
    int32_t unit = 4;  // slots per selected page (the policy's page; divides ps)
    std::unique_ptr<KvStore> kv;
    std::vector<int32_t> n_live, sel_pages, sel_n;
    std::vector<PosLane> pos_rows;
    LayerView view;
    PageSelection sel;
    // keys[ih]: [n, hd]; the first n_rows of them (all by default) go into the store
    QuestLayer(int32_t heads, const std::vector<std::vector<float>>& keys, int32_t layer, int32_t n_rows = -1)
        : nh(heads), il(layer) {
        KvStoreConfig c;
        c.n_layer = 4, c.n_head_kv = nh, c.head_dim = hd, c.page_size = ps, c.k_type = c.v_type = DType::kF32;
        kv = std::move(KvStore::create(c)).value();
        const int32_t n = n_rows >= 0 ? n_rows : int32_t(keys[0].size()) / hd;
        for (int32_t ih = 0; ih < nh; ++ih) append(ih, keys[size_t(ih)].data(), 0, n);
    }
    // Appends rows [r0, r0 + n) of key array k to head ih at positions r0...
    void append(int32_t ih, const float* k, int32_t r0, int32_t n) {
        const std::vector<float> v(size_t(n) * size_t(hd), 0.0f);
        std::vector<int32_t> pos(static_cast<size_t>(n));
        std::iota(pos.begin(), pos.end(), r0);
        ASSERT_TRUE(kv->append(il, ih, n, k + size_t(r0) * size_t(hd), hd, v.data(), hd, pos.data()).ok());
    }
    std::vector<int32_t> run(Policy& p, const std::vector<float>& q, int32_t ih = 0) {
        n_live.resize(size_t(nh));
        pos_rows.resize(size_t(nh));
        int32_t n_slot = 0;
        for (int32_t h = 0; h < nh; ++h) {
            n_live[size_t(h)] = kv->n_slot(il, h);
            pos_rows[size_t(h)] = kv->positions(il, h);
            n_slot = std::max(n_slot, n_live[size_t(h)]);
        }
        view = LayerView();
        view.il = il;
        view.n_layer = 4;
        view.n_head_kv = nh;
        view.n_head = int32_t(q.size()) / hd;
        view.head_dim = hd;
        view.step = kStepSelect;
        view.n_live = n_live;
        view.pos = pos_rows;
        view.n_q = 1;
        view.q = q;
        view.kv = KvLayerView(kv.get(), il, nullptr);
        const int32_t max_pages = (n_slot + unit - 1) / unit;
        sel_pages.assign(size_t(nh) * size_t(max_pages), -1);
        sel_n.assign(size_t(nh), -1);
        sel.page_size = unit;
        sel.max_pages = max_pages;
        sel.pages = sel_pages;
        sel.n_pages = sel_n;
        LayerPlan plan;
        plan.select = &sel;
        EXPECT_TRUE(p.on_layer(view, plan).ok());
        if (sel_n[size_t(ih)] < 0) return {-1};
        return std::vector<int32_t>(sel_pages.begin() + long(ih) * max_pages,
                                    sel_pages.begin() + long(ih) * max_pages + sel_n[size_t(ih)]);
    }
};

// 6 pages of 4 keys; page p's dim-0 values are set so the bounds differ.
std::vector<float> quest_keys() {
    std::vector<float> k(6 * 4 * 2, 0.0f);
    auto set = [&](int32_t slot, float d0, float d1) {
        k[size_t(slot * 2)] = d0;
        k[size_t(slot * 2 + 1)] = d1;
    };
    set(5, 3.0f, 0.0f);    // page 1: max d0 = 3
    set(13, 2.0f, 0.0f);   // page 3: max d0 = 2
    set(9, -4.0f, 0.0f);   // page 2: min d0 = -4
    set(1, 0.0f, 2.5f);    // page 0: max d1 = 2.5
    set(17, -1.0f, -1.0f); // page 4
    return k;
}

TEST(Quest, PicksPagesWithTheHighestBoundAndTheLastPage) {
    auto p = make("quest:budget=8,page=4");  // max(3, 8/4) = 3 pages
    ASSERT_TRUE(p);
    KvBudget b;
    ASSERT_TRUE(p->begin(ModelShape{4, 1, 1, 2, 4096}, Segment{0, 0, 24}, b).ok());
    EXPECT_EQ(b.at(3, 0), -1);  // nothing is evicted
    QuestLayer l(1, {quest_keys()}, 2);
    EXPECT_EQ(l.run(*p, {1, 0}), (std::vector<int32_t>{1, 3, 5}));   // q·k bound: pages 1 (3), 3 (2)
    EXPECT_EQ(l.run(*p, {-1, 0}), (std::vector<int32_t>{2, 4, 5}));  // the sign picks the min: 2 (4), 4 (1)
    EXPECT_EQ(l.run(*p, {0, 1}), (std::vector<int32_t>{0, 1, 5}));   // page 0 (2.5), then ties -> lowest
    // The first two layers stay dense.
    QuestLayer dense(1, {quest_keys()}, 1);
    EXPECT_EQ(dense.run(*p, {1, 0}), (std::vector<int32_t>{-1}));
    // A larger budget that covers every page selects nothing.
    auto all = make("quest:budget=24,page=4");
    ASSERT_TRUE(all->begin(ModelShape{4, 1, 1, 2, 4096}, Segment{0, 0, 24}, b).ok());
    EXPECT_EQ(l.run(*all, {1, 0}), (std::vector<int32_t>{-1}));
}

TEST(Quest, SelectionPagesFinerThanTheStorePages) {
    // The same keys in store pages of 4, selected in pages of 2 (12 of them): the bounds are per
    // 2-slot page, so a budget of 6 attends to 3 pages = 6 slots, not 3 store pages = 12.
    auto p = make("quest:budget=6,page=2");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->info().select_page, 2);
    EXPECT_EQ(make("quest:budget=64")->info().select_page, 16);  // the paper's 16-token pages by default
    KvBudget b;
    ASSERT_TRUE(p->begin(ModelShape{4, 1, 1, 2, 4096}, Segment{0, 0, 24}, b).ok());
    QuestLayer l(1, {quest_keys()}, 2);
    l.unit = 2;
    EXPECT_EQ(l.run(*p, {1, 0}), (std::vector<int32_t>{2, 6, 11}));   // slot 5 (3) in page 2, slot 13 (2) in 6
    EXPECT_EQ(l.run(*p, {-1, 0}), (std::vector<int32_t>{4, 8, 11}));  // slot 9 (-4) in page 4, slot 17 (-1) in 8
    // Budgets 6, 8 and 12 are three different selections (3, 4 and 6 pages).
    for (int32_t budget : {8, 12}) {
        auto q = make("quest:budget=" + std::to_string(budget) + ",page=2");
        ASSERT_TRUE(q->begin(ModelShape{4, 1, 1, 2, 4096}, Segment{0, 0, 24}, b).ok());
        EXPECT_EQ(l.run(*q, {1, 0}).size(), size_t(budget / 2));
    }
}

TEST(Quest, SumsTheGqaGroupsQueriesAndTracksAppendedRows) {
    auto p = make("quest:budget=8,page=4");
    KvBudget b;
    ASSERT_TRUE(p->begin(ModelShape{4, 2, 1, 2, 4096}, Segment{0, 0, 24}, b).ok());
    std::vector<float> keys = quest_keys();
    QuestLayer l(1, {keys}, 3, 14);  // pages 0..3, the last one half full
    // Two query heads share the KV head: (1, 0) + (0, 1) -> (1, 1): page 1 (3), page 0 (2.5).
    EXPECT_EQ(l.run(*p, {1, 0, 0, 1}), (std::vector<int32_t>{0, 1, 3}));
    // Rows appended to the cached half-full page 3 (the store grows in place) update its bound.
    keys[size_t(14 * 2 + 1)] = 9.0f;  // slot 14, dim 1
    l.append(0, keys.data(), 14, 10);
    EXPECT_EQ(l.run(*p, {0, 1, 0, 0}), (std::vector<int32_t>{0, 3, 5}));
    // After the store rewrote a row (a new epoch), the rewritten rows are read again.
    const float zero[2] = {0.0f, 0.0f};
    ASSERT_TRUE(l.kv->write_row(3, 0, 5, zero, zero).ok());  // page 1 loses its 3
    EXPECT_EQ(l.run(*p, {1, 0, 0, 0}), (std::vector<int32_t>{0, 3, 5}));
}

TEST(Quest, SelectsTheTopBoundsOnRandomKeys) {
    std::mt19937 rng(3);
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::vector<float> keys(size_t(40 * 2));  // 10 pages of 4
    for (float& x : keys) x = g(rng);
    auto p = make("quest:budget=16,page=4");  // max(3, 16/4) = 4 pages
    KvBudget b;
    ASSERT_TRUE(p->begin(ModelShape{4, 1, 1, 2, 4096}, Segment{0, 0, 40}, b).ok());
    QuestLayer l(1, {keys}, 2);
    for (int trial = 0; trial < 20; ++trial) {
        const std::vector<float> q = {g(rng), g(rng)};
        std::vector<std::pair<float, int32_t>> bounds;  // (-bound, page) of pages 0..8
        for (int32_t pg = 0; pg < 9; ++pg) {
            float bound = 0.0f, best = -INFINITY;
            for (int32_t d = 0; d < 2; ++d) {
                float mn = INFINITY, mx = -INFINITY;
                for (int32_t r = 0; r < 4; ++r) {
                    mn = std::min(mn, keys[size_t((pg * 4 + r) * 2 + d)]);
                    mx = std::max(mx, keys[size_t((pg * 4 + r) * 2 + d)]);
                }
                bound += std::max(q[size_t(d)] * mn, q[size_t(d)] * mx);
            }
            for (int32_t r = 0; r < 4; ++r) {
                best = std::max(best, q[0] * keys[size_t((pg * 4 + r) * 2)] + q[1] * keys[size_t((pg * 4 + r) * 2 + 1)]);
            }
            ASSERT_GE(bound + 1e-5f, best);  // an upper bound of every key's score in the page
            bounds.push_back({-bound, pg});
        }
        std::sort(bounds.begin(), bounds.end());
        std::vector<int32_t> want = {bounds[0].second, bounds[1].second, bounds[2].second};
        std::sort(want.begin(), want.end());
        want.push_back(9);
        EXPECT_EQ(l.run(*p, q), want);
    }
}

// Quest's cache relies on the store's epoch: unchanged by appends, changed by every removal.
TEST(Quest, StoreEpochChangesExactlyWhenSlotsMayBeRemoved) {
    KvStoreConfig cfg;
    cfg.n_layer = 1;
    cfg.n_head_kv = 1;
    cfg.head_dim = 2;
    cfg.page_size = 4;
    cfg.k_type = cfg.v_type = DType::kF32;
    auto kv = KvStore::create(cfg);
    ASSERT_TRUE(kv.ok());
    const std::vector<float> rows(12, 1.0f);
    const std::vector<int32_t> pos = {0, 1, 2, 3, 4, 5};
    const uint64_t e0 = (*kv)->epoch();
    ASSERT_TRUE((*kv)->append(0, 0, 6, rows.data(), 2, rows.data(), 2, pos.data()).ok());
    EXPECT_EQ((*kv)->epoch(), e0);
    (*kv)->drop_from(4);
    const uint64_t e1 = (*kv)->epoch();
    EXPECT_NE(e1, e0);
    const int32_t keep[] = {0, 2};
    ASSERT_TRUE((*kv)->compact(0, 0, keep, 2).ok());
    EXPECT_NE((*kv)->epoch(), e1);
    const uint64_t e2 = (*kv)->epoch();
    (*kv)->clear();
    EXPECT_NE((*kv)->epoch(), e2);
}

}  // namespace
}  // namespace hkv
