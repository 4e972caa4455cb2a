// Model test: the llama.cpp session file heterokv writes (eval/llamacpp_session.h) against one that
// llama.cpp wrote for the same tokens on stories260K (real weights; skipped when absent).
// Golden tests/data/golden/stories260K_session.bin, from (build 11669, 9 cells for 10 tokens):
//   llamacpp-ref llama-completion -m stories260K.gguf -p "Once upon a time, there was a little"
//     -n 4 --temp 0 -no-cnv -fa on -t 2 -c 128 --prompt-cache stories260K_session.bin
// Everything but the K/V rows must be byte-identical; the rows (f16 on both sides) must agree to
// the rounding of two engines' different f32 summation orders. SessionText (the fill and the prefill
// prompt of compare_llamacpp.sh --ref-from-hkv -p N) on stories260K's tokenizer and SmolLM2's.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <vector>

#include "core/fp16.h"
#include "eval/llamacpp_session.h"
#include "heterokv/engine.h"
#include "kv/kv_store.h"
#include "heterokv/model.h"
#include "heterokv/tokenizer.h"
#include "model/model.h"
#include "test_util.h"

namespace hkv {
namespace {

const std::string kModel = test::shared_path("models/stories260K.gguf");
const std::string kGolden = test::data_path("golden/stories260K_session.bin");

uint32_t u32_at(const std::string& s, size_t o) {
    uint32_t v;
    std::memcpy(&v, s.data() + o, 4);
    return v;
}

TEST(LlamacppSession, MatchesLlamaCppsOwnFile) {
    HKV_REQUIRE_SHARED(kModel);
    const std::string ref = test::read_file(kGolden);
    ASSERT_GT(ref.size(), 12u);
    const uint32_t n_tok = u32_at(ref, 8);
    ASSERT_EQ(n_tok, 10u);
    std::vector<int32_t> tokens(n_tok);
    std::memcpy(tokens.data(), ref.data() + 12, 4 * size_t(n_tok));

    auto model = model_load(kModel);
    ASSERT_TRUE(model.ok()) << model.status().to_string();
    auto ctx = Context::create(*model, {.n_ctx = 128, .n_threads = 2});
    ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
    // llama.cpp saved the state before its last prompt token: 9 cells
    ASSERT_TRUE((*ctx)->eval(std::span<const int32_t>(tokens).first(n_tok - 1)).ok());
    test::TempDir dir;
    const std::string path = dir.file("s.bin");
    ASSERT_TRUE(eval::write_llamacpp_session(path, **ctx, tokens, int32_t(n_tok - 1)).ok());
    const std::string ours = test::read_file(path);
    ASSERT_EQ(ours.size(), ref.size());

    // header, cells and the layer preambles: identical bytes; the rows: f16 values close
    const ModelConfig& c = (*model)->config();
    const size_t row = size_t(c.n_head_kv) * size_t(c.head_dim) * 2;
    const size_t n_cells = n_tok - 1;
    size_t data0 = 12 + 4 * size_t(n_tok) + 4 + c.arch.size() + 8 + 12 * n_cells + 16;
    ASSERT_EQ(0, std::memcmp(ours.data(), ref.data(), data0)) << "header differs";
    double max_err = 0.0;
    size_t o = data0;
    for (int part = 0; part < 2; ++part) {
        for (int32_t il = 0; il < c.n_layer; ++il) {
            ASSERT_EQ(0, std::memcmp(ours.data() + o, ref.data() + o, 12)) << "layer " << il << " preamble";
            o += 12;
            for (size_t i = 0; i < n_cells * row / 2; ++i) {
                uint16_t a, b;
                std::memcpy(&a, ours.data() + o + 2 * i, 2);
                std::memcpy(&b, ref.data() + o + 2 * i, 2);
                const double fa = fp16_to_fp32(a), fb = fp16_to_fp32(b);
                max_err = std::max(max_err, std::fabs(fa - fb) / std::max(1.0, std::fabs(fb)));
            }
            o += n_cells * row;
        }
    }
    EXPECT_EQ(o, ref.size());
    EXPECT_LT(max_err, 5e-3) << "K/V rows differ from llama.cpp's";
    std::printf("max relative K/V difference vs llama.cpp: %.3g\n", max_err);
}

TEST(LlamacppSession, RefusesACompressedCacheAndBadPaths) {
    HKV_REQUIRE_SHARED(kModel);
    auto model = model_load(kModel);
    ASSERT_TRUE(model.ok());
    auto ctx = Context::create(*model, {.n_ctx = 128, .n_threads = 1, .policy = "streaming:budget=8,sinks=2"});
    ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
    std::vector<int32_t> tokens(40);
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t(1 + 7 * i % 500);
    ASSERT_TRUE((*ctx)->eval(tokens).ok());
    test::TempDir dir;
    Status st = eval::write_llamacpp_session(dir.file("s.bin"), **ctx, tokens, 39);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
    EXPECT_FALSE(test::exists(dir.file("s.bin")));
    st = eval::write_llamacpp_session(dir.file("s.bin"), **ctx, tokens, 41);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);

    auto full = Context::create(*model, {.n_ctx = 128, .n_threads = 1});
    ASSERT_TRUE(full.ok());
    ASSERT_TRUE((*full)->eval(tokens).ok());
    st = eval::write_llamacpp_session(dir.file("no/such/dir/s.bin"), **full, tokens, 39);
    EXPECT_EQ(st.code(), StatusCode::kIoError) << st.to_string();
    // a device (here one that refuses every write): refused before writing, and left alone
    std::error_code ec;
    if (std::filesystem::is_character_file("/dev/full", ec)) {
        st = eval::write_llamacpp_session("/dev/full", **full, tokens, 39);
        EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
        EXPECT_NE(st.message().find("not a regular file"), std::string::npos) << st.to_string();
        EXPECT_TRUE(std::filesystem::is_character_file("/dev/full", ec));
    }
}

// The prompt text continues the session's first d - 1 tokens with n_prompt tokens of another word,
// so llama-completion evaluates exactly those: checked by tokenizing it again here.
void check_session_text(const Tokenizer& tok) {
    eval::SessionText st;
    ASSERT_TRUE(st.init(tok, 300).ok());
    ASSERT_EQ(st.fill.size(), 300u);
    EXPECT_NE(st.word, st.word2);
    EXPECT_EQ(st.n_bos, tok.add_bos() ? 1u : 0u);
    const int32_t t = st.fill.back();  // every word after the first is this token
    for (size_t i = st.n_bos + 1; i < st.fill.size(); ++i) ASSERT_EQ(st.fill[i], t) << i;
    for (int32_t d : {2, 3, 17, 300}) {
        auto text = st.pp_text(tok, d, 32);
        ASSERT_TRUE(text.ok()) << text.status().to_string();
        const std::vector<int32_t> got = tok.encode(*text, true);
        ASSERT_EQ(got.size(), size_t(d - 1 + 32)) << d;
        for (int32_t i = 0; i < d - 1; ++i) EXPECT_EQ(got[size_t(i)], st.fill[size_t(i)]) << d << " " << i;
        EXPECT_NE(got[size_t(d - 1)], st.fill[size_t(d - 1)]) << "llama.cpp's match must stop at d - 1";
        EXPECT_EQ(got.back(), got[size_t(d - 1) + 1]);
    }
    EXPECT_EQ(st.pp_text(tok, 1, 32).status().code(), StatusCode::kInvalidArgument);
    for (int32_t n : {0, 1}) {  // depth 0 (bench -d 0): nothing to fill; depth 1: [BOS] or one word
        eval::SessionText small;
        ASSERT_TRUE(small.init(tok, n).ok()) << n;
        EXPECT_EQ(small.fill.size(), size_t(n));
    }
    EXPECT_EQ(st.pp_text(tok, 301, 32).status().code(), StatusCode::kInvalidArgument);
}

TEST(LlamacppSession, PrefillPromptExtendsTheSessionsTokens) {
    HKV_REQUIRE_SHARED(kModel);
    auto model = model_load(kModel);
    ASSERT_TRUE(model.ok());
    check_session_text(model_tokenizer(**model));  // SentencePiece-style, BOS
    const std::string smol = test::shared_path("models/smollm2-135m-tokenizer/tokenizer.json");
    HKV_REQUIRE_SHARED(smol);
    auto data = tokenizer_data_from_hf_json(smol);
    ASSERT_TRUE(data.ok()) << data.status().to_string();
    auto tok = Tokenizer::create(*data);
    ASSERT_TRUE(tok.ok()) << tok.status().to_string();
    check_session_text(**tok);  // byte-level BPE
}

}  // namespace
}  // namespace hkv
