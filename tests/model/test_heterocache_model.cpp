// HeteroCache on a real model (stories260K from ../shared/models; skipped when absent), with a
// structural taxonomy (policy/heterocache.h) written for its 5 x 4 heads:
//  - ratio=1, uniform weights (base = L, every head keeps its prompt) and a refresh every step:
//    logits identical to `full` bit for bit (the refresh rewrites the same rows);
//  - tau=0 never refreshes, tau=1.01 refreshes at every check;
//  - a refresh triggered at step t is visible in the satellite's slots at step t + 1, not before;
//  - the cold tier in files (--kv-cold-dir) gives the same greedy tokens as in RAM;
//  - spill=chunk: a one-chunk prompt gives spill=end's logits bit for bit; a chunked prompt keeps
//    anchors/satellites at most cap + chunk slots, refreshes from the cold tier, and gives the
//    same results with the cold tier in files as in RAM.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "heterokv/engine.h"
#include "heterokv/policy.h"
#include "kv/kv_store.h"
#include "model/model.h"
#include "policy/heterocache.h"
#include "test_util.h"

namespace hkv {
namespace {

const std::string kModel = test::shared_path("models/stories260K.gguf");
constexpr int32_t kPrompt = 300, kDecode = 24, kCtx = 512;

std::vector<int32_t> prompt_tokens(const Model& model) {
    const std::string text =
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her "
        "friend Tom. One day, they found a big red ball under a tree. Tom said, \"Let's play catch!\" Lily "
        "threw the ball high in the sky and laughed. ";
    std::vector<int32_t> toks = model.tokenizer().encode(text, true);
    const std::vector<int32_t> more = model.tokenizer().encode(text, false);
    while (toks.size() < size_t(kPrompt)) toks.insert(toks.end(), more.begin(), more.end());
    toks.resize(size_t(kPrompt));
    return toks;
}

struct HcRun {
    std::vector<float> logits;  // decode steps' logits, [kDecode, n_vocab]
    std::vector<int32_t> tokens;
    std::string report;
};

HcRun run(const std::shared_ptr<const Model>& m, const std::string& spec, const std::string& cold_dir = "",
          int32_t n_batch = 128) {
    HcRun r;
    ContextParams cp;
    cp.n_ctx = kCtx;
    cp.n_threads = 1;
    cp.n_batch = n_batch;  // 128: a chunked prompt, compression at its last chunk
    cp.policy = spec;
    cp.kv_cold_dir = cold_dir;
    auto ctx = Context::create(m, cp);
    EXPECT_TRUE(ctx.ok()) << ctx.status().to_string();
    if (!ctx.ok()) return r;
    Context& cx = **ctx;
    const std::vector<int32_t> p = prompt_tokens(*m);
    Status st = cx.eval(p);
    EXPECT_TRUE(st.ok()) << spec << ": " << st.to_string();
    for (int32_t i = 0; i < kDecode && st.ok(); ++i) {
        const std::span<const float> l = cx.logits();
        const int32_t next = int32_t(std::max_element(l.begin(), l.end()) - l.begin());
        r.tokens.push_back(next);
        st = cx.eval({&next, 1});
        EXPECT_TRUE(st.ok()) << spec << ": " << st.to_string();
        r.logits.insert(r.logits.end(), cx.logits().begin(), cx.logits().end());
    }
    r.report = cx.policy_report();
    return r;
}

long long count_after(const std::string& report, const std::string& word) {  // "<n> <word>"
    const size_t at = report.find(" " + word);
    if (at == std::string::npos) return -1;
    size_t b = report.rfind(' ', at - 1);
    return std::atoll(report.substr(b + 1, at - b - 1).c_str());
}

class HeteroCacheModel : public ::testing::Test {
protected:
    void SetUp() override {
        HKV_REQUIRE_SHARED(kModel);
        auto m = model_load(kModel);
        ASSERT_TRUE(m.ok()) << m.status().to_string();
        model_ = *m;
        const ModelConfig& c = model_->config();
        tax_ = dir_.file("tax.json");
        ASSERT_TRUE(taxonomy_save(taxonomy_structural(c.n_layer, c.n_head_kv), tax_).ok());
    }
    std::shared_ptr<const Model> model_;
    test::TempDir dir_;
    std::string tax_;
};

TEST_F(HeteroCacheModel, FullRatioEqualsFull) {
    const HcRun full = run(model_, "full");
    const HcRun hc = run(model_, "heterocache:taxonomy=" + tax_ + ",ratio=1,weights=uniform,window=1,tau=1.01");
    ASSERT_EQ(full.logits.size(), hc.logits.size());
    EXPECT_EQ(std::memcmp(full.logits.data(), hc.logits.data(), full.logits.size() * sizeof(float)), 0);
    EXPECT_GT(count_after(hc.report, "refreshes"), 0) << hc.report;
}

TEST_F(HeteroCacheModel, TauControlsRefreshes) {
    const HcRun never = run(model_, "heterocache:taxonomy=" + tax_ + ",tau=0");
    const HcRun always = run(model_, "heterocache:taxonomy=" + tax_ + ",tau=1.01");
    const long long checks = count_after(always.report, "checks");
    EXPECT_EQ(count_after(never.report, "refreshes"), 0) << never.report;
    EXPECT_GT(checks, 0) << always.report;
    EXPECT_EQ(count_after(always.report, "refreshes"), checks) << always.report;
    EXPECT_EQ(count_after(never.report, "checks"), checks);
    const HcRun flag = run(model_, "heterocache:taxonomy=" + tax_ + ",refresh=always");
    EXPECT_EQ(flag.tokens, always.tokens);
}

TEST_F(HeteroCacheModel, RefreshVisibleAtNextStep) {
    ContextParams cp;
    cp.n_ctx = kCtx;
    cp.n_threads = 1;
    cp.policy = "heterocache:taxonomy=" + tax_ + ",window=1,tau=1.01";
    auto ctx = Context::create(model_, cp);
    ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
    Context& cx = **ctx;
    ASSERT_TRUE(cx.eval(prompt_tokens(*model_)).ok());
    // layer 0 head 1 is a satellite; its prefill segment holds cap slots
    auto slots = [&] {
        const KvHeadView h = *cx.kv_head(0, 1);
        return std::vector<int32_t>(h.pos.begin(), h.pos.end());
    };
    const std::vector<int32_t> p0 = slots();
    const size_t cap = p0.size();
    ASSERT_LT(cap, size_t(kPrompt));
    int32_t tok = 1;
    ASSERT_TRUE(cx.eval({&tok, 1}).ok());  // step 1: the monitor triggers after attention
    std::vector<int32_t> p1 = slots();
    ASSERT_EQ(p1.size(), cap + 1);
    EXPECT_TRUE(std::equal(p0.begin(), p0.end(), p1.begin())) << "refresh applied before the next step";
    ASSERT_TRUE(cx.eval({&tok, 1}).ok());  // step 2: applied before attention
    std::vector<int32_t> p2 = slots();
    ASSERT_EQ(p2.size(), cap + 2);
    EXPECT_FALSE(std::equal(p0.begin(), p0.end(), p2.begin())) << "the satellite's hot set never changed";
    EXPECT_TRUE(std::is_sorted(p2.begin(), p2.end()));
    EXPECT_EQ(p2[cap], kPrompt);  // decode tokens after the segment are untouched
    EXPECT_EQ(p2[cap + 1], kPrompt + 1);
}

// The default observation window (obs=32, recent=obs): every anchor and satellite keeps the
// prompt's last 32 positions at the cut, and a satellite still holds them after refreshes from the
// cold tier (select=topk keeps the same window); with obs=1 (the reference) recent defaults to 0.
TEST_F(HeteroCacheModel, KeepsTheObservationWindow) {
    const ModelConfig& c = model_->config();
    ContextParams cp;
    cp.n_ctx = kCtx, cp.n_threads = 1, cp.n_batch = 128;
    cp.policy = "heterocache:taxonomy=" + tax_ + ",window=1,tau=1.01";
    auto ctx = Context::create(model_, cp);
    ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
    Context& cx = **ctx;
    ASSERT_TRUE(cx.eval(prompt_tokens(*model_)).ok());
    auto holds_window = [&](int32_t il, int32_t ih) {
        const KvHeadView h = *cx.kv_head(il, ih);
        int32_t n = 0;
        for (int32_t p : h.pos) n += p >= kPrompt - 32 && p < kPrompt;
        return n;
    };
    for (int32_t il = 0; il < c.n_layer; ++il) {
        for (int32_t ih = 1; ih < c.n_head_kv; ++ih) {  // head 0: the pivot (full)
            ASSERT_LT(cx.kv_head(il, ih)->pos.size(), size_t(kPrompt)) << il << " " << ih;
            EXPECT_EQ(holds_window(il, ih), 32) << "layer " << il << " head " << ih;
        }
    }
    int32_t tok = 1;
    for (int32_t i = 0; i < 3; ++i) ASSERT_TRUE(cx.eval({&tok, 1}).ok());
    EXPECT_GT(count_after(cx.policy_report(), "refreshes"), 0) << cx.policy_report();
    for (int32_t il = 0; il < c.n_layer; ++il) EXPECT_EQ(holds_window(il, 1), 32) << "satellite of layer " << il;
}

// weights=adaptive with an observation window: per layer the anchors and satellites keep, between
// them, what uniform caps keep, split unevenly by score; refreshes at every step keep each
// satellite at the size it was given (a refresh writes that many rows).
TEST_F(HeteroCacheModel, AdaptiveSharesTheLayersSlots) {
    const ModelConfig& c = model_->config();
    auto counts = [&](const std::string& spec, std::vector<int32_t>* per_head) {
        ContextParams cp;
        cp.n_ctx = kCtx, cp.n_threads = 1, cp.n_batch = 128, cp.policy = spec;
        auto ctx = Context::create(model_, cp);
        EXPECT_TRUE(ctx.ok()) << ctx.status().to_string();
        if (!ctx.ok()) return;
        Context& cx = **ctx;
        ASSERT_TRUE(cx.eval(prompt_tokens(*model_)).ok());
        for (int32_t il = 0; il < c.n_layer; ++il) {
            for (int32_t ih = 0; ih < c.n_head_kv; ++ih) per_head->push_back(cx.kv_stats().n_slot[size_t(il * c.n_head_kv + ih)]);
        }
        int32_t tok = 1;
        for (int32_t i = 0; i < 4; ++i) ASSERT_TRUE(cx.eval({&tok, 1}).ok()) << spec;
        EXPECT_GT(count_after(cx.policy_report(), "refreshes"), 0) << cx.policy_report();
        for (int32_t il = 0; il < c.n_layer; ++il) {
            for (int32_t ih = 0; ih < c.n_head_kv; ++ih) {
                EXPECT_EQ(cx.kv_stats().n_slot[size_t(il * c.n_head_kv + ih)], (*per_head)[size_t(il * c.n_head_kv + ih)] + 4) << il << " " << ih;
            }
        }
    };
    std::vector<int32_t> uni, ada;
    counts("heterocache:taxonomy=" + tax_ + ",weights=uniform,obs=16,window=1,tau=1.01", &uni);
    counts("heterocache:taxonomy=" + tax_ + ",weights=adaptive,obs=16,window=1,tau=1.01", &ada);
    ASSERT_EQ(uni.size(), ada.size());
    bool uneven = false;
    for (int32_t il = 0; il < c.n_layer; ++il) {
        int32_t su = 0, sa = 0;
        for (int32_t ih = 1; ih < c.n_head_kv; ++ih) {  // head 0: the pivot, full in both
            su += uni[size_t(il * c.n_head_kv + ih)], sa += ada[size_t(il * c.n_head_kv + ih)];
            uneven |= ada[size_t(il * c.n_head_kv + ih)] != uni[size_t(il * c.n_head_kv + ih)];
        }
        EXPECT_EQ(sa, su) << "layer " << il;
        EXPECT_EQ(ada[size_t(il * c.n_head_kv)], kPrompt);
    }
    EXPECT_TRUE(uneven);
}

// layers=pyramid: after the prompt every compressed head holds its scheduled cap (weights=uniform),
// or its layer's scheduled total between the layer's heads (weights=adaptive); the schedule gives
// the lower layers more and keeps the flat total.
TEST_F(HeteroCacheModel, PyramidLayersKeepTheSchedule) {
    const ModelConfig& c = model_->config();
    auto slots = [&](const std::string& spec) {
        std::vector<int32_t> n;
        ContextParams cp;
        cp.n_ctx = kCtx, cp.n_threads = 1, cp.n_batch = 128, cp.policy = spec;
        auto ctx = Context::create(model_, cp);
        EXPECT_TRUE(ctx.ok()) << ctx.status().to_string();
        if (!ctx.ok()) return n;
        EXPECT_TRUE((*ctx)->eval(prompt_tokens(*model_)).ok()) << spec;
        n = (*ctx)->kv_stats().n_slot;
        return n;
    };
    Taxonomy uni = taxonomy_structural(c.n_layer, c.n_head_kv);
    for (double& r : uni.ratio) r = r > 0 ? 1.0 : r;
    auto hb = heterocache_budget(uni, 0.5, kPrompt);
    ASSERT_TRUE(hb.ok());
    const std::vector<int64_t> want = hc_pyramid_caps(uni, hb->cap, kPrompt, 20.0);
    const std::string base = "heterocache:taxonomy=" + tax_ + ",ratio=0.5,obs=16,layers=pyramid";
    const std::vector<int32_t> u = slots(base + ",weights=uniform"), a = slots(base + ",weights=adaptive");
    const std::vector<int32_t> f = slots("heterocache:taxonomy=" + tax_ + ",ratio=0.5,obs=16,weights=uniform");
    ASSERT_EQ(u.size(), want.size());
    ASSERT_EQ(a.size(), want.size());
    ASSERT_EQ(f.size(), want.size());
    int64_t su = 0, sf = 0;
    for (int32_t il = 0; il < c.n_layer; ++il) {
        int64_t layer_want = 0, layer_ada = 0;
        for (int32_t ih = 1; ih < c.n_head_kv; ++ih) {  // head 0: the pivot, full
            const size_t i = size_t(il * c.n_head_kv + ih);
            EXPECT_EQ(u[i], want[i]) << "layer " << il << " head " << ih;
            layer_want += want[i], layer_ada += a[i], su += u[i], sf += f[i];
        }
        EXPECT_EQ(layer_ada, layer_want) << "layer " << il;
        if (il > 0) {
            EXPECT_LE(want[size_t(il * c.n_head_kv + 1)], want[size_t((il - 1) * c.n_head_kv + 1)]);
        }
        EXPECT_EQ(u[size_t(il * c.n_head_kv)], kPrompt);
    }
    EXPECT_EQ(su, sf);
    EXPECT_GT(want[1], want[size_t((c.n_layer - 1) * c.n_head_kv + 1)]);
}

TEST_F(HeteroCacheModel, ColdDirMatchesRam) {
    const std::string spec = "heterocache:taxonomy=" + tax_ + ",window=2,tau=1.01";
    const HcRun ram = run(model_, spec);
    test::TempDir cold;
    const HcRun file = run(model_, spec, cold.path.string());
    EXPECT_EQ(ram.tokens, file.tokens);
    EXPECT_EQ(std::memcmp(ram.logits.data(), file.logits.data(), ram.logits.size() * sizeof(float)), 0);
    EXPECT_NE(file.report.find("cold tier file"), std::string::npos) << file.report;
    EXPECT_GT(count_after(file.report, "refreshes"), 0);
    // a folder that cannot hold the files: a clear error from the first eval, not a crash
    ContextParams cp;
    cp.n_ctx = kCtx;
    cp.policy = spec;
    cp.kv_cold_dir = "/nonexistent/hkv";
    auto ctx = Context::create(model_, cp);
    ASSERT_TRUE(ctx.ok());
    const Status st = (*ctx)->eval(prompt_tokens(*model_));
    EXPECT_EQ(st.code(), StatusCode::kIoError) << st.to_string();
}

TEST_F(HeteroCacheModel, ModelErrorsComeFromContextCreate) {
    test::TempDir dir;
    const std::string other = dir.file("other.json");
    ASSERT_TRUE(taxonomy_save(taxonomy_structural(3, 8), other).ok());
    ContextParams cp;
    cp.n_ctx = kCtx;
    for (const std::string& spec : {"heterocache:taxonomy=" + other, "heterocache:taxonomy=" + tax_ + ",ratio=0.1"}) {
        cp.policy = spec;
        auto ctx = Context::create(model_, cp);
        ASSERT_FALSE(ctx.ok()) << spec;
        EXPECT_EQ(ctx.status().code(), StatusCode::kInvalidArgument) << ctx.status().to_string();
    }
}

TEST_F(HeteroCacheModel, SpillChunk) {
    // the taxonomy's fixed caps (weights=adaptive would let one head take its layer's sum)
    const std::string spec = "heterocache:taxonomy=" + tax_ + ",window=2,tau=1.01,weights=taxonomy";
    const HcRun end1 = run(model_, spec, "", kPrompt);
    const HcRun chunk1 = run(model_, spec + ",spill=chunk", "", kPrompt);
    ASSERT_EQ(end1.logits.size(), chunk1.logits.size());
    EXPECT_EQ(std::memcmp(end1.logits.data(), chunk1.logits.data(), end1.logits.size() * sizeof(float)), 0);
    // chunks of 128: the compressed heads never hold the whole prompt
    auto p = policy_create(spec);
    ASSERT_TRUE(p.ok());
    KvBudget b;
    const ModelConfig& c = model_->config();
    ASSERT_TRUE((*p)->begin(ModelShape{c.n_layer, c.n_head, c.n_head_kv, c.head_dim, kCtx}, Segment{0, 0, kPrompt}, b).ok());
    const int32_t max_cap = *std::max_element(b.n_keep.begin(), b.n_keep.end());
    ASSERT_LT(max_cap + 128, kPrompt);
    const HcRun ram = run(model_, spec + ",spill=chunk");
    ASSERT_EQ(ram.tokens.size(), size_t(kDecode));
    EXPECT_GT(count_after(ram.report, "refreshes"), 0) << ram.report;
    const size_t at = ram.report.find("peak anchor/satellite slots ");
    ASSERT_NE(at, std::string::npos) << ram.report;
    const long long peak = std::atoll(ram.report.c_str() + at + std::strlen("peak anchor/satellite slots "));
    EXPECT_GT(peak, max_cap);
    EXPECT_LE(peak, max_cap + 128);
    EXPECT_NE(run(model_, spec, "", 128).report.find("peak anchor/satellite slots 300"), std::string::npos);
    test::TempDir cold;
    const HcRun file = run(model_, spec + ",spill=chunk", cold.path.string());
    EXPECT_EQ(ram.tokens, file.tokens);
    EXPECT_EQ(std::memcmp(ram.logits.data(), file.logits.data(), ram.logits.size() * sizeof(float)), 0);
    EXPECT_NE(file.report.find("cold tier file"), std::string::npos) << file.report;
}

}  // namespace
}  // namespace hkv
