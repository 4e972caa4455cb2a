// Compression policies on a real model (stories260K from ../shared/models; skipped when absent):
//  - a budget covering the whole context reproduces `full`'s logits bit for bit, for every policy
//    (the runtime computes scores and calls hooks, but must not perturb the forward pass);
//  - with budget 64, a 400-token prompt and 50 greedy decode steps: after every eval no head holds
//    more than its planned budget (+ the decode allowance the policy documents), and the KV bytes
//    are far below full's; Quest evicts nothing but changes what decoding attends to;
//  - Quest selects 16-token pages whatever the store's page: budgets 64, 128 and 256 decode three
//    different ways, and its 16-token selection on 64-slot store pages equals the same selection
//    on 16-slot store pages (the runtime presents the heads in 16-slot pages).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "engine/policy_check.h"
#include "heterokv/engine.h"
#include "heterokv/policy.h"
#include "kv/kv_store.h"
#include "model/model.h"
#include "story_prompt.h"
#include "test_util.h"

namespace hkv {
namespace {

const std::string kModel = test::shared_path("models/stories260K.gguf");
constexpr int32_t kPrompt = 400, kDecode = 50, kCtx = 512;

std::shared_ptr<const Model> load() { return test::load_model(kModel); }
std::vector<int32_t> prompt_tokens(const Model& model) { return test::story_prompt(model, kPrompt); }
using test::argmax;

// The run of one policy: logits of every prompt token, then of each greedy decode step.
struct PolicyRun {
    std::vector<float> logits;          // [(kPrompt + kDecode) , n_vocab]
    std::vector<size_t> kv_bytes;       // after the prompt, then after each step
    std::string error;                  // first bound violation, if any
};

// Runs the policy; after the prompt and after every step checks each head against cap(il, ih)
// (+ extra(step) during decoding), and the per-layer total against layer_cap(il) when given.
PolicyRun run_policy(const std::shared_ptr<const Model>& model, const std::string& spec, const KvBudget* caps,
               int32_t decode_allowance) {
    PolicyRun r;
    auto ctx = Context::create(model, {.n_ctx = kCtx, .n_threads = 2, .policy = spec});
    EXPECT_TRUE(ctx.ok()) << spec << ": " << ctx.status().to_string();
    if (!ctx.ok()) return r;
    Context& c = **ctx;
    const std::vector<int32_t> prompt = prompt_tokens(*model);
    EXPECT_TRUE(c.eval(prompt, &r.logits).ok());
    auto check = [&](int32_t step) {
        r.kv_bytes.push_back(size_t(c.kv_bytes()));
        if (!caps || !r.error.empty()) return;
        const int32_t extra = std::min(step, decode_allowance);
        for (int32_t il = 0; il < caps->n_layer; ++il) {
            int64_t layer = 0, layer_cap = 0;
            for (int32_t ih = 0; ih < caps->n_head_kv; ++ih) {
                const int32_t n = c.kv_head(il, ih)->n_slot;
                layer += n;
                layer_cap += int64_t(caps->at(il, ih)) + extra;
                if (n > caps->at(il, ih) + extra) {
                    r.error = spec + ": layer " + std::to_string(il) + " head " + std::to_string(ih) + " holds " +
                              std::to_string(n) + " slots > " + std::to_string(caps->at(il, ih)) + " + " +
                              std::to_string(extra) + " after step " + std::to_string(step);
                }
            }
            EXPECT_LE(layer, layer_cap);
        }
    };
    check(0);
    for (int32_t step = 1; step <= kDecode; ++step) {
        const int32_t tok = argmax(c.logits());
        EXPECT_TRUE(c.eval({&tok, 1}).ok());
        r.logits.insert(r.logits.end(), c.logits().begin(), c.logits().end());
        check(step);
    }
    return r;
}

KvBudget plan(const Model& model, const std::string& spec) {
    const ModelConfig& mc = model.config();
    auto p = policy_create(spec);
    EXPECT_TRUE(p.ok());
    KvBudget b;
    EXPECT_TRUE((*p)->begin(ModelShape{mc.n_layer, mc.n_head, mc.n_head_kv, mc.head_dim, kCtx}, Segment{0, 0, kPrompt}, b).ok());
    return b;
}

TEST(PoliciesModel, BudgetCoveringTheContextReproducesFullBitForBit) {
    HKV_REQUIRE_SHARED(kModel);
    auto model = load();
    ASSERT_TRUE(model);
    const PolicyRun full = run_policy(model, "full", nullptr, 0);
    ASSERT_EQ(full.logits.size(), size_t(kPrompt + kDecode) * size_t(model->config().n_vocab));
    for (const std::string spec : {"streaming:budget=512", "h2o:budget=512", "snapkv:budget=512", "pyramidkv:budget=512",
                                   "adakv:budget=512", "chunkkv:budget=512", "quest:budget=512",
                                   "ems:budget=512", "ems:budget=512,score=max"}) {
        const PolicyRun r = run_policy(model, spec, nullptr, 0);
        ASSERT_EQ(r.logits.size(), full.logits.size()) << spec;
        EXPECT_EQ(std::memcmp(r.logits.data(), full.logits.data(), full.logits.size() * sizeof(float)), 0)
            << spec << " changed the logits with a budget covering the context";
        // Same pages; H2O's and EMS's Global score keep an accumulated score, a float per slot (EMS's
        // default score=local does not).
        const ModelConfig& mc = model->config();
        ASSERT_EQ(r.kv_bytes.size(), full.kv_bytes.size());
        for (size_t i = 0; i < r.kv_bytes.size(); ++i) {
            const bool has_lanes = std::string(spec).rfind("h2o", 0) == 0 || std::string(spec).find("score=max") != std::string::npos;
            const size_t lanes = has_lanes
                                     ? sizeof(float) * size_t(mc.n_layer) * size_t(mc.n_head_kv) * (size_t(kPrompt) + i)
                                     : 0;
            EXPECT_EQ(r.kv_bytes[i], full.kv_bytes[i] + lanes) << spec << " step " << i;
        }
    }
}

TEST(PoliciesModel, Budget64StaysWithinBudgetAndSavesMemory) {
    HKV_REQUIRE_SHARED(kModel);
    auto model = load();
    ASSERT_TRUE(model);
    const PolicyRun full = run_policy(model, "full", nullptr, 0);
    struct Case {
        std::string spec;
        int32_t decode_allowance;  // slots a head may hold above its budget during decoding
    };
    const std::vector<Case> cases = {
        {"streaming:budget=64", 64},          // decode_slack 64
        {"h2o:budget=64,slack=16", 16},       // evicts every 16 tokens during decoding
        {"snapkv:budget=64", kDecode},        // prefill only: generated tokens are appended
        {"pyramidkv:budget=64,window=16", kDecode},
        {"adakv:budget=64", kDecode},         // per-head caps; the layer total is H * 64
        {"chunkkv:budget=64,window=16", kDecode},
        {"chunkkv:budget=64,window=16,reuse=2", kDecode},
        {"ems:budget=64", 32},                // evict-then-merge when a head exceeds budget + window
        {"ems:budget=64,window=16,adaptive=1", 16},
    };
    for (const Case& c : cases) {
        const KvBudget caps = plan(*model, c.spec);
        const PolicyRun r = run_policy(model, c.spec, &caps, c.decode_allowance);
        EXPECT_TRUE(r.error.empty()) << r.error;
        ASSERT_EQ(r.kv_bytes.size(), size_t(kDecode + 1));
        for (size_t i = 0; i < r.kv_bytes.size(); ++i) {
            EXPECT_LT(double(r.kv_bytes[i]), 0.4 * double(full.kv_bytes[i])) << c.spec << " step " << i;
        }
        for (float v : r.logits) ASSERT_TRUE(std::isfinite(v)) << c.spec;
        if (c.spec.rfind("adakv", 0) == 0) {
            // Ada-KV's prompt compression keeps exactly H * 64 slots per layer (window included).
            auto ctx = Context::create(model, {.n_ctx = kCtx, .n_threads = 2, .policy = c.spec});
            ASSERT_TRUE(ctx.ok());
            ASSERT_TRUE((*ctx)->eval(prompt_tokens(*model)).ok());
            for (int32_t il = 0; il < caps.n_layer; ++il) {
                int64_t layer = 0;
                for (int32_t ih = 0; ih < caps.n_head_kv; ++ih) layer += (*ctx)->kv_head(il, ih)->n_slot;
                EXPECT_EQ(layer, int64_t(caps.n_head_kv) * 64) << "layer " << il;
            }
        }
    }
    // Quest keeps everything (same bytes as full) but attends to 4 of 25 pages of 16 in layers >= 2.
    const PolicyRun quest = run_policy(model, "quest:budget=64", nullptr, 0);
    EXPECT_EQ(quest.kv_bytes, full.kv_bytes);
    const size_t nv = size_t(model->config().n_vocab);
    const size_t prompt_floats = size_t(kPrompt) * nv;
    EXPECT_EQ(std::memcmp(quest.logits.data(), full.logits.data(), prompt_floats * sizeof(float)), 0)
        << "quest changed prefill";
    EXPECT_NE(std::memcmp(quest.logits.data() + prompt_floats, full.logits.data() + prompt_floats,
                          (quest.logits.size() - prompt_floats) * sizeof(float)),
              0)
        << "quest's page selection did not change decoding";
}

// The decode logits of a run (after the prompt's), for comparing runs.
std::vector<float> decode_logits(const PolicyRun& r, const Model& model) {
    const size_t skip = size_t(kPrompt) * size_t(model.config().n_vocab);
    return std::vector<float>(r.logits.begin() + long(skip), r.logits.end());
}

TEST(PoliciesModel, QuestSelectionPageIsNotTheStoragePage) {
    auto model = load();
    if (!model) GTEST_SKIP() << "not present: " << kModel;
    // Budgets 64, 128, 256 attend to 4, 8 and 16 pages of 16 tokens: three different decodes (with
    // the store's 64-slot pages as the selection unit, 64 and 128 were both max(3, b/64) = 3 pages).
    const auto q64 = decode_logits(run_policy(model, "quest:budget=64", nullptr, 0), *model);
    const auto q128 = decode_logits(run_policy(model, "quest:budget=128", nullptr, 0), *model);
    const auto q256 = decode_logits(run_policy(model, "quest:budget=256", nullptr, 0), *model);
    ASSERT_FALSE(q64.empty());
    EXPECT_NE(q64, q128);
    EXPECT_NE(q128, q256);
    EXPECT_NE(q64, q256);
    // The same 16-token selection on 16-slot store pages: the same slots attended, the same logits
    // up to the attention's summation order.
    PolicyRun small;
    {
        auto ctx = Context::create(model, {.n_ctx = kCtx, .n_threads = 2, .kv_page_size = 16, .policy = "quest:budget=64"});
        ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
        const std::vector<int32_t> prompt = prompt_tokens(*model);
        ASSERT_TRUE((*ctx)->eval(prompt, &small.logits).ok());
        for (int32_t step = 1; step <= kDecode; ++step) {
            const int32_t tok = argmax((*ctx)->logits());
            ASSERT_TRUE((*ctx)->eval({&tok, 1}).ok());
            small.logits.insert(small.logits.end(), (*ctx)->logits().begin(), (*ctx)->logits().end());
        }
    }
    const auto s64 = decode_logits(small, *model);
    ASSERT_EQ(s64.size(), q64.size());
    float worst = 0.0f;
    for (size_t i = 0; i < s64.size(); ++i) worst = std::max(worst, std::abs(s64[i] - q64[i]));
    EXPECT_LT(worst, 1e-3f);
    // A selection page that does not divide the store's page is refused before any work.
    auto bad = Context::create(model, {.n_ctx = kCtx, .kv_page_size = 24, .policy = "quest:budget=64"});
    EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
    // ... and by the check tools run on every spec before their first window
    EXPECT_EQ(policy_validate("quest:budget=64", *model, kCtx, 24).code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(policy_validate("quest:budget=64", *model, kCtx, 64).ok());
    EXPECT_TRUE(policy_validate("quest:budget=64,page=8", *model, kCtx, 24).ok());
}

}  // namespace
}  // namespace hkv
