// Per-head precision (issue 19 item 5) on a real model, retrieval-1.4M (head_dim 32; from
// ../shared/models, skipped when absent) with HeteroCache's taxonomy
// tests/data/heterocache/retrieval-1.4M_topk0.2.json (6 volatile, 1 pivot, 4 anchor, 1 satellite
// heads of 12):
//  - kv=anchor:q8_0/satellite:q8_0 on an f16 context gives finite logits close to all-f16
//    HeteroCache's, KV bytes strictly between the all-f16 and all-q8_0 runs' and exactly what each
//    head's own types cost; the classes a spec does not name keep the context's types (the same
//    logits as naming them); kv_bytes_bound counts each head at its types;
//  - a saved context round trip continues with the same logits; a file whose heads' types differ
//    from the context's is refused with a clear error; a version-1 file (no type table) loads;
//  - the llama.cpp session writer refuses a cache of mixed types;
//  - bad kv= specs are clear errors (no model needed).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "eval/llamacpp_session.h"
#include "heterokv/engine.h"
#include "heterokv/policy.h"
#include "story_prompt.h"
#include "test_util.h"

namespace hkv {
namespace {

const std::string kModel = test::shared_path("models/retrieval-1.4M.gguf");
const std::string kTax = test::data_path("heterocache/retrieval-1.4M_topk0.2.json");
constexpr int32_t kPrompt = 300, kDecode = 8, kCtx = 512;

std::string hc_spec(const std::string& tax, const std::string& kv) {
    return "heterocache:taxonomy=" + tax + ",ratio=0.7,tau=1.01" + (kv.empty() ? "" : ",kv=" + kv);
}

ContextParams params(const std::string& spec, KvType t) {
    ContextParams cp;
    cp.n_ctx = kCtx, cp.n_threads = 2, cp.n_batch = 128, cp.policy = spec, cp.type_k = t, cp.type_v = t;
    return cp;
}

struct CacheRun {
    std::vector<float> logits;  // prompt's last position, then each decode step's
    KvStats stats;              // after the prompt
    int64_t kv_bytes = 0;       // after the prompt
    bool finite = true;
};

// Prompt, then kDecode greedy steps; ctx (if given) receives the context after the prompt's stats.
CacheRun run_cache(const std::shared_ptr<const Model>& model, const ContextParams& cp,
                   std::unique_ptr<Context>* keep = nullptr) {
    CacheRun r;
    auto ctx = Context::create(model, cp);
    EXPECT_TRUE(ctx.ok()) << cp.policy << ": " << ctx.status().to_string();
    if (!ctx.ok()) return r;
    Context& c = **ctx;
    EXPECT_TRUE(c.eval(test::story_prompt(*model, kPrompt)).ok());
    r.stats = c.kv_stats();
    r.kv_bytes = c.kv_bytes();
    for (int32_t i = 0; i <= kDecode; ++i) {
        r.logits.insert(r.logits.end(), c.logits().begin(), c.logits().end());
        for (float x : c.logits()) r.finite = r.finite && std::isfinite(x);
        if (i == kDecode) break;
        const int32_t t = test::argmax(c.logits());
        EXPECT_TRUE(c.eval({&t, 1}).ok());
    }
    if (keep) *keep = std::move(*ctx);
    return r;
}

size_t row_bytes(KvType t) { return kv_type_row_size(t, 32); }

// What the cache holds after the prompt, from each head's slots and types: a head never compacted
// (it kept all kPrompt slots) holds whole pages of 64 slots; a compacted one a short last page
// rounded up to 8 slots; + 4 bytes of position a slot.
int64_t expected_bytes(const KvStats& s) {
    int64_t b = 0;
    for (size_t i = 0; i < s.n_slot.size(); ++i) {
        const int64_t n = s.n_slot[i];
        const KvType k = s.head_type.empty() ? s.type : s.head_type[i];
        const KvType v = s.head_type_v.empty() ? s.type_v : s.head_type_v[i];
        const int64_t pages = (n + 63) / 64;
        int64_t cap = pages * 64;
        if (n < kPrompt && pages > 0) cap = (pages - 1) * 64 + std::min<int64_t>(64, (n - (pages - 1) * 64 + 7) / 8 * 8);
        b += cap * int64_t(row_bytes(k) + row_bytes(v)) + n * 2;  // a 16-bit position a slot (n_ctx 512)
    }
    return b;
}

TEST(KvMixedModel, ClassTypesBytesAndLogits) {
    HKV_REQUIRE_SHARED(kModel);
    auto model = test::load_model(kModel);
    ASSERT_TRUE(model);
    const size_t nv = size_t(model->config().n_vocab);
    const CacheRun f16 = run_cache(model, params(hc_spec(kTax, ""), KvType::kF16));
    const CacheRun q8 = run_cache(model, params(hc_spec(kTax, ""), KvType::kQ8_0));
    const CacheRun mixed = run_cache(model, params(hc_spec(kTax, "volatile:f16/pivot:f16/anchor:q8_0/satellite:q8_0"), KvType::kF16));
    // the classes not named keep the context's types: q8_0 context, full heads named f16
    const CacheRun mixed2 = run_cache(model, params(hc_spec(kTax, "volatile:f16/pivot:f16"), KvType::kQ8_0));
    ASSERT_TRUE(mixed.finite && mixed2.finite && f16.finite && q8.finite);
    ASSERT_EQ(mixed.stats.head_type.size(), 12u);
    int n_q8 = 0;
    for (KvType t : mixed.stats.head_type) n_q8 += t == KvType::kQ8_0;
    EXPECT_EQ(n_q8, 5);  // 4 anchors + 1 satellite
    EXPECT_TRUE(f16.stats.head_type.empty());
    EXPECT_EQ(mixed.stats.n_slot, f16.stats.n_slot);  // budgets do not depend on the types
    // each head holds its own types' bytes: the formula fits the uniform runs and the mixed one
    EXPECT_EQ(f16.kv_bytes, expected_bytes(f16.stats));
    EXPECT_EQ(q8.kv_bytes, expected_bytes(q8.stats));
    EXPECT_EQ(mixed.kv_bytes, expected_bytes(mixed.stats));
    EXPECT_LT(mixed.kv_bytes, f16.kv_bytes);
    EXPECT_GT(mixed.kv_bytes, q8.kv_bytes);
    EXPECT_EQ(mixed2.kv_bytes, mixed.kv_bytes);
    EXPECT_EQ(mixed2.logits, mixed.logits);
    const double kld_mixed = test::mean_kld(f16.logits, mixed.logits, nv);
    const double kld_q8 = test::mean_kld(f16.logits, q8.logits, nv);
    std::printf("KLD against f16 HeteroCache: mixed %.6f  q8_0 %.6f; bytes f16 %lld mixed %lld q8_0 %lld\n", kld_mixed,
                kld_q8, (long long)f16.kv_bytes, (long long)mixed.kv_bytes, (long long)q8.kv_bytes);
    EXPECT_GT(kld_mixed, 0.0);  // the compressed heads really are q8_0
    EXPECT_LT(kld_mixed, 0.005);
    // the bound counts each head at its types: between the uniform bounds, above what is held
    auto b16 = kv_bytes_bound(*model, params(hc_spec(kTax, ""), KvType::kF16), kPrompt, kDecode);
    auto b8 = kv_bytes_bound(*model, params(hc_spec(kTax, ""), KvType::kQ8_0), kPrompt, kDecode);
    auto bm = kv_bytes_bound(*model, params(hc_spec(kTax, "anchor:q8_0/satellite:q8_0"), KvType::kF16), kPrompt, kDecode);
    ASSERT_TRUE(b16.ok() && b8.ok() && bm.ok()) << bm.status().to_string();
    EXPECT_LT(*bm, *b16);
    EXPECT_GT(*bm, *b8);
    EXPECT_GE(*bm, mixed.kv_bytes);
}

// FNV-1a 64 of the saved-context format's checksum.
uint64_t fnv(const std::string& s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
    return h;
}

TEST(KvMixedModel, SavedContexts) {
    HKV_REQUIRE_SHARED(kModel);
    auto model = test::load_model(kModel);
    ASSERT_TRUE(model);
    test::TempDir dir;
    const std::string tax = dir.file("tax.json");
    std::filesystem::copy_file(kTax, tax);
    const ContextParams cp = params(hc_spec(tax, "anchor:q4_0+q8_0/satellite:hq4"), KvType::kF16);
    std::unique_ptr<Context> a;
    run_cache(model, cp, &a);
    ASSERT_TRUE(a);
    const std::string path = dir.file("ctx.state");
    ASSERT_TRUE(a->state_save_file(path).ok());
    auto b = Context::create(model, cp);
    ASSERT_TRUE(b.ok());
    ASSERT_TRUE((*b)->state_load_file(path).ok());
    EXPECT_EQ((*b)->kv_bytes(), a->kv_bytes());
    for (int i = 0; i < 4; ++i) {  // both continue the same way
        ASSERT_EQ(std::vector<float>((*b)->logits().begin(), (*b)->logits().end()),
                  std::vector<float>(a->logits().begin(), a->logits().end()));
        const int32_t t = test::argmax(a->logits());
        ASSERT_TRUE(a->eval({&t, 1}).ok());
        ASSERT_TRUE((*b)->eval({&t, 1}).ok());
    }
    // the same spec over another taxonomy gives other heads other types: refused, not misread
    std::filesystem::copy_file(test::data_path("heterocache/retrieval-1.4M_topk1024.json"), tax,
                               std::filesystem::copy_options::overwrite_existing);
    auto c = Context::create(model, cp);
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    const Status st = (*c)->state_load_file(path);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find("per-head types"), std::string::npos) << st.message();
    EXPECT_EQ((*c)->kv_stats().slots_total, 0);  // a failed load leaves the context empty
    // a version-1 file (before per-head types: no type table) of a uniform cache still loads
    const ContextParams up = params("full", KvType::kQ8_0);
    std::unique_ptr<Context> u;
    run_cache(model, up, &u);
    ASSERT_TRUE(u);
    ASSERT_TRUE(u->state_save_file(path).ok());
    std::string f = test::read_file(path);
    uint16_t arch = 0;
    std::memcpy(&arch, f.data() + 16, 2);
    const size_t spec_at = 18 + arch + 7 * 4 + 8;
    uint32_t spec_len = 0;
    std::memcpy(&spec_len, f.data() + spec_at, 4);
    const size_t table_at = spec_at + 4 + spec_len + 4 + 4 + 4 + 1 + 1 + 4;
    std::string v1 = f.substr(0, table_at) + f.substr(table_at + 12 * 8, f.size() - 8 - table_at - 12 * 8);
    const uint32_t one = 1;
    std::memcpy(v1.data() + 8, &one, 4);
    const uint64_t sum = fnv(v1);
    v1.append(reinterpret_cast<const char*>(&sum), 8);
    {
        std::FILE* out = std::fopen(path.c_str(), "wb");
        ASSERT_NE(out, nullptr);
        ASSERT_EQ(std::fwrite(v1.data(), 1, v1.size(), out), v1.size());
        std::fclose(out);
    }
    auto w = Context::create(model, up);
    ASSERT_TRUE(w.ok());
    const Status st1 = (*w)->state_load_file(path);
    ASSERT_TRUE(st1.ok()) << st1.to_string();
    EXPECT_EQ(std::vector<float>((*w)->logits().begin(), (*w)->logits().end()),
              std::vector<float>(u->logits().begin(), u->logits().end()));
    EXPECT_EQ((*w)->kv_bytes(), u->kv_bytes());
}

TEST(KvMixedModel, LlamaCppSessionRefusesMixedTypes) {
    HKV_REQUIRE_SHARED(kModel);
    auto model = test::load_model(kModel);
    ASSERT_TRUE(model);
    test::TempDir dir;
    auto ctx = Context::create(model, params(hc_spec(kTax, "volatile:q8_0"), KvType::kF16));
    ASSERT_TRUE(ctx.ok());
    std::vector<int32_t> tokens = test::story_prompt(*model, 40);
    ASSERT_TRUE((*ctx)->eval(tokens).ok());
    const Status st = eval::write_llamacpp_session(dir.file("s.bin"), **ctx, tokens, 39);
    EXPECT_EQ(st.code(), StatusCode::kUnsupported);
    EXPECT_NE(st.message().find("one K and one V type"), std::string::npos) << st.message();
    EXPECT_FALSE(std::filesystem::exists(dir.file("s.bin")));
}

// Bad kv= options: clear errors at creation (no model needed).
TEST(KvMixedModel, BadSpecs) {
    const std::pair<std::string, std::string> cases[] = {
        {"boss:q8_0", "unknown head class 'boss'"},
        {"anchor:q9", "class anchor: 'q9': expected"},
        {"anchor", "is not CLASS:TYPE"},
        {"anchor:", "is not CLASS:TYPE"},
        {"anchor:q8_0/anchor:f16", "class anchor given twice"},
        {"anchor:q8_0+", "class anchor"},
        {"anchor:q8_0/", "is not CLASS:TYPE"},
    };
    for (const auto& [kv, want] : cases) {
        auto p = policy_create(hc_spec(kTax, kv));
        ASSERT_FALSE(p.ok()) << kv;
        EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument) << kv;
        EXPECT_NE(p.status().message().find(want), std::string::npos) << kv << ": " << p.status().message();
    }
    auto ok = policy_create(hc_spec(kTax, "volatile:f16/pivot:bf16/anchor:q4_0+q8_0/satellite:hq4"));
    ASSERT_TRUE(ok.ok()) << ok.status().to_string();
    const PolicyInfo info = (*ok)->info();
    ASSERT_EQ(info.kv_types.size(), 12u);
    EXPECT_EQ(info.kv_types[2].k, KvType::kQ4_0);  // layer 1 head 0 is an anchor
    EXPECT_EQ(info.kv_types[2].v, KvType::kQ8_0);
    EXPECT_TRUE((*policy_create(hc_spec(kTax, ""))).get()->info().kv_types.empty());
}

}  // namespace
}  // namespace hkv
