// Quantized KV caches (q8_0, q4_0, hq4; issue 19) on a real model, retrieval-1.4M (head_dim 32; from
// ../shared/models, skipped when absent):
//  - q8_0 full cache against f16: mean KLD of every prompt position's next-token distribution below
//    0.005; q4_0 bounded, hq4 (the rotated format) below q4_0 at the same bytes; the bytes really
//    shrink (pages hold the blocks);
//  - every policy (baselines, EMS evict and merge, DynSplit, HeteroCache with its cold tier) runs
//    prompt + greedy decode on f16, q8_0, q4_0, hq4 and mixed K/V caches: finite logits, the same slots as
//    the f16 run keeps (budgets do not depend on the type), and the bytes of f16 x the type's ratio;
//  - a head size that is not whole blocks (stories260K, head_dim 8) is an error naming it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "heterokv/engine.h"
#include "story_prompt.h"
#include "test_util.h"

namespace hkv {
namespace {

const std::string kModel = test::shared_path("models/retrieval-1.4M.gguf");
const std::string kTax = test::data_path("heterocache/retrieval-1.4M_topk0.2.json");
constexpr int32_t kPrompt = 300, kDecode = 12, kCtx = 512;

struct CacheRun {
    std::vector<float> prompt_logits;  // [kPrompt, n_vocab]
    std::vector<int32_t> tokens;       // greedy decode
    int64_t kv_bytes = 0;              // after the prompt
    int64_t slots = 0;                 // after the prompt
    std::vector<int32_t> n_slot;       // after the prompt, per (layer, KV head)
    bool finite = true;
};

CacheRun run_cache(const std::shared_ptr<const Model>& model, const std::string& spec, KvType k, KvType v) {
    CacheRun r;
    ContextParams cp;
    cp.n_ctx = kCtx, cp.n_threads = 2, cp.n_batch = 128, cp.policy = spec, cp.type_k = k, cp.type_v = v;
    auto ctx = Context::create(model, cp);
    EXPECT_TRUE(ctx.ok()) << spec << ": " << ctx.status().to_string();
    if (!ctx.ok()) return r;
    Context& c = **ctx;
    const std::vector<int32_t> prompt = test::story_prompt(*model, kPrompt);
    Status st = c.eval(prompt, &r.prompt_logits);
    EXPECT_TRUE(st.ok()) << spec << ": " << st.to_string();
    r.kv_bytes = c.kv_bytes();
    r.slots = c.kv_stats().slots_total;
    r.n_slot = c.kv_stats().n_slot;
    for (int32_t i = 0; i < kDecode && st.ok(); ++i) {
        const int32_t t = test::argmax(c.logits());
        r.tokens.push_back(t);
        for (float x : c.logits()) r.finite = r.finite && std::isfinite(x);
        st = c.eval({&t, 1});
        EXPECT_TRUE(st.ok()) << spec << " step " << i << ": " << st.to_string();
    }
    return r;
}

// Mean KL(p_a || p_b) over the prompt positions.
double mean_kld(const CacheRun& a, const CacheRun& b, size_t nv) {
    return test::mean_kld(a.prompt_logits, b.prompt_logits, nv);
}

TEST(KvQuantModel, FullCacheAgainstF16) {
    HKV_REQUIRE_SHARED(kModel);
    auto model = test::load_model(kModel);
    ASSERT_TRUE(model);
    const size_t nv = size_t(model->config().n_vocab);
    const CacheRun f16 = run_cache(model, "full", KvType::kF16, KvType::kF16);
    const CacheRun q8 = run_cache(model, "full", KvType::kQ8_0, KvType::kQ8_0);
    const CacheRun q4 = run_cache(model, "full", KvType::kQ4_0, KvType::kQ4_0);
    const CacheRun h4 = run_cache(model, "full", KvType::kHQ4, KvType::kHQ4);
    const double kld8 = mean_kld(f16, q8, nv), kld4 = mean_kld(f16, q4, nv), kldh = mean_kld(f16, h4, nv);
    std::printf("KLD against f16: q8_0 %.5f  q4_0 %.5f  hq4 %.5f\n", kld8, kld4, kldh);
    EXPECT_LT(kld8, 0.005);
    EXPECT_GT(kld8, 0.0);  // the cache really is quantized
    EXPECT_LT(kld4, 0.1);
    EXPECT_GT(kld4, kld8);
    EXPECT_GT(kldh, kld8);
    EXPECT_LT(kldh, kld4);  // the rotated format: less error at the same bytes
    // 300 slots in 5 pages of [64, 32] values a head: f16 64 bytes a row, q8_0 34, q4_0 18; + 2 bytes
    // of position a slot (n_ctx 512: a 16-bit lane).
    const int64_t heads = int64_t(model->config().n_layer) * model->config().n_head_kv;
    EXPECT_EQ(f16.kv_bytes, heads * (320 * 2 * 64 + kPrompt * 2));
    EXPECT_EQ(q8.kv_bytes, heads * (320 * 2 * 34 + kPrompt * 2));
    EXPECT_EQ(q4.kv_bytes, heads * (320 * 2 * 18 + kPrompt * 2));
    EXPECT_EQ(h4.kv_bytes, q4.kv_bytes);
}

TEST(KvQuantModel, EveryPolicyOnQuantizedCaches) {
    HKV_REQUIRE_SHARED(kModel);
    auto model = test::load_model(kModel);
    ASSERT_TRUE(model);
    const std::vector<std::string> specs = {
        "streaming:budget=64",  "h2o:budget=64,slack=4", "snapkv:budget=64", "pyramidkv:budget=64,window=16",
        "adakv:budget=64",      "chunkkv:budget=64,window=16", "knorm:budget=64", "tova:budget=64,slack=4",
        "quest:budget=64",      "ems:budget=64,window=16", "ems:budget=64,window=16,mode=merge,score=max",
        "dynsplit:budget=64",   "heterocache:taxonomy=" + kTax + ",ratio=0.7,tau=1.01"};
    struct Types {
        KvType k, v;
    };
    for (const std::string& spec : specs) {
        const CacheRun f16 = run_cache(model, spec, KvType::kF16, KvType::kF16);
        for (const Types t : {Types{KvType::kQ8_0, KvType::kQ8_0}, Types{KvType::kQ4_0, KvType::kQ4_0},
                              Types{KvType::kQ8_0, KvType::kF16}, Types{KvType::kHQ4, KvType::kHQ4}}) {
            SCOPED_TRACE(spec + " " + kv_type_name(t.k) + "/" + kv_type_name(t.v));
            const CacheRun q = run_cache(model, spec, t.k, t.v);
            EXPECT_TRUE(q.finite);
            ASSERT_EQ(q.tokens.size(), size_t(kDecode));
            // bytes = page capacity (slots) x (K + V row) + live slots x lane (a 16-bit position at
            // n_ctx 512, + a float score with h2o / EMS score=max): whole rows of the quantized types
            const bool score_lane = spec.rfind("h2o", 0) == 0 || spec.find("score=max") != std::string::npos;
            const int64_t lane = score_lane ? 6 : 2;
            const int64_t row = int64_t(kv_type_row_size(t.k, 32) + kv_type_row_size(t.v, 32));
            const int64_t cap = (q.kv_bytes - q.slots * lane) / row, cap_f16 = (f16.kv_bytes - f16.slots * lane) / 128;
            EXPECT_EQ(cap * row + q.slots * lane, q.kv_bytes);
            EXPECT_EQ(cap_f16 * 128 + f16.slots * lane, f16.kv_bytes);
            EXPECT_GE(cap, q.slots);
            if (q.n_slot == f16.n_slot) {
                EXPECT_EQ(cap, cap_f16);  // the same heads' slots: the same pages, of smaller rows
            } else {
                // score-dependent per-head budgets (Ada-KV, DynSplit) or merges (EMS) moved a few slots
                EXPECT_NEAR(double(q.slots), double(f16.slots), 0.05 * double(f16.slots));
            }
        }
    }
}

TEST(KvQuantModel, HeadSizeNotWholeBlocksIsAnError) {  // (hq4's power-of-two rule: test_kv_hq4)
    const std::string path = test::shared_path("models/stories260K.gguf");
    HKV_REQUIRE_SHARED(path);
    auto model = test::load_model(path);
    ASSERT_TRUE(model);
    ContextParams cp;
    cp.n_ctx = 64;
    cp.type_v = KvType::kQ4_0;
    auto ctx = Context::create(model, cp);
    ASSERT_FALSE(ctx.ok());
    EXPECT_EQ(ctx.status().code(), StatusCode::kUnsupported);
    EXPECT_NE(ctx.status().message().find("q4_0 needs a head size that is a multiple of 32; the model's head size is 8"),
              std::string::npos)
        << ctx.status().to_string();
    cp.type_v.reset();
    cp.kv_type = KvType::kF16;  // the float types take any head size
    EXPECT_TRUE(Context::create(model, cp).ok());
}

}  // namespace
}  // namespace hkv
