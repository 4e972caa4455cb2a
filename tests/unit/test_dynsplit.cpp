// Unit tests for DynSplit-KV (src/policy/blocks.h, src/policy/dynsplit.cpp) on synthetic data:
// DD-Select (min/max lengths honoured, target count, adaptive threshold, deterministic), the rigid
// splits, the uniform page mapping's invariants and its block scores against the ragged reference,
// budgeted block selection, the policy on a synthetic layer (whole blocks, sinks, window, budget),
// per-KV-head selection (heads=each, heads=adaptive with Ada-KV budgets), the delimiter test, and
// spec errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "heterokv/policy.h"
#include "policy/blocks.h"
#include "tokenizer/delimiters.h"

namespace hkv {
namespace {

std::string error_of(const std::string& spec) {
    auto p = policy_create(spec);
    EXPECT_FALSE(p.ok()) << spec << " was accepted";
    return p.ok() ? "" : p.status().to_string();
}

void expect_valid_split(const std::vector<int32_t>& bounds, int32_t b, int32_t e) {
    ASSERT_GE(bounds.size(), 2u);
    EXPECT_EQ(bounds.front(), b);
    EXPECT_EQ(bounds.back(), e);
    for (size_t j = 0; j + 1 < bounds.size(); ++j) EXPECT_LT(bounds[j], bounds[j + 1]);
}

TEST(DynSplitSplit, DdSelectHonoursMinAndMaxLengthsAndIsDeterministic) {
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (int trial = 0; trial < 50; ++trial) {
        const int32_t b = 4, e = 4 + 50 + int32_t(rng() % 400);
        std::vector<uint8_t> cand(static_cast<size_t>(e), 0);
        std::vector<float> score(static_cast<size_t>(e));
        for (int32_t i = 0; i < e; ++i) {
            cand[size_t(i)] = (rng() % 3 == 0) ? 1 : 0;
            score[size_t(i)] = u(rng);
        }
        SplitOptions o;
        o.min_len = 4 + trial % 5;
        o.max_len = 40;
        o.target = 12;
        o.accept = trial % 2 ? AcceptKind::kAdaptive : AcceptKind::kTarget;
        std::vector<int32_t> bounds, again;
        split_dd(cand.data(), score.data(), b, e, o, bounds);
        split_dd(cand.data(), score.data(), b, e, o, again);
        EXPECT_EQ(bounds, again);
        expect_valid_split(bounds, b, e);
        // candidates are dense enough (1 in 3) that split_cap never falls back to fixed cuts:
        // every inner boundary is a candidate, and blocks are within [min_len, max_len]
        for (size_t j = 0; j + 1 < bounds.size(); ++j) {
            if (j > 0) {
                EXPECT_TRUE(cand[size_t(bounds[j])]) << "trial " << trial;
            }
            EXPECT_GE(bounds[j + 1] - bounds[j], o.min_len) << "trial " << trial;
            EXPECT_LE(bounds[j + 1] - bounds[j], o.max_len) << "trial " << trial;
        }
        if (o.accept == AcceptKind::kTarget) {  // uncapped: no more blocks than the target mean asks
            SplitOptions un = o;
            un.max_len = e;
            split_dd(cand.data(), score.data(), b, e, un, bounds);
            EXPECT_LE(int32_t(bounds.size()) - 1, (e - b + o.target - 1) / o.target);
            EXPECT_GE(int32_t(bounds.size()) - 1, 2) << "trial " << trial;
        }
    }
}

TEST(DynSplitSplit, DdSelectTakesTheBestScoresFirst) {
    // candidates every 5 slots over [0, 100); two of them score high
    std::vector<uint8_t> cand(100, 0);
    std::vector<float> score(100, 0.0f);
    for (int32_t i = 5; i < 100; i += 5) {
        cand[size_t(i)] = 1;
        score[size_t(i)] = 0.01f * float(i % 7);
    }
    score[40] = 5.0f;
    score[70] = 4.0f;
    score[45] = 3.0f;  // too close to 40 with min_len 8
    SplitOptions o;
    o.min_len = 8;
    o.max_len = 100;
    o.target = 34;  // ceil(100 / 34) = 3 blocks
    std::vector<int32_t> bounds;
    split_dd(cand.data(), score.data(), 0, 100, o, bounds);
    EXPECT_EQ(bounds, (std::vector<int32_t>{0, 40, 70, 100}));
    o.accept = AcceptKind::kAdaptive;  // only the outliers pass mean + 0.5 sd
    split_dd(cand.data(), score.data(), 0, 100, o, bounds);
    EXPECT_EQ(bounds, (std::vector<int32_t>{0, 40, 70, 100}));
    o.accept = AcceptKind::kTarget;
    o.max_len = 32;  // [0, 40) and [70, 100) fine? 40 > 32: split at its best inner candidate
    split_dd(cand.data(), score.data(), 0, 100, o, bounds);
    expect_valid_split(bounds, 0, 100);
    for (size_t j = 0; j + 1 < bounds.size(); ++j) EXPECT_LE(bounds[j + 1] - bounds[j], 32);
    EXPECT_TRUE(std::binary_search(bounds.begin(), bounds.end(), 40));
}

TEST(DynSplitSplit, FixedAndPunctuationBaselines) {
    std::vector<int32_t> bounds;
    split_fixed(4, 40, 16, bounds);
    EXPECT_EQ(bounds, (std::vector<int32_t>{4, 20, 36, 40}));
    std::vector<uint8_t> cand(200, 0);
    cand[10] = cand[12] = cand[150] = 1;
    SplitOptions o;
    o.max_len = 64;
    split_punct(cand.data(), 0, 200, o, bounds);
    // every delimiter is a boundary (even 2 apart); the 138-slot span is cut every 64
    EXPECT_EQ(bounds, (std::vector<int32_t>{0, 10, 12, 76, 140, 150, 200}));
}

TEST(DynSplitMapping, PagesCoverEveryBlockExactlyOnce) {
    const std::vector<int32_t> bounds = {4, 5, 21, 37, 38, 90};
    BlockPages bp;
    block_pages_build(bounds, 16, bp);
    EXPECT_EQ(bp.n_blocks(), 5);
    // block lengths 1, 16, 16, 1, 52 -> pages 1, 1, 1, 1, 4
    EXPECT_EQ(bp.block_page, (std::vector<int32_t>{0, 1, 2, 3, 4, 8}));
    std::vector<int32_t> covered;
    for (int32_t p = 0; p < bp.n_pages(); ++p) {
        const int32_t j = bp.page_block[size_t(p)];
        EXPECT_GE(bp.page_valid[size_t(p)], 1);
        EXPECT_LE(bp.page_valid[size_t(p)], 16);
        EXPECT_GE(bp.page_start[size_t(p)], bounds[size_t(j)]);
        EXPECT_LE(bp.page_start[size_t(p)] + bp.page_valid[size_t(p)], bounds[size_t(j) + 1]);
        EXPECT_TRUE(p >= bp.block_page[size_t(j)] && p < bp.block_page[size_t(j) + 1]);
        // only a block's last page may be partial
        if (p + 1 < bp.block_page[size_t(j) + 1]) {
            EXPECT_EQ(bp.page_valid[size_t(p)], 16);
        }
        for (int32_t i = 0; i < bp.page_valid[size_t(p)]; ++i) covered.push_back(bp.page_start[size_t(p)] + i);
    }
    std::vector<int32_t> all(86);
    std::iota(all.begin(), all.end(), 4);
    EXPECT_EQ(covered, all);
}

TEST(DynSplitMapping, PagedBlockScoresEqualTheRaggedOnes) {
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    std::vector<float> token(1000);
    for (float& t : token) t = u(rng);
    std::vector<int32_t> bounds = {0};
    while (bounds.back() < 1000) bounds.push_back(std::min(1000, bounds.back() + 1 + int32_t(rng() % 70)));
    for (int32_t page : {1, 8, 16, 64}) {
        BlockPages bp;
        block_pages_build(bounds, page, bp);
        PagedScratch sc;
        for (BlockScoreKind k : {BlockScoreKind::kMean, BlockScoreKind::kMax, BlockScoreKind::kSqrt}) {
            std::vector<float> paged, ragged;
            block_scores_paged(bp, token.data(), k, sc, paged);
            block_scores_ragged(bounds, token.data(), k, ragged);
            ASSERT_EQ(paged.size(), ragged.size());
            for (size_t j = 0; j < paged.size(); ++j) EXPECT_NEAR(paged[j], ragged[j], 1e-5f * (1 + ragged[j]));
        }
    }
}

TEST(DynSplitSelect, TakesWholeBlocksBestFirstWithinRoom) {
    const std::vector<int32_t> bounds = {0, 10, 30, 35, 60};
    const std::vector<float> score = {0.5f, 0.9f, 0.1f, 0.7f};
    std::vector<int32_t> order;
    std::vector<uint8_t> taken;
    // room 30: block 1 (20) fits, block 3 (25) does not, block 0 (10) fits
    EXPECT_EQ(blocks_select(score, bounds, 30, order, taken), 30);
    EXPECT_EQ(taken, (std::vector<uint8_t>{1, 1, 0, 0}));
    EXPECT_EQ(blocks_select(score, bounds, 4, order, taken), 0);
}

// ---- the policy on a synthetic layer

struct SynthLayer {
    int32_t nh = 2, n;
    std::vector<int32_t> n_live, pos, tokens, idx, n_keep;
    std::vector<PosLane> pos_rows;
    std::vector<float> scores, band_recent, band_count;
    std::vector<uint8_t> mask;
    std::vector<StatValues> stats;
    KvBudget budget;
    LayerView view;
    LayerPlan plan;
    PolicyStep step = kStepSegmentEnd;
    explicit SynthLayer(int32_t slots) : n(slots) {
        n_live.assign(size_t(nh), n);
        pos.resize(size_t(nh) * size_t(n));
        for (int32_t ih = 0; ih < nh; ++ih) std::iota(pos.begin() + long(ih) * n, pos.begin() + long(ih + 1) * n, 0);
        for (int32_t ih = 0; ih < nh; ++ih) pos_rows.emplace_back(pos.data() + size_t(ih) * size_t(n), size_t(n));
        mask = {0, 0, kTokenSeparator};  // token 2 is a delimiter
        tokens.assign(size_t(n), 0);
        for (int32_t i = 9; i < n; i += 10) tokens[size_t(i)] = 2;  // blocks of 10 after the delimiter
        scores.assign(size_t(nh) * size_t(n), 0.001f);
        band_recent.assign(size_t(nh) * size_t(n), 0.5f);
        band_count.assign(size_t(nh) * size_t(n), 1.0f);
    }
    // A prefill step (`step`: by default the prompt's end) of a mode=evict, split=dd policy:
    // statistics [window scores, band].
    Status run(Policy& p) {
        ModelShape shape{1, nh, nh, 8, 4096, mask};
        HKV_TRY(p.begin(shape, Segment{0, 0, n}, budget));
        view.il = 0;
        view.n_layer = 1;
        view.n_head = nh;
        view.n_head_kv = nh;
        view.head_dim = 8;
        view.step = step;
        view.segment = Segment{0, 0, n};
        view.n_past = n;
        view.n_live = n_live;
        view.pos = pos_rows;
        stats = {StatValues{n, scores, {}}};
        if (p.info().stats.size() == 2) stats.push_back(StatValues{n, band_recent, band_count});
        view.stats = stats;
        view.budget = &budget;
        view.tokens = tokens;
        idx.assign(size_t(nh) * size_t(n), -1);
        n_keep.assign(size_t(nh), -1);
        plan.stride = n;
        plan.keep = idx;
        plan.n_keep = n_keep;
        return p.on_layer(view, plan);
    }
    std::vector<int32_t> kept(int32_t ih) const {
        return {idx.begin() + long(ih) * n, idx.begin() + long(ih) * n + n_keep[size_t(ih)]};
    }
};

TEST(DynSplitPolicy, KeepsWholeBlocksSinksAndWindowWithinBudget) {
    for (const std::string spec : {"dynsplit:budget=64,window=16,sinks=4", "dynsplit:budget=64,window=16,sinks=4,split=punct",
                                   "dynsplit:budget=64,window=16,sinks=4,split=fixed,interval=8",
                                   "dynsplit:budget=64,window=16,sinks=4,block_score=max"}) {
        auto p = policy_create(spec);
        ASSERT_TRUE(p.ok()) << p.status().to_string();
        SynthLayer L(200);
        // two hot spots: slots 52 and 125
        for (int32_t ih = 0; ih < L.nh; ++ih) {
            L.scores[size_t(ih) * 200 + 52] = 1.0f;
            L.scores[size_t(ih) * 200 + 125] = 0.8f;
        }
        ASSERT_TRUE(L.run(**p).ok()) << spec;
        const std::vector<int32_t> k = L.kept(0);
        EXPECT_EQ(k, L.kept(1)) << spec << ": the layer's heads share the blocks";
        EXPECT_LE(int32_t(k.size()), 64) << spec;
        EXPECT_TRUE(std::is_sorted(k.begin(), k.end()) && std::adjacent_find(k.begin(), k.end()) == k.end());
        for (int32_t i = 0; i < 4; ++i) EXPECT_TRUE(std::binary_search(k.begin(), k.end(), i)) << spec;
        for (int32_t i = 184; i < 200; ++i) EXPECT_TRUE(std::binary_search(k.begin(), k.end(), i)) << spec;
        EXPECT_TRUE(std::binary_search(k.begin(), k.end(), 52)) << spec;
        EXPECT_TRUE(std::binary_search(k.begin(), k.end(), 125)) << spec;
        if (spec.find("punct") != std::string::npos) {  // the sentence [50, 60) is kept whole
            for (int32_t i = 50; i < 60; ++i) EXPECT_TRUE(std::binary_search(k.begin(), k.end(), i)) << spec;
        }
    }
}

TEST(DynSplitPolicy, HeadsEachSelectsBlocksPerKvHead) {
    // head 0 attends to slot 52, head 1 to slot 125; room 44 - 16 - 4 = 24 holds one 20-slot block.
    // shared: one selection by the summed scores (head 0's block for both); each: every head its own
    SynthLayer L(200);
    L.scores[52] = 1.0f;
    L.scores[200 + 125] = 0.8f;
    auto shared = policy_create("dynsplit:budget=44,window=16,sinks=4,split=fixed,interval=20");
    auto each = policy_create("dynsplit:budget=44,window=16,sinks=4,split=fixed,interval=20,heads=each");
    ASSERT_TRUE(shared.ok() && each.ok());
    ASSERT_TRUE(L.run(**shared).ok());
    const std::vector<int32_t> k1 = L.kept(1);
    EXPECT_EQ(L.kept(0), k1);
    EXPECT_TRUE(std::binary_search(k1.begin(), k1.end(), 52));
    ASSERT_TRUE(L.run(**each).ok());
    for (int32_t ih = 0; ih < 2; ++ih) {
        const std::vector<int32_t> k = L.kept(ih);
        EXPECT_EQ(k.size(), 40u) << "sinks 4 + one block of 20 + window 16";
        EXPECT_TRUE(std::is_sorted(k.begin(), k.end()));
        EXPECT_EQ(std::binary_search(k.begin(), k.end(), 52), ih == 0) << ih;
        EXPECT_EQ(std::binary_search(k.begin(), k.end(), 125), ih == 1) << ih;
    }
}

TEST(DynSplitPolicy, HeadsAdaptiveGivesTheRoomToTheHeadsThatAttend) {
    // head 0 spreads its attention over slots [32, 64), head 1 looks at slot 125 only: Ada-KV's
    // budgets give head 0 most of the layer's 2 * 24 selected slots, head 1 its floor (0.2 * 24)
    // and slot 125's block; the layer keeps at most 2 * budget slots, each head within its cap
    SynthLayer L(200);
    for (int32_t i = 32; i < 64; ++i) L.scores[size_t(i)] = 1.0f;
    L.scores[200 + 125] = 0.8f;
    auto p = policy_create("dynsplit:budget=44,window=16,sinks=4,split=fixed,interval=4,heads=adaptive");
    ASSERT_TRUE(p.ok()) << p.status().to_string();
    ASSERT_TRUE(L.run(**p).ok());
    const std::vector<int32_t> k0 = L.kept(0), k1 = L.kept(1);
    EXPECT_GE(k0.size(), 20u + 32u) << "sinks, window and head 0's 32 attended slots";
    EXPECT_LE(k1.size(), 20u + 16u);
    EXPECT_LE(k0.size() + k1.size(), 2u * 44u);
    EXPECT_LE(int32_t(k0.size()), L.budget.at(0, 0)) << "within the head's cap";
    for (int32_t i = 32; i < 64; ++i) EXPECT_TRUE(std::binary_search(k0.begin(), k0.end(), i)) << i;
    EXPECT_TRUE(std::binary_search(k1.begin(), k1.end(), 125));
    EXPECT_FALSE(std::binary_search(k1.begin(), k1.end(), 50));
}

TEST(DynSplitPolicy, DdSelectSplitsWhereLaterQueriesStopLookingBack) {
    // delimiters every 10 slots; the band statistics say the future stops looking behind slot 60
    // and 130 only: with target 64 the DD split takes those, so the hot slot 62's block starts at 60
    auto p = policy_create("dynsplit:budget=64,window=16,sinks=4,target=64,min_len=4,max_len=40");
    ASSERT_TRUE(p.ok()) << p.status().to_string();
    SynthLayer L(200);
    for (int32_t ih = 0; ih < L.nh; ++ih) {
        L.band_recent[size_t(ih) * 200 + 60] = 1.0f;
        L.band_recent[size_t(ih) * 200 + 130] = 0.9f;
        L.scores[size_t(ih) * 200 + 62] = 1.0f;
    }
    ASSERT_TRUE(L.run(**p).ok());
    const std::vector<int32_t> k = L.kept(0);
    EXPECT_TRUE(std::binary_search(k.begin(), k.end(), 60));
    EXPECT_FALSE(std::binary_search(k.begin(), k.end(), 59)) << "the block boundary at 60 was not chosen";
}

TEST(DynSplitPolicy, EvictsAtThePromptsEndByDefaultAndAfterEveryChunkWithAtChunk) {
    // a prefill chunk that is not the prompt's last: at=end (default) keeps every slot, as SnapKV
    // and ChunkKV do (its window has not seen the prompt's end); at=chunk evicts to the budget
    for (const std::string spec : {"dynsplit:budget=64,window=16", "dynsplit:budget=64,window=16,at=end",
                                   "dynsplit:budget=64,window=16,at=chunk", "dynsplit:budget=64,window=16,split=fixed",
                                   "dynsplit:budget=64,window=16,split=fixed,at=chunk"}) {
        const bool at_chunk = spec.find("at=chunk") != std::string::npos;
        auto p = policy_create(spec);
        ASSERT_TRUE(p.ok()) << p.status().to_string();
        SynthLayer L(200);
        L.step = kStepChunk;
        ASSERT_TRUE(L.run(**p).ok()) << spec;
        for (int32_t ih = 0; ih < L.nh; ++ih) {
            if (at_chunk) {
                EXPECT_TRUE(L.n_keep[size_t(ih)] > 0 && L.n_keep[size_t(ih)] <= 64) << spec;
            } else {
                EXPECT_EQ(L.n_keep[size_t(ih)], -1) << spec << ": evicted before the prompt's end";
            }
        }
        L.step = kStepSegmentEnd;  // the prompt's end: both evict to the budget
        ASSERT_TRUE(L.run(**p).ok()) << spec;
        for (int32_t ih = 0; ih < L.nh; ++ih) EXPECT_TRUE(L.n_keep[size_t(ih)] > 0 && L.n_keep[size_t(ih)] <= 64) << spec;
    }
}

TEST(DynSplitPolicy, InfoDescribesTheModes) {
    auto e = policy_create("dynsplit:budget=256");
    ASSERT_TRUE(e.ok());
    const PolicyInfo ie = (*e)->info();
    EXPECT_TRUE(ie.calls == kStepPrefill && !ie.select_pages && ie.decode == DecodeKv::kAppends);
    ASSERT_EQ(ie.stats.size(), 2u);  // window scores of the prompt's end, then the band of every chunk
    EXPECT_TRUE(ie.stats[0].kind == StatKind::kAttention && ie.stats[0].steps == kStepSegmentEnd);
    EXPECT_EQ(ie.stats[0].n_query, 32);
    EXPECT_TRUE(ie.stats[0].segment_tail);
    EXPECT_EQ(ie.stats[1].kind, StatKind::kBand);
    EXPECT_EQ(ie.stats[1].band, 32);
    EXPECT_EQ(ie.stats[1].stride, 4);
    EXPECT_EQ(ie.stats[1].steps, kStepPrefill);
    auto c = policy_create("dynsplit:budget=256,at=chunk");  // window scores of every chunk
    ASSERT_TRUE(c.ok());
    EXPECT_EQ((*c)->info().stats[0].steps, kStepPrefill);
    auto f = policy_create("dynsplit:budget=256,split=fixed");  // no band: called at the prompt's end only
    ASSERT_TRUE(f.ok());
    EXPECT_EQ((*f)->info().calls, kStepSegmentEnd);
    auto s = policy_create("dynsplit:budget=256,mode=select,split=fixed");
    ASSERT_TRUE(s.ok());
    const PolicyInfo is = (*s)->info();
    EXPECT_TRUE(is.select_pages && is.stats.empty() && is.calls == 0);
    KvBudget b;
    ASSERT_TRUE((*s)->begin(ModelShape{2, 2, 2, 8, 1024}, Segment{0, 0, 100}, b).ok());
    EXPECT_EQ(b.at(1, 1), -1) << "select mode evicts nothing";
    // dd and punct need the delimiter mask
    EXPECT_FALSE((*e)->begin(ModelShape{2, 2, 2, 8, 1024}, Segment{0, 0, 100}, b).ok());
}

TEST(DynSplitDelimiters, SeparatorsInText) {
    for (const char* t : {".", " end.", ",", ";", ":", "!", "?", "\n", ")", "\"", "'", "]", "}", "。", "，"}) {
        EXPECT_TRUE(text_has_delimiter(t)) << t;
    }
    for (const char* t : {"", " the", "a", "(", "-", "123", "é"}) EXPECT_FALSE(text_has_delimiter(t)) << t;
}

TEST(DynSplitSpec, BadSpecsGiveClearErrors) {
    EXPECT_NE(error_of("dynsplit").find("budget=N"), std::string::npos);
    EXPECT_NE(error_of("dynsplit:budget=64,mode=both").find("not one of: evict, select"), std::string::npos);
    EXPECT_NE(error_of("dynsplit:budget=64,split=regex").find("not one of: dd, fixed, punct"), std::string::npos);
    EXPECT_NE(error_of("dynsplit:budget=64,interval=8").find("split=fixed only"), std::string::npos);
    EXPECT_NE(error_of("dynsplit:budget=64,split=fixed,band=8").find("split=dd only"), std::string::npos);
    EXPECT_NE(error_of("dynsplit:budget=64,dense=1").find("mode=select only"), std::string::npos);
    EXPECT_NE(error_of("dynsplit:budget=256,min_len=20,max_len=10").find("must not exceed"), std::string::npos);
    EXPECT_NE(error_of("dynsplit:budget=64,split=fixed,interval=64").find("do not fit"), std::string::npos);
    EXPECT_NE(error_of("dynsplit:budget=36,window=32").find("sinks=4 + window=32"), std::string::npos);
    EXPECT_NE(error_of("dynsplit:budget=64,lambda=1").find("accept=adaptive only"), std::string::npos);
    EXPECT_NE(error_of("dynsplit:budget=64,mode=select,kernel=5").find("mode=evict only"), std::string::npos);
    EXPECT_NE(error_of("dynsplit:budget=64,mode=select,at=end").find("mode=evict only"), std::string::npos);
    EXPECT_NE(error_of("dynsplit:budget=64,at=layer").find("not one of: chunk, end"), std::string::npos);
    EXPECT_NE(error_of("dynsplit:budget=64,qstride=0").find("out of range"), std::string::npos);
    EXPECT_NE(error_of("dynsplit:budget=64,blocks=3").find("unknown option 'blocks'"), std::string::npos);
    EXPECT_NE(error_of("dynsplit:budget=64,mode=select,heads=each").find("mode=evict only"), std::string::npos);
    EXPECT_NE(error_of("dynsplit:budget=64,heads=each,floor=0.5").find("heads=adaptive only"), std::string::npos);
    EXPECT_NE(error_of("dynsplit:budget=64,heads=all").find("not one of: adaptive, each, shared"), std::string::npos);
    for (const std::string ok : {"dynsplit:budget=32,window=16", "dynsplit:budget=1024,mode=select",
                                 "dynsplit:budget=1024,split=fixed,interval=64", "dynsplit:budget=128,split=punct",
                                 "dynsplit:budget=128,accept=adaptive,lambda=1,norm=band,candidates=all,alpha=0.5",
                                 "dynsplit:budget=128,heads=adaptive,floor=0.5", "dynsplit:budget=128,heads=each"}) {
        auto p = policy_create(ok);
        EXPECT_TRUE(p.ok()) << ok << ": " << p.status().to_string();
    }
}

}  // namespace
}  // namespace hkv
