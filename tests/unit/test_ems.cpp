// Unit tests for EMS (policy/ems.cpp, policy/ems_merge.h) on synthetic layers held in a real
// KvStore: the zero-class batched pass equals the per-head loop bit for bit; the causal-bias
// correction and the max combination of the Global-Local score; a duplicated key is merged into
// its centre with the merge rule; evict / merge ablations; decode compaction; spec errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "heterokv/policy.h"
#include "kv/kv_store.h"
#include "policy/ems_merge.h"
#include "policy_test_util.h"

namespace hkv {
namespace {

using test::error_of;
using test::make;

// A layer of nh heads x n slots (positions 0..n-1) in an f32 KvStore, with given score lanes
// (accumulated column sums) and local scores, viewed as the runtime would at the prompt's end.
struct StoreLayer {
    int32_t nh, n, hd;
    std::unique_ptr<KvStore> kv;
    std::vector<float> keys, vals;  // [nh, n, hd]
    std::vector<float> lanes, local;  // [nh, n]
    std::vector<float> q;             // [n_q, nh, hd] queries of the step (optional)
    std::vector<int32_t> n_live, pos, idx, n_keep;
    std::vector<PosLane> pos_rows;
    std::vector<StatValues> stats;
    KvBudget budget;
    LayerView view;
    LayerPlan plan;

    StoreLayer(int32_t heads, int32_t slots, int32_t dim, uint32_t seed) : nh(heads), n(slots), hd(dim) {
        std::mt19937 rng(seed);
        std::normal_distribution<float> g(0.0f, 1.0f);
        keys.resize(size_t(nh) * size_t(n) * size_t(hd));
        vals.resize(keys.size());
        for (float& x : keys) x = g(rng);
        for (float& x : vals) x = g(rng);
        lanes.assign(size_t(nh) * size_t(n), 0.0f);
        local.assign(size_t(nh) * size_t(n), 0.0f);
    }
    float* key(int32_t ih, int32_t s) { return keys.data() + (size_t(ih) * size_t(n) + size_t(s)) * size_t(hd); }
    float* val(int32_t ih, int32_t s) { return vals.data() + (size_t(ih) * size_t(n) + size_t(s)) * size_t(hd); }

    // Loads the store and runs the policy at the prompt's end (or at a decode step).
    void run(Policy& p, bool decode = false) {
        KvStoreConfig c;
        c.n_layer = 1, c.n_head_kv = nh, c.head_dim = hd, c.page_size = 16, c.k_type = c.v_type = DType::kF32;
        c.score_lane = true;
        auto made = KvStore::create(c);
        ASSERT_TRUE(made.ok());
        kv = std::move(made).value();
        pos.resize(size_t(nh) * size_t(n));
        pos_rows.clear();
        for (int32_t ih = 0; ih < nh; ++ih) {
            std::iota(pos.begin() + long(ih) * n, pos.begin() + long(ih + 1) * n, 0);
            ASSERT_TRUE(kv->append(0, ih, n, key(ih, 0), hd, val(ih, 0), hd, pos.data()).ok());
            pos_rows.emplace_back(pos.data() + size_t(ih) * size_t(n), size_t(n));
        }
        ModelShape shape{1, nh, nh, hd, 4096};
        ASSERT_TRUE(p.begin(shape, Segment{0, 0, n}, budget).ok());
        n_live.assign(size_t(nh), n);
        idx.assign(size_t(nh) * size_t(n), -7);
        n_keep.assign(size_t(nh), -1);
        stats = {StatValues{n, lanes, {}}, StatValues{n, local, {}}};
        view.il = 0, view.n_layer = 1, view.n_head = nh, view.n_head_kv = nh, view.head_dim = hd;
        view.step = decode ? kStepDecode : kStepSegmentEnd, view.segment = Segment{0, 0, n}, view.n_past = n;
        view.n_live = n_live, view.pos = pos_rows, view.stats = stats;
        view.q = q, view.n_q = int32_t(q.size() / (size_t(nh) * size_t(hd)));
        view.kv = KvLayerView(kv.get(), 0, nullptr), view.budget = &budget;
        plan.stride = n, plan.keep = idx, plan.n_keep = n_keep;
        ASSERT_TRUE(p.on_layer(view, plan).ok());
    }
    std::vector<int32_t> kept(int32_t ih) const {
        if (n_keep[size_t(ih)] < 0) {
            std::vector<int32_t> r(static_cast<size_t>(n));
            std::iota(r.begin(), r.end(), 0);
            return r;
        }
        return std::vector<int32_t>(idx.begin() + long(ih) * n, idx.begin() + long(ih) * n + n_keep[size_t(ih)]);
    }
    const RowWrite* write_of(int32_t ih, int32_t slot) const {
        for (const RowWrite& w : plan.writes)
            if (w.head == ih && w.slot == slot) return &w;
        return nullptr;
    }
};

// ---------------------------------------------------------------- the zero-class pass

// Random ragged layer: heads with different numbers of centres (one with none), fixed and
// padding slots; the batched pass and the per-head loop must agree bit for bit on everything
// that is kept (classes, thresholds, class sums of the centres, merged rows).
TEST(EmsMerge, BatchedZeroClassEqualsPerHeadLoop) {
    std::mt19937 rng(5);
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    for (int rule = 0; rule < 5; ++rule) {
        const int32_t H = 4, S = 70, D = 12;
        const std::vector<int32_t> n_cent = {9, 0, 4, 9}, n_live = {70, 30, 55, 64};
        EmsBatch a;
        a.resize(H, S, D, 9);
        a.has_fixed_theta = rule == 1, a.fixed_theta = 0.2f;
        a.evict_only = rule == 2, a.merge_all = rule == 3;
        a.norm = rule == 1 ? EmsNorm::kMean : EmsNorm::kKeep;
        if (rule == 4) a.qscale = {0.5f, 2.0f, 40.0f, 1.0f};  // attention-consistent weights
        for (int32_t h = 0; h < H; ++h) {
            std::vector<int32_t> cand;
            for (int32_t s = 2; s < n_live[size_t(h)] - 5; ++s) cand.push_back(s);
            std::shuffle(cand.begin(), cand.end(), rng);
            for (int32_t s = 0; s < n_live[size_t(h)]; ++s) {
                const size_t hs = size_t(h) * S + size_t(s);
                float nn = 0.0f;
                for (int32_t d = 0; d < D; ++d) a.khat[hs * D + size_t(d)] = g(rng), a.v[hs * D + size_t(d)] = g(rng);
                for (int32_t d = 0; d < D; ++d) nn += a.khat[hs * D + size_t(d)] * a.khat[hs * D + size_t(d)];
                for (int32_t d = 0; d < D; ++d) a.khat[hs * D + size_t(d)] /= std::sqrt(nn);
                a.knorm[hs] = std::sqrt(nn), a.w[hs] = u(rng) + 1e-6f, a.lane[hs] = u(rng);
                a.role[hs] = (s >= 2 && s < n_live[size_t(h)] - 5) ? kEmsTbm : kEmsFixed;
            }
            for (int32_t c = 0; c < n_cent[size_t(h)]; ++c) {
                a.role[size_t(h) * S + size_t(cand[size_t(c)])] = c + 1;
                a.center_slot[size_t(h) * 10 + size_t(c) + 1] = cand[size_t(c)];
            }
        }
        EmsBatch b = a;
        ems_merge_batched(a);
        ems_merge_per_head(b);
        SCOPED_TRACE(rule);
        ASSERT_EQ(a.cls, b.cls);
        ASSERT_EQ(0, std::memcmp(a.theta.data(), b.theta.data(), a.theta.size() * sizeof(float)));
        int merged = 0, dropped = 0;
        for (int32_t h = 0; h < H; ++h) {
            for (int32_t s = 0; s < S; ++s) {
                const size_t hs = size_t(h) * S + size_t(s);
                if (a.role[hs] != kEmsTbm) continue;
                ASSERT_EQ(a.best[hs], b.best[hs]);
                ASSERT_EQ(a.arg[hs], b.arg[hs]);
                (a.cls[hs] > 0 ? merged : dropped)++;
            }
            for (int32_t c = 1; c <= 9; ++c) {
                const size_t hc = size_t(h) * 10 + size_t(c);
                ASSERT_EQ(a.count[hc], b.count[hc]);
                ASSERT_EQ(a.acc_lane[hc], b.acc_lane[hc]);
                ASSERT_EQ(0, std::memcmp(a.out_k.data() + hc * D, b.out_k.data() + hc * D, D * sizeof(float)));
                ASSERT_EQ(0, std::memcmp(a.out_v.data() + hc * D, b.out_v.data() + hc * D, D * sizeof(float)));
            }
        }
        for (float x : a.out_v) ASSERT_TRUE(std::isfinite(x));
        if (rule == 0 || rule == 1 || rule == 4) {
            EXPECT_TRUE(merged > 0 && dropped > 0);  // really evict-then-merge
        } else if (rule == 2) {
            EXPECT_EQ(merged, 0);
        } else {
            EXPECT_EQ(dropped, 30 - 7);  // only the head without centres drops its TBM slots
        }
    }
}

// ---------------------------------------------------------------- the Global-Local score

// Uniform attention over every visible key gives raw column sums n - j (early keys win, the
// causal bias); divided by the n - j queries that saw them, they are flat, so the four keys with
// twice the attention per query win.
TEST(EmsScore, CausalBiasCorrection) {
    StoreLayer L(1, 40, 8, 1);
    for (int32_t j = 0; j < 40; ++j) L.lanes[size_t(j)] = float(40 - j);
    for (int32_t j : {20, 25, 30, 33}) L.lanes[size_t(j)] *= 2.0f;
    auto p = make("ems:budget=8,window=4,sinks=0,kernel=1,score=global,mode=evict");
    L.run(*p);
    EXPECT_EQ(L.kept(0), (std::vector<int32_t>{20, 25, 30, 33, 36, 37, 38, 39}));
    EXPECT_TRUE(L.plan.writes.empty());  // evict-only writes nothing
}

// The default pooling width is kernel=auto (issue 18): 1100 slots, sinks 4 and window 32 leave
// 1064 candidates -> kernel 17 (radius 8), so a peak of the local score at slot 500 keeps 492..508
// whole; kernel=7 (the former default, SnapKV's) keeps 497..503 and the lowest-index others.
TEST(EmsScore, DefaultKernelWidensWithTheCandidates) {
    const int32_t n = 1100;
    auto kept_with = [&](const std::string& extra) {
        StoreLayer L(1, n, 8, 3);
        for (int32_t j = 0; j < n; ++j) L.local[size_t(j)] = 0.01f;
        L.local[500] = 1.0f;
        auto p = make("ems:budget=53,mode=evict" + extra);  // 17 selected
        L.run(*p);
        return L.kept(0);
    };
    std::vector<int32_t> want;
    for (int32_t i = 0; i < 4; ++i) want.push_back(i);
    for (int32_t i = 492; i < 509; ++i) want.push_back(i);
    for (int32_t i = n - 32; i < n; ++i) want.push_back(i);
    EXPECT_EQ(kept_with(""), want);
    EXPECT_EQ(kept_with(",kernel=auto"), want);
    const std::vector<int32_t> k7 = kept_with(",kernel=7");
    EXPECT_TRUE(std::binary_search(k7.begin(), k7.end(), 497) && std::binary_search(k7.begin(), k7.end(), 503));
    EXPECT_FALSE(std::binary_search(k7.begin(), k7.end(), 496) || std::binary_search(k7.begin(), k7.end(), 504));
}

// score=max keeps both the globally and the locally important keys; global / local only one kind.
TEST(EmsScore, MaxCombinesGlobalAndLocal) {
    auto kept_with = [](const std::string& score) {
        StoreLayer L(1, 40, 8, 2);
        for (int32_t j = 0; j < 40; ++j) L.lanes[size_t(j)] = float(40 - j), L.local[size_t(j)] = 0.01f;
        for (int32_t j : {10, 12}) L.lanes[size_t(j)] *= 2.0f;
        for (int32_t j : {20, 22}) L.local[size_t(j)] = 1.0f;
        auto p = make("ems:budget=8,window=4,sinks=0,kernel=1,mode=evict,score=" + score);
        L.run(*p);
        return L.kept(0);
    };
    EXPECT_EQ(kept_with("max"), (std::vector<int32_t>{10, 12, 20, 22, 36, 37, 38, 39}));
    const auto g = kept_with("global"), l = kept_with("local");
    EXPECT_TRUE(std::binary_search(g.begin(), g.end(), 10) && !std::binary_search(g.begin(), g.end(), 20));
    EXPECT_TRUE(std::binary_search(l.begin(), l.end(), 20) && !std::binary_search(l.begin(), l.end(), 10));
}

// ---------------------------------------------------------------- evict-then-merge

// A key duplicated (same direction, other norm) at a to-be-merged slot is merged into its centre:
// the centre keeps its direction and norm, its value becomes the score-weighted mean, its lane the
// sum; unrelated keys below the threshold are dropped (zero class).
TEST(EmsMerge, DuplicatedKeyIsMergedIntoItsCentre) {
    StoreLayer L(2, 40, 8, 3);
    const std::vector<int32_t> centres = {5, 10, 15, 20, 25, 30};
    for (int32_t ih = 0; ih < 2; ++ih) {
        for (int32_t j = 0; j < 40; ++j) L.lanes[size_t(ih * 40 + j)] = 0.1f * float(40 - j);
        for (int32_t j : centres) L.lanes[size_t(ih * 40 + j)] = float(40 - j);
    }
    for (int32_t d = 0; d < 8; ++d) L.key(0, 33)[d] = 2.5f * L.key(0, 10)[d];
    auto p = make("ems:budget=12,window=4,sinks=2,kernel=1,theta=0.99,score=max,weights=score");
    L.run(*p);
    for (int32_t ih = 0; ih < 2; ++ih) {
        EXPECT_EQ(L.kept(ih), (std::vector<int32_t>{0, 1, 5, 10, 15, 20, 25, 30, 36, 37, 38, 39}));
    }
    ASSERT_EQ(L.plan.writes.size(), 1u);  // random 8-d keys are never 0.99-similar to a centre
    const RowWrite* w = L.write_of(0, 10);
    ASSERT_NE(w, nullptr);
    // weights s_GL = g / max g (candidates [2, 36)), g = lane / (n - pos); + 1e-6
    const float gmax = 1.0f, w10 = 1.0f + 1e-6f, w33 = (0.1f * 7.0f / 7.0f) / gmax + 1e-6f;
    for (int32_t d = 0; d < 8; ++d) {
        EXPECT_NEAR(w->k[d], L.key(0, 10)[d], 1e-5f) << d;  // same direction, the centre's norm
        EXPECT_NEAR(w->v[d], (w10 * L.val(0, 10)[d] + w33 * L.val(0, 33)[d]) / (w10 + w33), 1e-5f) << d;
    }
    EXPECT_FLOAT_EQ(w->score, 30.0f + 0.7f);
}

// weights=attn: the duplicate (same direction, 2.5x the norm) weighs what a query along the
// centre's key would give it relative to the centre, exp(|q| / sqrt(hd) * (|K_t| - |K_r|)); the
// centre keeps its own weight. Long queries make the exponent huge: the row stays finite and is the
// duplicate's value (the centre's weight underflows), where exp() unshifted would overflow.
TEST(EmsMerge, AttentionConsistentWeights) {
    for (float qlen : {0.3f, 1000.0f}) {
        StoreLayer L(1, 40, 8, 3);
        const std::vector<int32_t> centres = {5, 10, 15, 20, 25, 30};
        for (int32_t j = 0; j < 40; ++j) L.lanes[size_t(j)] = 0.1f * float(40 - j);
        for (int32_t j : centres) L.lanes[size_t(j)] = float(40 - j);
        for (int32_t d = 0; d < 8; ++d) L.key(0, 33)[d] = 2.5f * L.key(0, 10)[d];
        L.q.assign(8, 0.0f);
        L.q[0] = qlen;  // one query of the step, |q| = qlen
        auto p = make("ems:budget=12,window=4,sinks=2,kernel=1,theta=0.99,score=max,weights=attn");
        L.run(*p);
        const RowWrite* w = L.write_of(0, 10);
        ASSERT_NE(w, nullptr);
        float kn = 0.0f;
        for (int32_t d = 0; d < 8; ++d) kn += L.key(0, 10)[d] * L.key(0, 10)[d];
        const double x = double(qlen) / std::sqrt(8.0) * 1.5 * std::sqrt(double(kn));  // exponent of slot 33
        const double w33 = 1.0, w10 = std::exp(-x);  // shifted by the class maximum x (centre's w = 1)
        for (int32_t d = 0; d < 8; ++d) {
            ASSERT_TRUE(std::isfinite(w->v[d]));
            EXPECT_NEAR(w->v[d], (w10 * L.val(0, 10)[d] + w33 * L.val(0, 33)[d]) / (w10 + w33), 1e-4) << d;
            EXPECT_NEAR(w->k[d], L.key(0, 10)[d], 1e-5f) << d;
        }
    }
}

// The defaults (score=local, weights=attn) rank by the local attention alone and merge without a
// score lane: merged rows leave the lane alone (NaN), the lanes given play no part.
TEST(EmsMerge, DefaultsUseLocalScoresOnly) {
    StoreLayer L(1, 60, 8, 4);
    for (int32_t j = 0; j < 60; ++j) L.lanes[size_t(j)] = float(60 - j), L.local[size_t(j)] = 0.01f;
    for (int32_t j : {7, 20, 30, 41}) L.local[size_t(j)] = 1.0f;
    L.q.assign(8, 0.5f);
    auto p = make("ems:budget=10,window=4,sinks=2,kernel=1,mode=merge");
    L.run(*p);
    const std::vector<int32_t> k = L.kept(0);
    for (int32_t j : {7, 20, 30, 41}) EXPECT_TRUE(std::binary_search(k.begin(), k.end(), j)) << j;
    EXPECT_FALSE(std::binary_search(k.begin(), k.end(), 2));  // the largest lane, no local attention
    ASSERT_GT(L.plan.writes.size(), 0u);
    for (const RowWrite& w : L.plan.writes) EXPECT_TRUE(std::isnan(w.score));
}

// mode=merge merges every candidate into some centre (no zero class); the adaptive threshold
// merges some and drops others.
TEST(EmsMerge, AblationsMergeAllOrSome) {
    for (const char* mode : {"merge", "etm"}) {
        StoreLayer L(1, 60, 8, 4);
        for (int32_t j = 0; j < 60; ++j) L.lanes[size_t(j)] = float(60 - j) * (1.0f + 0.01f * float(j % 7));
        auto p = make(std::string("ems:budget=16,window=4,sinks=2,score=max,mode=") + mode);
        L.run(*p);
        EXPECT_EQ(L.n_keep[0], 16);
        EXPECT_GT(L.plan.writes.size(), 0u) << mode;
    }
}

// During decoding a head over budget + window is compacted back to its budget; adaptive budgets
// keep the layer total at n_head * budget.
TEST(EmsDecode, CompactsBackToBudgetAndAdaptiveKeepsLayerTotal) {
    StoreLayer L(3, 100, 8, 6);
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    for (float& x : L.lanes) x = u(rng) * u(rng);
    for (float& x : L.local) x = u(rng) * u(rng) * u(rng);
    auto p = make("ems:budget=40,score=max");
    const PolicyInfo info = p->info();
    EXPECT_EQ(info.decode, DecodeKv::kEvicts);
    EXPECT_EQ(info.decode_slack, 32);
    ASSERT_EQ(info.stats.size(), 2u);  // global: accumulated column sums; local: the last 32 queries
    EXPECT_TRUE(info.stats[0].kind == StatKind::kAttentionSum && info.stats[0].from_lse);
    EXPECT_TRUE(info.stats[1].kind == StatKind::kAttention && info.stats[1].from_lse && info.stats[1].n_query == 32);
    EXPECT_TRUE(info.stats[1].segment_tail);  // the segment's last 32 queries, however prefill is chunked
    // the default score=local asks for the local attention only: no accumulated sums, no score lane
    const PolicyInfo dflt = make("ems:budget=40")->info();
    ASSERT_EQ(dflt.stats.size(), 1u);
    EXPECT_TRUE(dflt.stats[0].kind == StatKind::kAttention && dflt.stats[0].n_query == 32);
    EXPECT_TRUE(dflt.stats[0].segment_tail);
    EXPECT_EQ(make("ems:budget=40,decode=0")->info().decode, DecodeKv::kAppends);
    L.run(*p, true);
    for (int32_t ih = 0; ih < 3; ++ih) EXPECT_EQ(L.n_keep[size_t(ih)], 40);
    StoreLayer A(3, 100, 8, 6);
    A.lanes = L.lanes, A.local = L.local;
    auto pa = make("ems:budget=40,score=max,adaptive=1,alpha=0.2");
    A.run(*pa, true);
    int32_t total = 0;
    for (int32_t ih = 0; ih < 3; ++ih) {
        total += A.n_keep[size_t(ih)];
        EXPECT_GE(A.n_keep[size_t(ih)], 36);  // sinks + window (+ the floor 0.2 * 4, rounded)
        EXPECT_LE(A.n_keep[size_t(ih)], A.budget.at(0, ih));
    }
    EXPECT_EQ(total, 120);
}

TEST(EmsSpec, BadSpecsGiveClearErrors) {
    EXPECT_NE(error_of("ems:budget=64,mode=evict,weights=attn").find("weights=attn"), std::string::npos);
    EXPECT_NE(error_of("ems:budget=64,weights=xyz").find("weights"), std::string::npos);
    EXPECT_NE(error_of("ems").find("budget=N (slots per KV head) is required"), std::string::npos);
    EXPECT_NE(error_of("ems:budget=36,window=32").find("sinks=4 + window=32 must be smaller than budget=36"), std::string::npos);
    EXPECT_NE(error_of("ems:budget=64,score=min").find("not one of: global, local, max, sum"), std::string::npos);
    EXPECT_NE(error_of("ems:budget=64,mode=both").find("not one of: etm, evict, merge"), std::string::npos);
    EXPECT_NE(error_of("ems:budget=64,theta=1.5").find("out of range [-1, 1]"), std::string::npos);
    EXPECT_NE(error_of("ems:budget=64,theta=0.5,mode=evict").find("theta applies to mode=etm only"), std::string::npos);
    EXPECT_NE(error_of("ems:budget=64,alpha=0.5").find("alpha needs adaptive=1"), std::string::npos);
    EXPECT_NE(error_of("ems:budget=64,adaptive=2").find("out of range"), std::string::npos);
    EXPECT_NE(error_of("ems:budget=64,kernel=6").find("must be odd"), std::string::npos);
    EXPECT_NE(error_of("ems:budget=64,window=0").find("at least one recent query"), std::string::npos);
    EXPECT_NE(error_of("ems:budget=64,norm=none").find("not one of: keep, mean"), std::string::npos);
    EXPECT_NE(error_of("ems:budget=64,thresh=1").find("unknown option 'thresh'"), std::string::npos);
    EXPECT_TRUE(make("ems:budget=64,window=16,sinks=0,kernel=1,pool=avg,score=sum,mode=etm,theta=-0.5,"
                     "norm=mean,adaptive=1,alpha=0.5,decode=0"));
}

}  // namespace
}  // namespace hkv
