// DynSplit-KV on a real model (stories260K from ../shared/models; skipped when absent):
//  - the delimiter mask computed from the model's real SentencePiece vocabulary;
//  - a budget covering the context reproduces `full`'s logits bit for bit in both modes, every
//    split, with single-chunk and chunked prefill (the band pass and hooks must not perturb the
//    forward pass);
//  - evict mode with chunked prefill: after EVERY chunk no head holds more than its budget (the
//    KV of dropped blocks is freed chunk by chunk), and decoding stays finite;
//  - select mode evicts nothing but changes what decoding attends to.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "heterokv/engine.h"
#include "kv/kv_store.h"
#include "model/model.h"
#include "story_prompt.h"
#include "test_util.h"
#include "tokenizer/delimiters.h"

namespace hkv {
namespace {

const std::string kModel = test::shared_path("models/stories260K.gguf");
constexpr int32_t kPrompt = 400, kDecode = 20, kCtx = 512;

std::shared_ptr<const Model> load() { return test::load_model(kModel); }
// kPrompt tokens of story text with a newline (a delimiter of its own) after each passage
std::vector<int32_t> prompt_tokens(const Model& model) {
    return test::story_prompt(model, kPrompt, test::kStoryText + "Then they went home.\n");
}
using test::argmax;

// Prompt logits then greedy decode logits; max_after_chunk: the most slots any head held after
// any prefill chunk.
struct DynRun {
    std::vector<float> logits;
    std::vector<size_t> kv_bytes;
    int32_t max_after_chunk = 0;
};

DynRun run_spec(const std::shared_ptr<const Model>& model, const std::string& spec, int32_t n_batch) {
    DynRun r;
    auto ctx = Context::create(model, {.n_ctx = kCtx, .n_threads = 2, .n_batch = n_batch, .policy = spec});
    EXPECT_TRUE(ctx.ok()) << spec << ": " << ctx.status().to_string();
    if (!ctx.ok()) return r;
    Context& c = **ctx;
    const ModelConfig& mc = model->config();
    auto most = [&] {
        int32_t m = 0;
        for (int32_t il = 0; il < mc.n_layer; ++il) {
            for (int32_t ih = 0; ih < mc.n_head_kv; ++ih) m = std::max(m, c.kv_head(il, ih)->n_slot);
        }
        return m;
    };
    EXPECT_TRUE(c.eval(prompt_tokens(*model), &r.logits, [&](int64_t, int64_t) {
                     r.max_after_chunk = std::max(r.max_after_chunk, most());
                 }).ok());
    r.kv_bytes.push_back(size_t(c.kv_bytes()));
    for (int32_t step = 0; step < kDecode; ++step) {
        const int32_t tok = argmax(c.logits());
        EXPECT_TRUE(c.eval({&tok, 1}).ok());
        r.logits.insert(r.logits.end(), c.logits().begin(), c.logits().end());
        r.kv_bytes.push_back(size_t(c.kv_bytes()));
    }
    return r;
}

TEST(DynSplitModel, DelimiterMaskFromTheRealVocabulary) {
    HKV_REQUIRE_SHARED(kModel);
    auto model = load();
    ASSERT_TRUE(model);
    const Tokenizer& tok = model->tokenizer();
    const std::vector<uint8_t> mask = tokenizer_delimiter_mask(tok);
    ASSERT_EQ(mask.size(), size_t(tok.n_vocab()));
    int32_t n = 0;
    for (uint8_t m : mask) n += m;
    EXPECT_GT(n, 5);
    EXPECT_LT(n, tok.n_vocab() / 4) << "most of the vocabulary cannot be delimiters";
    // "." "," "!" and the newline (a <0x0A> byte token) are delimiters; words are not
    for (const char* t : {".", ",", "!", "\n"}) {
        const std::vector<int32_t> ids = tok.encode(t, false);
        ASSERT_FALSE(ids.empty());
        EXPECT_TRUE(mask[size_t(ids.back())]) << "'" << t << "' -> id " << ids.back() << " piece '"
                                                << tok.token_to_piece(ids.back()) << "'";
    }
    for (const char* t : {" Lily", " park", " the"}) {
        for (int32_t id : tok.encode(t, false)) EXPECT_FALSE(mask[size_t(id)]) << tok.token_to_piece(id);
    }
    EXPECT_FALSE(mask[size_t(tok.bos())]);
}

TEST(DynSplitModel, BudgetCoveringTheContextReproducesFullBitForBit) {
    HKV_REQUIRE_SHARED(kModel);
    auto model = load();
    ASSERT_TRUE(model);
    for (int32_t nb : {512, 64}) {
        const DynRun full = run_spec(model, "full", nb);
        for (const std::string spec : {"dynsplit:budget=512", "dynsplit:budget=512,split=fixed,interval=8",
                                       "dynsplit:budget=512,split=punct", "dynsplit:budget=512,mode=select",
                                       "dynsplit:budget=512,mode=select,split=punct"}) {
            const DynRun r = run_spec(model, spec, nb);
            ASSERT_EQ(r.logits.size(), full.logits.size()) << spec;
            EXPECT_EQ(std::memcmp(r.logits.data(), full.logits.data(), full.logits.size() * sizeof(float)), 0)
                << spec << " -b " << nb << " changed the logits with a budget covering the context";
            EXPECT_EQ(r.kv_bytes, full.kv_bytes) << spec;
        }
    }
}

TEST(DynSplitModel, ChunkedEvictionHoldsTheBudgetAfterEveryChunk) {
    HKV_REQUIRE_SHARED(kModel);
    auto model = load();
    ASSERT_TRUE(model);
    const DynRun full = run_spec(model, "full", 64);
    EXPECT_EQ(full.max_after_chunk, kPrompt);
    for (const std::string spec : {"dynsplit:budget=128,at=chunk", "dynsplit:budget=128,split=fixed,interval=16,at=chunk",
                                   "dynsplit:budget=128,split=punct,at=chunk",
                                   "dynsplit:budget=128,accept=adaptive,norm=band,at=chunk"}) {
        const DynRun r = run_spec(model, spec, 64);
        EXPECT_LE(r.max_after_chunk, 128) << spec;
        EXPECT_LT(double(r.kv_bytes.front()), 0.45 * double(full.kv_bytes.front())) << spec;
        for (float v : r.logits) ASSERT_TRUE(std::isfinite(v)) << spec;
        // the first chunks (64 tokens) fit the budget: their logits are full's exactly
        const size_t nv = size_t(model->config().n_vocab);
        EXPECT_EQ(std::memcmp(r.logits.data(), full.logits.data(), 128 * nv * sizeof(float)), 0) << spec;
        EXPECT_NE(std::memcmp(r.logits.data(), full.logits.data(), r.logits.size() * sizeof(float)), 0) << spec;
    }
}

// The default (at=end, issue 18) evicts once at the prompt's end, as SnapKV does: every prompt chunk
// but the last is kept whole (the prompt's logits are full's bit for bit), then the budget holds.
TEST(DynSplitModel, DefaultEvictsOnceAtThePromptsEnd) {
    HKV_REQUIRE_SHARED(kModel);
    auto model = load();
    ASSERT_TRUE(model);
    const DynRun full = run_spec(model, "full", 64);
    const size_t prompt_floats = size_t(kPrompt) * size_t(model->config().n_vocab);
    for (const std::string spec : {"dynsplit:budget=128", "dynsplit:budget=128,at=end,split=fixed,interval=16"}) {
        const DynRun r = run_spec(model, spec, 64);
        EXPECT_GE(r.max_after_chunk, kPrompt - 64) << spec << ": evicted before the prompt's last chunk";
        EXPECT_LT(double(r.kv_bytes.front()), 0.45 * double(full.kv_bytes.front())) << spec;
        EXPECT_EQ(std::memcmp(r.logits.data(), full.logits.data(), prompt_floats * sizeof(float)), 0) << spec;
        EXPECT_NE(std::memcmp(r.logits.data() + prompt_floats, full.logits.data() + prompt_floats,
                              (r.logits.size() - prompt_floats) * sizeof(float)),
                  0)
            << spec;
    }
}

TEST(DynSplitModel, SelectModeKeepsEveryTokenButChangesDecoding) {
    HKV_REQUIRE_SHARED(kModel);
    auto model = load();
    ASSERT_TRUE(model);
    const DynRun full = run_spec(model, "full", 512);
    const DynRun r = run_spec(model, "dynsplit:budget=64,mode=select,dense=1", 512);
    EXPECT_EQ(r.kv_bytes, full.kv_bytes);
    const size_t prompt_floats = size_t(kPrompt) * size_t(model->config().n_vocab);
    EXPECT_EQ(std::memcmp(r.logits.data(), full.logits.data(), prompt_floats * sizeof(float)), 0);
    EXPECT_NE(std::memcmp(r.logits.data() + prompt_floats, full.logits.data() + prompt_floats,
                          (r.logits.size() - prompt_floats) * sizeof(float)),
              0);
    for (float v : r.logits) ASSERT_TRUE(std::isfinite(v));
}

}  // namespace
}  // namespace hkv
