// Conversations (server/chat_session.h, `heterokv chat`) on a small synthetic model with a ChatML
// template (tiny-qwen3 shape, SmolLM2 tokenizer): each turn evaluates only its new tokens, the
// context holds exactly the rendered conversation, a full context ends the conversation cleanly,
// and a policy that evicts while decoding keeps a long conversation in bounded memory.
// Skipped when ../shared's tokenizer is absent.
#include <gtest/gtest.h>

#include "heterokv/engine.h"
#include "heterokv/synthetic.h"
#include "server/chat_session.h"
#include "test_util.h"

namespace hkv::server {
namespace {

const std::string kTokenizer = test::shared_path("models/smollm2-135m-tokenizer/tokenizer.json");

class Chat : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        if (!test::exists(kTokenizer)) return;
        dir_ = new test::TempDir();
        auto shape = synth_preset("tiny-qwen3");
        ASSERT_TRUE(shape.ok());
        auto tok = tokenizer_data_load(kTokenizer);
        ASSERT_TRUE(tok.ok()) << tok.status().to_string();
        tok->chat_template = test::read_file(test::data_path("chat_templates/chatml.jinja"));
        const std::string path = dir_->file("chat.gguf");
        ASSERT_TRUE(synth_model_write(*shape, *tok, {.weight_type = SynthType::kF16, .seed = 1, .n_threads = 2}, path).ok());
        auto m = model_load(path);
        ASSERT_TRUE(m.ok()) << m.status().to_string();
        model_ = new std::shared_ptr<const Model>(*m);
    }
    static void TearDownTestSuite() {
        delete model_;
        delete dir_;
        model_ = nullptr;
        dir_ = nullptr;
    }
    void SetUp() override {
        HKV_REQUIRE_SHARED(kTokenizer);
        ASSERT_NE(model_, nullptr);
    }
    static std::unique_ptr<Context> context(int32_t n_ctx, const std::string& policy = "full") {
        auto c = Context::create(*model_, {.n_ctx = n_ctx, .n_threads = 2, .policy = policy});
        EXPECT_TRUE(c.ok()) << c.status().to_string();
        return c.ok() ? std::move(c).value() : nullptr;
    }
    static ChatOptions options(int32_t n_predict) {
        ChatOptions o;
        o.family = chat_family_detect(model_info(**model_).chat_template);
        o.system = "You are brief.";
        o.n_predict = n_predict;
        o.sampler.temp = 0.0f;
        return o;
    }
    static inline test::TempDir* dir_ = nullptr;
    static inline std::shared_ptr<const Model>* model_ = nullptr;
};

TEST_F(Chat, EachTurnEvaluatesOnlyItsNewTokens) {
    auto ctx = context(512);
    ASSERT_TRUE(ctx);
    auto chat = ChatSession::create(*ctx, options(6));
    ASSERT_TRUE(chat.ok()) << chat.status().to_string();
    ChatSession& c = **chat;
    const Tokenizer& tok = model_tokenizer(**model_);
    std::string streamed;
    auto t1 = c.turn("Hello there, how are you today?", [&](std::string_view s) {
        streamed += s;
        return true;
    });
    ASSERT_TRUE(t1.ok()) << t1.status().to_string();
    EXPECT_EQ(t1->n_gen, 6);
    EXPECT_EQ(t1->finish, "length");
    EXPECT_EQ(streamed, t1->reply);
    EXPECT_EQ(ctx->timings().n_prefill, t1->n_eval);  // the first turn: system + user + header
    const int64_t prefill1 = ctx->timings().n_prefill;
    const int32_t past1 = ctx->n_past();
    EXPECT_EQ(past1, t1->n_eval + t1->n_gen - 1);  // the last reply token waits for the next turn

    auto t2 = c.turn("Tell me more.", {});
    ASSERT_TRUE(t2.ok()) << t2.status().to_string();
    // Only the new tokens: the pending reply token, "<|im_end|>\n<|im_start|>user\nTell me more.
    // <|im_end|>\n<|im_start|>assistant\n" — never the conversation again.
    const auto user2 = tok.encode("Tell me more.", false);
    const auto markup = tok.encode("<|im_end|>\n<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n", false, true);
    EXPECT_EQ(t2->n_eval, int32_t(1 + user2.size() + markup.size()));
    EXPECT_EQ(ctx->timings().n_prefill - prefill1, t2->n_eval);
    EXPECT_LT(t2->n_eval, past1);
    auto t3 = c.turn("And then?", {});
    ASSERT_TRUE(t3.ok());
    EXPECT_EQ(ctx->timings().n_prefill, prefill1 + t2->n_eval + t3->n_eval);

    // The context holds exactly the conversation as the template renders it (the last reply's
    // final token is sampled, not yet evaluated).
    std::vector<ChatMessage> conv = c.messages();
    ASSERT_EQ(conv.size(), 7u);
    EXPECT_EQ(conv[0].role, "system");
    EXPECT_EQ(conv.back().role, "assistant");
    const std::string last_reply = conv.back().content;
    conv.pop_back();
    auto want = chat_render(ChatFamily::kChatml, conv);
    ASSERT_TRUE(want.ok());
    ASSERT_EQ(int32_t(c.tokens().size()), ctx->n_past());
    const std::string held = tok.decode(c.tokens(), true);
    const size_t pending_bytes = c.pending() >= 0 ? tok.token_to_piece(c.pending()).size() : 0;
    const std::string reply_held = last_reply.substr(0, last_reply.size() - pending_bytes);
    EXPECT_EQ(held, *want + reply_held);
}

TEST_F(Chat, ResetStartsOverAndRepeatsTheFirstReply) {
    auto ctx = context(512);
    ASSERT_TRUE(ctx);
    auto chat = ChatSession::create(*ctx, options(5));
    ASSERT_TRUE(chat.ok());
    auto a = (*chat)->turn("Hi", {});
    ASSERT_TRUE(a.ok());
    ASSERT_TRUE((*chat)->turn("Again", {}).ok());
    (*chat)->reset();
    EXPECT_EQ(ctx->n_past(), 0);
    auto b = (*chat)->turn("Hi", {});
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(a->reply, b->reply);  // greedy: the same first turn gives the same reply
}

TEST_F(Chat, FullContextEndsTheConversationCleanly) {
    auto ctx = context(96);
    ASSERT_TRUE(ctx);
    auto chat = ChatSession::create(*ctx, options(16));
    ASSERT_TRUE(chat.ok());
    int turns = 0;
    for (; turns < 20; ++turns) {
        auto t = (*chat)->turn("One more question, please.", {});
        ASSERT_TRUE(t.ok()) << t.status().to_string();
        EXPECT_LE(ctx->n_past(), ctx->n_ctx());
        if (t->finish == "context") break;
    }
    EXPECT_LT(turns, 20);
    EXPECT_GE(turns, 1);
    // A turn that cannot fit changes nothing.
    const int32_t past = ctx->n_past();
    auto more = (*chat)->turn("Still there?", {});
    ASSERT_TRUE(more.ok());
    EXPECT_EQ(more->finish, "context");
    EXPECT_EQ(more->n_eval, 0);
    EXPECT_EQ(ctx->n_past(), past);
}

TEST_F(Chat, DecodeEvictingPolicyKeepsMemoryBounded) {
    auto ctx = context(2048, "streaming:budget=48");
    ASSERT_TRUE(ctx);
    auto chat = ChatSession::create(*ctx, options(12));
    ASSERT_TRUE(chat.ok());
    const KvStats s0 = ctx->kv_stats();
    const int64_t cap = int64_t(s0.n_layer) * s0.n_head_kv * (48 + 64 + 1);  // budget + decode slack
    int64_t bytes_at_5 = 0;
    for (int t = 0; t < 12; ++t) {
        auto r = (*chat)->turn("Tell me about turn number " + std::to_string(t) + ".", {});
        ASSERT_TRUE(r.ok()) << r.status().to_string();
        ASSERT_NE(r->finish, "context");
        EXPECT_LE(ctx->kv_stats().slots_total, cap);
        if (t == 5) bytes_at_5 = ctx->kv_stats().bytes_reserved;
    }
    EXPECT_GT(ctx->n_past(), 48 * 3);  // far more tokens than the budget went through
    EXPECT_LE(ctx->kv_stats().bytes_reserved, bytes_at_5);  // flat: no growth after the first turns
}

TEST_F(Chat, NeedsARenderableTemplate) {
    auto ctx = context(64);
    ASSERT_TRUE(ctx);
    ChatOptions o = options(4);
    o.family = ChatFamily::kNone;
    auto c = ChatSession::create(*ctx, o);
    ASSERT_FALSE(c.ok());
    EXPECT_NE(c.status().message().find("--chat-template"), std::string::npos);
}

}  // namespace
}  // namespace hkv::server
