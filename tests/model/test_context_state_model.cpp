// Saved contexts on a real model (retrieval-1.4M from ../shared/models, skipped when absent): a
// context that read a 300-token prompt and generated 7 tokens is saved, loaded into a fresh context,
// and both continue (12 greedy tokens, a 24-token question as a second segment, 8 greedy tokens):
// the restored context answers the same greedy text with the same logits, under full (f16 and
// q8_0), H2O (score lane), DynSplit-KV in both modes, EMS merging, Quest and HeteroCache with its
// cold tier in RAM and in files (refreshing at every monitor window, so the restored tier is
// read), on f16 and quantized caches.
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "heterokv/engine.h"
#include "story_prompt.h"
#include "test_util.h"

namespace hkv {
namespace {

const std::string kModel = test::shared_path("models/retrieval-1.4M.gguf");
const std::string kTax = test::data_path("heterocache/retrieval-1.4M_topk0.2.json");

std::vector<int32_t> carry_on(Context& c, const std::vector<int32_t>& question, std::vector<float>* logits) {
    std::vector<int32_t> out;
    auto greedy = [&](int n) {
        for (int i = 0; i < n; ++i) {
            const int32_t t = test::argmax(c.logits());
            out.push_back(t);
            const Status st = c.eval({&t, 1});
            EXPECT_TRUE(st.ok()) << st.to_string();
            logits->insert(logits->end(), c.logits().begin(), c.logits().end());
        }
    };
    greedy(12);
    EXPECT_TRUE(c.eval(question).ok());
    greedy(8);
    return out;
}

TEST(ContextStateModel, RestoredContextAnswersTheSameGreedyText) {
    HKV_REQUIRE_SHARED(kModel);
    auto model = test::load_model(kModel);
    ASSERT_NE(model, nullptr);
    const std::vector<int32_t> prompt = test::story_prompt(*model, 300);
    const std::vector<int32_t> question = model->tokenizer().encode(" Who found the ball under the tree? Tom", false);
    ASSERT_GE(question.size(), 2u);
    test::TempDir dir;
    struct Case {
        std::string spec;
        KvType k, v;
        bool cold_dir = false;
    };
    const std::string hc = "heterocache:taxonomy=" + kTax + ",ratio=0.7,tau=1.01";
    const std::vector<Case> cases = {
        {"full", KvType::kF16, KvType::kF16},
        {"full", KvType::kQ8_0, KvType::kQ8_0},
        {"h2o:budget=64,slack=4", KvType::kF16, KvType::kQ4_0},
        {"dynsplit:budget=64", KvType::kF16, KvType::kF16},
        {"dynsplit:budget=64,mode=select", KvType::kQ8_0, KvType::kF16},
        {"dynsplit:ratio=0.2", KvType::kF16, KvType::kF16},  // through the ratio wrapper (state forwarded)
        {"ems:budget=64,window=16,mode=merge,score=max", KvType::kF16, KvType::kF16},
        {"quest:budget=64", KvType::kF16, KvType::kF16},
        {hc, KvType::kF16, KvType::kF16},
        {hc, KvType::kQ8_0, KvType::kQ8_0, true},
        {"ems:budget=64,window=16,mode=merge,score=max", KvType::kHQ4, KvType::kHQ4},  // merges requantized
        {hc, KvType::kHQ4, KvType::kHQ4, true},  // rotated rows in the cold tier
    };
    for (const Case& cs : cases) {
        SCOPED_TRACE(cs.spec + " " + kv_type_name(cs.k) + "/" + kv_type_name(cs.v));
        ContextParams p;
        p.n_ctx = 512, p.n_threads = 2, p.n_batch = 128, p.policy = cs.spec, p.type_k = cs.k, p.type_v = cs.v;
        if (cs.cold_dir) p.kv_cold_dir = dir.path.string();
        auto a = Context::create(model, p);
        ASSERT_TRUE(a.ok()) << a.status().to_string();
        ASSERT_TRUE((*a)->eval(prompt).ok());
        for (int i = 0; i < 7; ++i) {
            const int32_t t = test::argmax((*a)->logits());
            ASSERT_TRUE((*a)->eval({&t, 1}).ok());
        }
        const std::string path = dir.file("ctx.state");
        auto n = (*a)->state_save_file(path);
        ASSERT_TRUE(n.ok()) << n.status().to_string();
        auto b = Context::create(model, p);
        ASSERT_TRUE(b.ok());
        const Status st = (*b)->state_load_file(path);
        ASSERT_TRUE(st.ok()) << st.to_string();
        EXPECT_EQ((*b)->kv_bytes(), (*a)->kv_bytes());
        std::vector<float> la, lb;
        const std::vector<int32_t> ta = carry_on(**a, question, &la);
        const std::vector<int32_t> tb = carry_on(**b, question, &lb);
        EXPECT_EQ(ta, tb);
        EXPECT_EQ(la, lb);
        EXPECT_EQ((*b)->kv_stats().n_slot, (*a)->kv_stats().n_slot);
        if (cs.spec == hc) {  // the monitor refreshed from the restored cold tier (its I/O counters restart)
            const std::string ra = (*a)->policy_report(), rb = (*b)->policy_report();
            ASSERT_NE(rb.find("cold tier"), std::string::npos) << rb;
            EXPECT_NE(rb.find("gathers applied"), std::string::npos) << rb;
            // the counters, without the wall times (" in 0.2 ms", "key dots 0.1 ms")
            const std::regex ms("[0-9.]+ ms");
            EXPECT_EQ(std::regex_replace(rb.substr(0, rb.find("; cold tier")), ms, ""),
                      std::regex_replace(ra.substr(0, ra.find("; cold tier")), ms, ""));
        }
    }
}

}  // namespace
}  // namespace hkv
