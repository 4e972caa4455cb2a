// kv_bytes_bound (heterokv/engine.h) on stories260K (../shared; skipped when absent), for every
// registered policy (the test fails when a policy is registered without a spec here):
//  - a context capped at the bound (ContextParams::kv_max_bytes) never hits the cap while it
//    prefills n tokens in one eval() and generates g tokens: prompts shorter and longer than the
//    budget, one chunk and many (-b 48), generation longer than the prompt;
//  - the bytes in use never exceed the bound (after each chunk and each step);
//  - the bound of `full` is the full cache exactly, and a compressing policy's is below it when
//    the prompt is long and generation short.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "heterokv/engine.h"
#include "heterokv/policy.h"
#include "story_prompt.h"
#include "test_util.h"

namespace hkv {
namespace {

const std::string kModel = test::shared_path("models/stories260K.gguf");
constexpr int32_t kCtx = 512;

// One spec (or more) per registered policy, budget 64 where a budget applies.
std::map<std::string, std::vector<std::string>> specs() {
    const std::string tax = test::data_path("heterocache/stories260K_topk0.2.json");
    return {
        {"full", {"full"}},
        {"streaming", {"streaming:budget=64"}},
        {"h2o", {"h2o:budget=64", "h2o:budget=64,slack=0"}},
        {"snapkv", {"snapkv:budget=64"}},
        {"pyramidkv", {"pyramidkv:budget=64"}},
        {"adakv", {"adakv:budget=64"}},
        {"chunkkv", {"chunkkv:budget=64"}},
        {"quest", {"quest:budget=64"}},
        {"ems", {"ems:budget=64", "ems:budget=64,decode=0", "ems:budget=64,adaptive=1"}},
        {"dynsplit", {"dynsplit:budget=64", "dynsplit:budget=64,mode=select"}},
        {"heterocache", {"heterocache:taxonomy=" + tax, "heterocache:taxonomy=" + tax + ",spill=chunk"}},
        {"knorm", {"knorm:budget=64"}},
        {"tova", {"tova:budget=64", "tova:budget=64,slack=0"}},
    };
}

struct Case {
    int32_t n_prompt, n_gen, n_batch;
};

// Runs spec capped at its bound; returns the most bytes seen in use (-1 after a failure).
int64_t run_capped(const std::shared_ptr<const Model>& model, const std::string& spec, const Case& c,
                   int64_t* bound_out) {
    ContextParams cp;
    cp.n_ctx = kCtx;
    cp.n_threads = 2;
    cp.n_batch = c.n_batch;
    cp.policy = spec;
    auto bound = kv_bytes_bound(*model, cp, c.n_prompt, c.n_gen);
    EXPECT_TRUE(bound.ok()) << spec << ": " << bound.status().to_string();
    if (!bound.ok()) return -1;
    *bound_out = *bound;
    cp.kv_max_bytes = *bound;
    auto ctx = Context::create(model, cp);
    EXPECT_TRUE(ctx.ok()) << spec << ": " << ctx.status().to_string();
    if (!ctx.ok()) return -1;
    Context& cx = **ctx;
    int64_t most = 0;
    const std::vector<int32_t> prompt = test::story_prompt(*model, c.n_prompt);
    Status st = cx.eval(prompt, nullptr, [&](int64_t, int64_t) { most = std::max(most, cx.kv_bytes()); });
    EXPECT_TRUE(st.ok()) << spec << " prompt " << c.n_prompt << ": " << st.to_string();
    if (!st.ok()) return -1;
    for (int32_t i = 0; i < c.n_gen; ++i) {
        const int32_t next = test::argmax(cx.logits());
        st = cx.eval({&next, 1});
        EXPECT_TRUE(st.ok()) << spec << " step " << i << ": " << st.to_string();
        if (!st.ok()) return -1;
        most = std::max(most, cx.kv_bytes());
    }
    return most;
}

TEST(KvBound, EveryPolicyNeverHitsItsCapNorExceedsIt) {
    HKV_REQUIRE_SHARED(kModel);
    auto model = test::load_model(kModel);
    ASSERT_TRUE(model);
    const auto table = specs();
    std::stringstream names(policy_names());
    for (std::string name; std::getline(names, name, ',');) {
        name.erase(0, name.find_first_not_of(' '));
        EXPECT_TRUE(table.count(name)) << "policy " << name << " has no spec in this test";
    }
    const Case cases[] = {{30, 450, 256}, {400, 100, 256}, {300, 150, 48}, {100, 0, 48}};
    for (const auto& [name, list] : table) {
        for (const std::string& spec : list) {
            for (const Case& c : cases) {
                int64_t bound = 0;
                const int64_t most = run_capped(model, spec, c, &bound);
                EXPECT_GE(most, 0) << spec;
                EXPECT_LE(most, bound) << spec << " n=" << c.n_prompt << " g=" << c.n_gen;
            }
        }
    }
}

TEST(KvBound, FullIsTheWholeCacheAndCompressionIsBelowIt) {
    HKV_REQUIRE_SHARED(kModel);
    auto model = test::load_model(kModel);
    ASSERT_TRUE(model);
    const ModelInfo mi = model_info(*model);
    ContextParams cp;
    cp.n_ctx = kCtx;
    // full, 400 + 100 tokens: ceil(500 / 64) = 8 pages per head; a page is K + V (f16) + positions
    // (16-bit: n_ctx <= 65536)
    const int64_t page = 64 * (2 * int64_t(mi.head_dim) * 2 + 2);
    EXPECT_EQ(*kv_bytes_bound(*model, cp, 400, 100), int64_t(mi.n_layer) * mi.n_head_kv * 8 * page);
    int64_t bound = 0;
    // reached but for the lanes' page rounding: each head holds 500 positions, not 512
    const int64_t most = run_capped(model, "full", {400, 100, 256}, &bound);
    EXPECT_EQ(bound - most, int64_t(mi.n_layer) * mi.n_head_kv * 12 * 2);
    // snapkv keeps 64 of 400 prompt slots, + 20 generated: 2 pages per head
    cp.policy = "snapkv:budget=64";
    EXPECT_EQ(*kv_bytes_bound(*model, cp, 400, 20), int64_t(mi.n_layer) * mi.n_head_kv * 7 * page);  // prompt peak
    cp.n_batch = 64;  // chunked: a policy declares no eviction within a segment, the peak stays the prompt
    cp.policy = "dynsplit:budget=64";
    EXPECT_EQ(*kv_bytes_bound(*model, cp, 400, 20), int64_t(mi.n_layer) * mi.n_head_kv * 7 * page);
    cp.policy = "streaming:budget=64";  // back to 64 whenever 64 + 64 is exceeded
    cp.n_batch = 256;
    EXPECT_EQ(*kv_bytes_bound(*model, cp, 100, 400), int64_t(mi.n_layer) * mi.n_head_kv * 3 * page);
    // errors
    EXPECT_EQ(kv_bytes_bound(*model, cp, 400, 200).status().code(), StatusCode::kOutOfRange);
    EXPECT_EQ(kv_bytes_bound(*model, cp, 0, 10).status().code(), StatusCode::kInvalidArgument);
    cp.policy = "snapkv:budget=0";
    EXPECT_FALSE(kv_bytes_bound(*model, cp, 10, 10).ok());
}

}  // namespace
}  // namespace hkv
