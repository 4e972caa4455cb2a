// End to end: heterokv's HTTP server on an ephemeral loopback port, in process, with stories260K.
// Completions (JSON and SSE), the 400 paths (malformed JSON, prompt longer than the context, a
// request that can never fit the KV budget), the 503 path (busy), chat without a template, client
// disconnect freeing the slot, /health, /v1/models, /metrics.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "heterokv/engine.h"
#include "heterokv/generate.h"
#include "server/http_server.h"
#include "server_test_util.h"
#include "test_util.h"

namespace hkv::server {
namespace {

using json = nlohmann::json;
using test::kModel;
using test::Running;

ServerOptions options() { return test::small_options(256); }

// Concatenated text of an SSE completion stream; checks the framing.
std::string sse_text(const std::string& body, json* usage, std::string* finish) {
    std::string text;
    size_t pos = 0;
    bool done = false;
    while (pos < body.size()) {
        const size_t end = body.find("\n\n", pos);
        EXPECT_NE(end, std::string::npos) << "unterminated event";
        if (end == std::string::npos) break;
        const std::string ev = body.substr(pos, end - pos);
        pos = end + 2;
        EXPECT_EQ(ev.rfind("data: ", 0), 0u) << ev;
        const std::string data = ev.substr(6);
        EXPECT_FALSE(done) << "data after [DONE]";
        if (data == "[DONE]") {
            done = true;
            continue;
        }
        const json j = json::parse(data);
        if (j.contains("usage")) *usage = j["usage"];
        if (j["choices"].empty()) continue;
        text += j["choices"][0]["text"].get<std::string>();
        if (!j["choices"][0]["finish_reason"].is_null()) *finish = j["choices"][0]["finish_reason"];
    }
    EXPECT_TRUE(done) << "no data: [DONE]";
    return text;
}

TEST(ServerHttp, CompletionJsonAndStreamAgree) {
    HKV_REQUIRE_SHARED(kModel);
    Running r(options());
    auto c = r.client();
    const std::string body = R"({"prompt":"Once upon a time","max_tokens":24,"temperature":0})";
    auto res = c.Post("/v1/completions", body, "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    const json j = json::parse(res->body);
    EXPECT_EQ(j["object"], "text_completion");
    EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(j["usage"]["completion_tokens"], 24);
    EXPECT_EQ(j["usage"]["total_tokens"], j["usage"]["prompt_tokens"].get<int>() + 24);
    const std::string text = j["choices"][0]["text"];
    EXPECT_EQ(text.rfind(", there was a little girl named Lily", 0), 0u) << text;

    auto s = c.Post("/v1/completions",
                    R"({"prompt":"Once upon a time","max_tokens":24,"temperature":0,"stream":true,
                        "stream_options":{"include_usage":true}})",
                    "application/json");
    ASSERT_TRUE(s);
    ASSERT_EQ(s->status, 200) << s->body;
    EXPECT_EQ(s->get_header_value("Content-Type"), "text/event-stream");
    json usage;
    std::string finish;
    EXPECT_EQ(sse_text(s->body, &usage, &finish), text);
    EXPECT_EQ(finish, "length");
    EXPECT_EQ(usage["completion_tokens"], 24);

    // A stop string ends the text before it, with finish_reason "stop".
    auto st = c.Post("/v1/completions", R"({"prompt":"Once upon a time","max_tokens":24,"temperature":0,"stop":["Lily"]})",
                     "application/json");
    ASSERT_TRUE(st);
    const json sj = json::parse(st->body);
    EXPECT_EQ(sj["choices"][0]["text"], ", there was a little girl named ");
    EXPECT_EQ(sj["choices"][0]["finish_reason"], "stop");

    // A compressed per-request policy holds fewer KV bytes than the full cache.
    auto full = c.Post("/v1/completions", R"({"prompt":"Once","max_tokens":200,"temperature":0,"ignore_eos":true})",
                       "application/json");
    auto comp = c.Post("/v1/completions", R"({"prompt":"Once","max_tokens":200,"temperature":0,"ignore_eos":true,
                       "kv_policy":"streaming:budget=32"})", "application/json");
    ASSERT_TRUE(full && comp);
    ASSERT_EQ(comp->status, 200) << comp->body;
    EXPECT_LT(json::parse(comp->body)["heterokv"]["kv_bytes"].get<int64_t>(),
              json::parse(full->body)["heterokv"]["kv_bytes"].get<int64_t>());
}

TEST(ServerHttp, ClientErrorsAre400WithMessages) {
    HKV_REQUIRE_SHARED(kModel);
    ServerOptions o = options();
    o.n_ctx = 64;
    o.kv_budget_bytes = 64 * 1024;
    Running r(o);
    auto c = r.client();
    auto bad = c.Post("/v1/completions", "{not json", "application/json");
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->status, 400);
    EXPECT_NE(json::parse(bad->body)["error"]["message"].get<std::string>().find("not valid JSON"), std::string::npos);

    std::string long_prompt;
    for (int i = 0; i < 100; ++i) long_prompt += "once upon a time ";
    auto too_long = c.Post("/v1/completions", json{{"prompt", long_prompt}}.dump(), "application/json");
    ASSERT_TRUE(too_long);
    EXPECT_EQ(too_long->status, 400);
    EXPECT_NE(too_long->body.find("the context holds 64"), std::string::npos) << too_long->body;

    auto over = c.Post("/v1/completions", R"({"prompt":"a","max_tokens":100})", "application/json");
    ASSERT_TRUE(over);
    EXPECT_EQ(over->status, 400);
    EXPECT_NE(over->body.find("exceeds the context of 64"), std::string::npos) << over->body;

    auto pol = c.Post("/v1/completions", R"({"prompt":"a","kv_policy":"nosuch:budget=3"})", "application/json");
    ASSERT_TRUE(pol);
    EXPECT_EQ(pol->status, 400);
    EXPECT_NE(pol->body.find("kv_policy"), std::string::npos) << pol->body;

    auto chat = c.Post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"hi"}]})", "application/json");
    ASSERT_TRUE(chat);
    EXPECT_EQ(chat->status, 400);
    EXPECT_NE(chat->body.find("no chat template"), std::string::npos) << chat->body;

    auto nf = c.Get("/v2/nothing");
    ASSERT_TRUE(nf);
    EXPECT_EQ(nf->status, 404);
    EXPECT_TRUE(json::parse(nf->body).contains("error"));

    // The KV budget of 64 KiB holds a short request of the full cache but never a 64 KiB one:
    // stories260K is 5 layers x 4 KV heads x head_dim 8, f16 pages of 64 slots = 2 KiB K+V each
    // and 256 bytes of positions.
    ServerOptions tiny = o;
    tiny.kv_budget_bytes = 30 * 1024;  // less than one page per head (45 KiB)
    Running r2(tiny);
    auto c2 = r2.client();
    auto never = c2.Post("/v1/completions", R"({"prompt":"a","max_tokens":4})", "application/json");
    ASSERT_TRUE(never);
    EXPECT_EQ(never->status, 400);
    EXPECT_NE(never->body.find("KV cache"), std::string::npos) << never->body;
}

TEST(ServerHttp, BusyIs503AndDisconnectFreesTheSlot) {
    HKV_REQUIRE_SHARED(kModel);
    Running r(options());  // one slot, no queue
    const std::string long_req = R"({"prompt":"Once","max_tokens":250,"ignore_eos":true,"stream":true})";
    bool saw_503 = false;
    for (int attempt = 0; attempt < 20 && !saw_503; ++attempt) {
        // A streaming client that reads slowly keeps the slot while it generates.
        std::atomic<bool> release{false};
        std::thread slow([&] {
            auto c = r.client();
            httplib::Request q;
            q.method = "POST";
            q.path = "/v1/completions";
            q.body = long_req;
            q.set_header("Content-Type", "application/json");
            q.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
                while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
                return false;  // disconnect after the first chunk
            };
            c.send(q);
        });
        auto c = r.client();
        for (int i = 0; i < 500; ++i) {
            auto h = c.Get("/health");
            if (h && json::parse(h->body)["slots_active"] == 1) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        auto busy = c.Post("/v1/completions", R"({"prompt":"a","max_tokens":2})", "application/json");
        ASSERT_TRUE(busy);
        if (busy->status == 503) {
            saw_503 = true;
            EXPECT_EQ(busy->get_header_value("Retry-After"), "1");
            EXPECT_NE(busy->body.find("server busy"), std::string::npos) << busy->body;
        }
        release = true;
        slow.join();
    }
    EXPECT_TRUE(saw_503);
    // The disconnected stream released its slot: a new request is served.
    auto c = r.client();
    int status = 0;
    for (int i = 0; i < 500 && status != 200; ++i) {
        auto ok = c.Post("/v1/completions", R"({"prompt":"a","max_tokens":2})", "application/json");
        status = ok ? ok->status : 0;
        if (status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(status, 200);
    auto m = c.Get("/metrics");
    ASSERT_TRUE(m);
    EXPECT_NE(m->body.find("heterokv_requests_total{path=\"/v1/completions\",status=\"503\"}"), std::string::npos);
    EXPECT_NE(m->body.find("heterokv_kv_bytes_in_use 0"), std::string::npos) << m->body;
    EXPECT_NE(m->body.find("heterokv_slots_active 0"), std::string::npos);
}

TEST(ServerHttp, ChatWithForcedTemplateAndModels) {
    HKV_REQUIRE_SHARED(kModel);
    ServerOptions o = options();
    o.chat_template = "chatml";
    Running r(o);
    auto c = r.client();
    auto res = c.Post("/v1/chat/completions",
                      R"({"messages":[{"role":"user","content":"Tell a story"}],"max_tokens":8,"temperature":0})",
                      "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    const json j = json::parse(res->body);
    EXPECT_EQ(j["object"], "chat.completion");
    EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
    EXPECT_EQ(j["usage"]["completion_tokens"], 8);
    auto s = c.Post("/v1/chat/completions",
                    R"({"messages":[{"role":"user","content":"Tell a story"}],"max_tokens":8,"temperature":0,"stream":true})",
                    "application/json");
    ASSERT_TRUE(s);
    EXPECT_NE(s->body.find("\"role\":\"assistant\""), std::string::npos);
    EXPECT_NE(s->body.find("chat.completion.chunk"), std::string::npos);
    EXPECT_EQ(s->body.substr(s->body.size() - 14), "data: [DONE]\n\n");
    auto models = c.Get("/v1/models");
    ASSERT_TRUE(models);
    EXPECT_EQ(json::parse(models->body)["data"][0]["meta"]["chat_template"], "chatml");
}

// Issue 16: prompt-only policies keep every generated token. A 30-token prompt generating 450
// tokens under snapkv / pyramidkv / adakv budget 64 was refused mid-generation (503 "cache limit
// reached") by a reservation that assumed the budget held; the engine's kv_bytes_bound reserves what
// the policy really keeps. Every response reports kv_bytes within its kv_reserved_bytes (issue 24
// item 10: the reservation counts the position and score lanes too).
TEST(ServerHttp, PromptOnlyPoliciesGenerateLongWithinTheirReservation) {
    HKV_REQUIRE_SHARED(kModel);
    ServerOptions o = options();
    o.n_ctx = 512;
    Running r(o);
    auto c = r.client();
    std::string prompt;
    for (int i = 0; i < 7; ++i) prompt += "Once upon a time ";
    for (const char* policy : {"snapkv:budget=64", "pyramidkv:budget=64", "adakv:budget=64", "h2o:budget=64",
                               "streaming:budget=64", "full"}) {
        const json req = {{"prompt", prompt}, {"max_tokens", 450}, {"temperature", 0}, {"ignore_eos", true},
                          {"kv_policy", policy}};
        auto res = c.Post("/v1/completions", req.dump(), "application/json");
        ASSERT_TRUE(res);
        ASSERT_EQ(res->status, 200) << policy << ": " << res->body;
        const json j = json::parse(res->body);
        EXPECT_EQ(j["usage"]["prompt_tokens"], 30) << policy;
        EXPECT_EQ(j["usage"]["completion_tokens"], 450) << policy;
        const int64_t used = j["heterokv"]["kv_bytes"], reserved = j["heterokv"]["kv_reserved_bytes"];
        EXPECT_GT(used, 0) << policy;
        EXPECT_LE(used, reserved) << policy;
    }
}

// Issue 24 item 5: a prompt longer than -b is one eval() in the server, as in `heterokv run` (the
// engine chunks it), so compressing policies see one prompt end and the server's greedy text equals
// the public generate()'s. The server used to call eval() once per -b chunk: with -b 100 h2o, ems,
// snapkv and pyramidkv saw two segments and wrote other text.
TEST(ServerHttp, LongPromptUnderCompressionMatchesGenerate) {
    HKV_REQUIRE_SHARED(kModel);
    ServerOptions o = options();
    o.n_ctx = 512;
    o.n_batch = 100;
    Running r(o);
    auto c = r.client();
    auto model = model_load(kModel);
    ASSERT_TRUE(model.ok()) << model.status().to_string();
    const Tokenizer& tok = model_tokenizer(**model);
    const std::string prompt =
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her "
        "friend Tom. One day, they found a big red ball under a tree. Tom said, \"Let's play catch!\" Lily "
        "threw the ball high in the sky and laughed. Then a big dog ran to them and took the ball away. Lily "
        "and Tom ran after the dog, and the dog was happy to play with them.";
    const std::vector<int32_t> ids = tok.encode(prompt, true);
    ASSERT_GT(ids.size(), 120u);  // two chunks of -b 100, the first longer than the budgets
    const int32_t n_gen = 48;
    for (const char* policy : {"h2o:budget=48", "ems:budget=48", "snapkv:budget=48", "pyramidkv:budget=48"}) {
        const json req = {{"prompt", prompt}, {"max_tokens", n_gen}, {"temperature", 0}, {"ignore_eos", true},
                          {"kv_policy", policy}};
        auto res = c.Post("/v1/completions", req.dump(), "application/json");
        ASSERT_TRUE(res);
        ASSERT_EQ(res->status, 200) << policy << ": " << res->body;
        const std::string served = json::parse(res->body)["choices"][0]["text"];

        auto ctx = Context::create(*model, {.n_ctx = 512, .n_threads = 1, .n_batch = 100, .policy = policy});
        ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
        auto sampler = Sampler::create({.temp = 0.0f});
        ASSERT_TRUE(sampler.ok());
        std::string text;
        ASSERT_TRUE(generate(**ctx, *sampler, ids, n_gen, true, [&](int32_t id) {
                        text += tok.token_to_piece(id);
                        return true;
                    }).ok());
        EXPECT_EQ(served, text) << policy;
    }
}

}  // namespace
}  // namespace hkv::server
