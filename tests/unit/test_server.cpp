// Server logic without sockets: request validation, chat templates, the text stream with stop
// strings, admission (slots, queue, KV budget) and the KV estimate.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "model/synthetic.h"
#include "server/admission.h"
#include "server/chat_template.h"
#include "server/generate.h"
#include "server/metrics.h"
#include "server/request.h"

namespace hkv::server {
namespace {

Expected<CompletionRequest> parse(const std::string& body, Endpoint ep = Endpoint::kCompletions) {
    return parse_completion_request(body, ep, RequestLimits{}, 512);
}

// The request must fail with `code` and a message containing `needle`.
void expect_error(const std::string& body, const std::string& needle, Endpoint ep = Endpoint::kCompletions,
                  StatusCode code = StatusCode::kInvalidArgument) {
    auto r = parse(body, ep);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().code(), code) << body << " -> " << r.status().to_string();
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << body << " -> " << r.status().message();
}

TEST(ServerRequest, ParsesEveryField) {
    auto r = parse(R"({"model":"m","prompt":"hi","max_tokens":7,"temperature":0.5,"top_p":0.9,"top_k":5,
        "min_p":0.1,"repeat_penalty":1.1,"seed":42,"stream":true,"stream_options":{"include_usage":true},
        "stop":["a","bc"],"echo":true,"ignore_eos":true,"kv_policy":"snapkv:budget=64","n":1,"logprobs":null,
        "presence_penalty":0,"frequency_penalty":0.0,"user":"u","logit_bias":{},"suffix":null,"best_of":1})");
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->prompt, "hi");
    EXPECT_EQ(*r->max_tokens, 7);
    EXPECT_FLOAT_EQ(r->temperature, 0.5f);
    EXPECT_FLOAT_EQ(r->top_p, 0.9f);
    EXPECT_EQ(r->top_k, 5);
    EXPECT_FLOAT_EQ(r->min_p, 0.1f);
    EXPECT_FLOAT_EQ(r->repeat_penalty, 1.1f);
    EXPECT_EQ(*r->seed, 42u);
    EXPECT_TRUE(r->stream && r->include_usage && r->echo && r->ignore_eos);
    EXPECT_EQ(r->stop, (std::vector<std::string>{"a", "bc"}));
    EXPECT_EQ(r->kv_policy, "snapkv:budget=64");
}

TEST(ServerRequest, PromptForms) {
    auto tokens = parse(R"({"prompt":[1,2,511]})");
    ASSERT_TRUE(tokens.ok());
    EXPECT_TRUE(tokens->prompt_is_tokens);
    EXPECT_EQ(tokens->prompt_tokens, (std::vector<int32_t>{1, 2, 511}));
    auto one = parse(R"({"prompt":["text"]})");
    ASSERT_TRUE(one.ok());
    EXPECT_EQ(one->prompt, "text");
    expect_error(R"({"prompt":[1,512]})", "prompt[1]");
    expect_error(R"({"prompt":[1,-1]})", "prompt[1]");
    expect_error(R"({"prompt":[]})", "empty");
    expect_error(R"({"prompt":["a","b"]})", "one prompt", Endpoint::kCompletions, StatusCode::kUnsupported);
    expect_error(R"({"prompt":[[1]]})", "one prompt", Endpoint::kCompletions, StatusCode::kUnsupported);
    expect_error(R"({"prompt":5})", "'prompt' must be");
    expect_error(R"({"max_tokens":5})", "'prompt' is required");
}

TEST(ServerRequest, TypeAndRangeErrorsNameTheField) {
    expect_error("{bad", "not valid JSON");
    expect_error("", "not valid JSON");
    expect_error("[1]", "JSON object");
    expect_error(R"({"prompt":"a","max_tokens":"5"})", "'max_tokens' must be an integer");
    expect_error(R"({"prompt":"a","max_tokens":1.5})", "'max_tokens' must be an integer");
    expect_error(R"({"prompt":"a","max_tokens":-1})", "'max_tokens' = -1 is out of range");
    expect_error(R"({"prompt":"a","max_tokens":99999999999})", "'max_tokens'");
    expect_error(R"({"prompt":"a","max_tokens":18446744073709551615})", "'max_tokens'");
    expect_error(R"({"prompt":"a","temperature":2.5})", "'temperature' = 2.5 is out of range");
    expect_error(R"({"prompt":"a","temperature":"hot"})", "'temperature' must be a number");
    expect_error(R"({"prompt":"a","top_p":0})", "'top_p' = 0 is out of range (0");
    expect_error(R"({"prompt":"a","top_p":1.01})", "'top_p'");
    expect_error(R"({"prompt":"a","top_k":-1})", "'top_k'");
    expect_error(R"({"prompt":"a","min_p":2})", "'min_p'");
    expect_error(R"({"prompt":"a","repeat_penalty":0})", "'repeat_penalty'");
    expect_error(R"({"prompt":"a","seed":"x"})", "'seed' must be an integer");
    expect_error(R"({"prompt":"a","stream":1})", "'stream' must be a boolean");
    expect_error(R"({"prompt":"a","stream_options":{"include_usage":true}})", "only allowed with");
    expect_error(R"({"prompt":"a","stream":true,"stream_options":{"x":true}})", "stream_options.x");
    expect_error(R"({"prompt":"a","stop":["a","b","c","d","e"]})", "'stop' has 5 strings");
    expect_error(R"({"prompt":"a","stop":[""]})", "empty string");
    expect_error(R"({"prompt":"a","stop":[1]})", "'stop' must be a string");
    expect_error(R"({"prompt":"a","stop":{}})", "'stop' must be");
    expect_error(R"({"prompt":"a","kv_policy":7})", "'kv_policy' must be a string");
    expect_error(R"({"prompt":"a","tempreture":1})", "'tempreture': unknown field");
    expect_error(R"({"prompt":"a","n":2})", "one choice", Endpoint::kCompletions, StatusCode::kUnsupported);
    expect_error(R"({"prompt":"a","logprobs":5})", "logprobs", Endpoint::kCompletions, StatusCode::kUnsupported);
    expect_error(R"({"prompt":"a","presence_penalty":1})", "presence_penalty", Endpoint::kCompletions,
                 StatusCode::kUnsupported);
    expect_error(R"({"prompt":"a","presence_penalty":3})", "out of range");
    expect_error(R"({"prompt":"a","logit_bias":{"1":5}})", "logit_bias", Endpoint::kCompletions,
                 StatusCode::kUnsupported);
    expect_error(R"({"prompt":"a","echo":"yes"})", "'echo' must be a boolean");
}

TEST(ServerRequest, ChatMessages) {
    auto r = parse(R"({"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"a"},
        {"type":"text","text":"b"}]},{"role":"developer","content":"d","name":"x"}],"max_completion_tokens":3})",
                   Endpoint::kChat);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    ASSERT_EQ(r->messages.size(), 3u);
    EXPECT_EQ(r->messages[1].content, "ab");
    EXPECT_EQ(r->messages[2].role, "system");
    EXPECT_EQ(*r->max_tokens, 3);
    expect_error(R"({"messages":[]})", "empty", Endpoint::kChat);
    expect_error(R"({"messages":"hi"})", "'messages' must be an array", Endpoint::kChat);
    expect_error(R"({"messages":[{"role":"bot","content":"x"}]})", "messages[0].role", Endpoint::kChat);
    expect_error(R"({"messages":[{"content":"x"}]})", "messages[0].role' is missing", Endpoint::kChat);
    expect_error(R"({"messages":[{"role":"user"}]})", "content' is missing", Endpoint::kChat);
    expect_error(R"({"messages":[{"role":"user","content":5}]})", "messages[0].content", Endpoint::kChat);
    expect_error(R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})", "text", Endpoint::kChat,
                 StatusCode::kUnsupported);
    expect_error(R"({"messages":[{"role":"user","content":"x","tool_calls":[]}]})", "tool_calls", Endpoint::kChat);
    expect_error(R"({"prompt":"x","messages":[{"role":"user","content":"x"}]})", "'prompt': unknown field",
                 Endpoint::kChat);
    expect_error(R"({"messages":[{"role":"user","content":"x"}],"echo":true})", "'echo': unknown", Endpoint::kChat);
}

TEST(ServerRequest, HugeAndDeepInputsAreRejectedCheaply) {
    RequestLimits lim;
    lim.max_body_bytes = 1000;
    auto big = parse_completion_request(std::string(2000, ' '), Endpoint::kCompletions, lim);
    ASSERT_FALSE(big.ok());
    EXPECT_NE(big.status().message().find("exceeds the limit"), std::string::npos);
    const std::string deep = std::string(100000, '[') + std::string(100000, ']');
    auto d = parse(deep);
    ASSERT_FALSE(d.ok());
    EXPECT_NE(d.status().message().find("nests deeper"), std::string::npos);
    EXPECT_EQ(json_depth(R"({"a":"[[[[", "b":[{}]})", 100), 3);
    lim = RequestLimits{};
    lim.max_prompt_bytes = 10;
    EXPECT_FALSE(parse_completion_request(R"({"prompt":"01234567890"})", Endpoint::kCompletions, lim).ok());
    lim.max_messages = 1;
    EXPECT_FALSE(parse_completion_request(R"({"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]})",
                                          Endpoint::kChat, lim).ok());
    lim = RequestLimits{};
    std::string many = R"({"prompt":[)";
    for (int i = 0; i < 2000; ++i) many += "1,";
    many += "1]}";
    lim.max_prompt_tokens = 1000;
    EXPECT_FALSE(parse_completion_request(many, Endpoint::kCompletions, lim).ok());
    const std::string long_stop = R"({"prompt":"a","stop":")" + std::string(300, 'x') + R"("})";
    expect_error(long_stop, "'stop' is longer than 256 bytes");
}

TEST(ChatTemplate, DetectsFamilies) {
    EXPECT_EQ(chat_family_detect(""), ChatFamily::kNone);
    EXPECT_EQ(chat_family_detect("{{ '<|im_start|>' + m.role }}"), ChatFamily::kChatml);
    EXPECT_EQ(chat_family_detect("<|start_header_id|>"), ChatFamily::kLlama3);
    EXPECT_EQ(chat_family_detect("[INST] <<SYS>>"), ChatFamily::kLlama2);
    EXPECT_EQ(chat_family_detect("[INST]"), ChatFamily::kMistral);
    EXPECT_EQ(chat_family_detect("<|user|>"), ChatFamily::kZephyr);
    EXPECT_EQ(chat_family_detect("<|user|> <|end|>"), ChatFamily::kPhi3);
    EXPECT_EQ(chat_family_detect("<start_of_turn>"), ChatFamily::kGemma);
    EXPECT_EQ(chat_family_detect("{{ messages }}"), ChatFamily::kUnknown);
    EXPECT_EQ(chat_family_from_name("llama3"), ChatFamily::kLlama3);
    EXPECT_EQ(chat_family_from_name("jinja"), ChatFamily::kUnknown);
    // Phi-3.5's template builds the role marker from the role name
    EXPECT_EQ(chat_family_detect("{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}"
                                 "{{ '<|assistant|>\\n' }}"),
              ChatFamily::kPhi3);
}

// The templates make-model writes for the issue-20 presets (Qwen3: ChatML, Gemma 2/3, Phi-3.5,
// Mistral) are recognised as their families.
TEST(ChatTemplate, DetectsTheSyntheticPresetsTemplates) {
    const std::pair<const char*, ChatFamily> want[] = {
        {"qwen3-0.6b", ChatFamily::kChatml}, {"qwen3-4b", ChatFamily::kChatml}, {"gemma2-2b", ChatFamily::kGemma},
        {"gemma3-1b", ChatFamily::kGemma},   {"gemma3-4b", ChatFamily::kGemma}, {"phi-3.5-mini", ChatFamily::kPhi3},
        {"mistral-7b", ChatFamily::kMistral}};
    for (const auto& [preset, family] : want) {
        auto shape = synth_preset(preset);
        ASSERT_TRUE(shape.ok()) << preset;
        EXPECT_EQ(chat_family_detect(synth_chat_template(shape->chat_style)), family) << preset;
    }
}

TEST(ChatTemplate, RendersEachFamily) {
    const std::vector<ChatMessage> m = {{"system", "S"}, {"user", "U1"}, {"assistant", "A1"}, {"user", "U2"}};
    auto r = [&](ChatFamily f) {
        auto s = chat_render(f, m);
        EXPECT_TRUE(s.ok()) << s.status().to_string();
        return s.ok() ? *s : std::string();
    };
    EXPECT_EQ(r(ChatFamily::kChatml),
              "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
              "<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n");
    EXPECT_EQ(r(ChatFamily::kLlama3),
              "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
              "U1<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nA1<|eot_id|><|start_header_id|>user"
              "<|end_header_id|>\n\nU2<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    EXPECT_EQ(r(ChatFamily::kLlama2), "[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST]");
    EXPECT_EQ(r(ChatFamily::kMistral), "[INST] S\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST]");
    EXPECT_EQ(r(ChatFamily::kZephyr), "<|system|>\nS</s>\n<|user|>\nU1</s>\n<|assistant|>\nA1</s>\n<|user|>\nU2</s>\n"
                                      "<|assistant|>\n");
    EXPECT_EQ(r(ChatFamily::kPhi3), "<|system|>\nS<|end|>\n<|user|>\nU1<|end|>\n<|assistant|>\nA1<|end|>\n<|user|>\n"
                                    "U2<|end|>\n<|assistant|>\n");
    EXPECT_EQ(r(ChatFamily::kGemma), "<start_of_turn>user\nS\n\nU1<end_of_turn>\n<start_of_turn>model\nA1<end_of_turn>\n"
                                     "<start_of_turn>user\nU2<end_of_turn>\n<start_of_turn>model\n");
    auto none = chat_render(ChatFamily::kNone, m);
    ASSERT_FALSE(none.ok());
    EXPECT_NE(none.status().message().find("no chat template"), std::string::npos);
    auto unknown = chat_render(ChatFamily::kUnknown, m);
    ASSERT_FALSE(unknown.ok());
    EXPECT_EQ(unknown.status().code(), StatusCode::kUnsupported);
    const std::vector<ChatMessage> only_sys = {{"system", "S"}};
    EXPECT_FALSE(chat_render(ChatFamily::kMistral, only_sys).ok());
}

// The messages' text is marked so that the tokenizer keeps special-token text in it plain.
TEST(ChatTemplate, MarksWhereTheMessagesAre) {
    const std::vector<ChatMessage> m = {{"system", "S"}, {"user", "U<|im_end|>"}, {"assistant", "A"}, {"user", "V"}};
    for (ChatFamily f : {ChatFamily::kChatml, ChatFamily::kLlama3, ChatFamily::kLlama2, ChatFamily::kMistral,
                         ChatFamily::kZephyr, ChatFamily::kPhi3, ChatFamily::kGemma}) {
        std::vector<std::pair<size_t, size_t>> spans;
        auto text = chat_render(f, m, &spans);
        ASSERT_TRUE(text.ok());
        EXPECT_EQ(*text, *chat_render(f, m)) << chat_family_name(f);  // the same text either way
        std::string joined;
        size_t prev_end = 0;
        for (auto [off, len] : spans) {
            EXPECT_GE(off, prev_end) << chat_family_name(f);  // sorted, not overlapping
            prev_end = off + len;
            joined += text->substr(off, len) + "|";
        }
        EXPECT_EQ(joined, "S|U<|im_end|>|A|V|") << chat_family_name(f);
    }
}

// A request's kv_policy may not name server files: file options must be the server's aliases.
TEST(ServerRequest, RequestPoliciesCannotNameFiles) {
    const std::vector<std::pair<std::string, std::string>> none, files = {{"small", "/srv/tax/small.json"}};
    EXPECT_EQ(*resolve_request_policy("snapkv:budget=64,window=8", none), "snapkv:budget=64,window=8");
    EXPECT_EQ(*resolve_request_policy("full", none), "full");
    EXPECT_EQ(*resolve_request_policy("heterocache:taxonomy=small,ratio=0.5", files),
              "heterocache:taxonomy=/srv/tax/small.json,ratio=0.5");
    for (const char* spec : {"heterocache:taxonomy=/etc/passwd", "heterocache:taxonomy=/dev/zero",
                             "heterocache:taxonomy=small", "heterocache:taxonomy=x.json"}) {
        auto r = resolve_request_policy(spec, none);
        ASSERT_FALSE(r.ok()) << spec;
        // the same answer whatever exists on the server
        EXPECT_NE(r.status().message().find(std::string(spec).find('/') != std::string::npos
                                                ? "words or numbers"
                                                : "must name one of the server's taxonomies"),
                  std::string::npos)
            << r.status().to_string();
    }
    EXPECT_FALSE(resolve_request_policy("heterocache:taxonomy=other", files).ok());
    EXPECT_FALSE(resolve_request_policy("../x", none).ok());
    EXPECT_FALSE(resolve_request_policy("snapkv:budget", none).ok());
    EXPECT_FALSE(resolve_request_policy("snapkv:budget=1,,window=2", none).ok());
    EXPECT_FALSE(resolve_request_policy("snapkv:budget=1 ", none).ok());
    auto ps = parse(R"({"prompt":"a","parse_special":true})");
    ASSERT_TRUE(ps.ok());
    EXPECT_TRUE(ps->parse_special);
    EXPECT_FALSE(parse(R"({"prompt":"a"})")->parse_special);
}

TEST(TextStream, HoldsBackStopPrefixesAndIncompleteUtf8) {
    TextStream s({"STOP", "\n\n"});
    EXPECT_EQ(s.push("abc"), "abc");
    EXPECT_EQ(s.push("ST"), "");      // could be the start of STOP
    EXPECT_EQ(s.push("x"), "STx");    // it was not
    EXPECT_EQ(s.push("\n"), "");
    EXPECT_EQ(s.push("y"), "\ny");
    EXPECT_EQ(s.push("1 ST"), "1 ");
    EXPECT_EQ(s.push("OP and more"), "");
    EXPECT_TRUE(s.stopped());
    EXPECT_EQ(s.push("later"), "");
    EXPECT_EQ(s.flush(), "");

    TextStream u({});
    EXPECT_EQ(u.push("a\xC3"), "a");  // first byte of a 2-byte sequence
    EXPECT_EQ(u.push("\xA9"), "\xC3\xA9");
    EXPECT_EQ(u.push("\xE2\x82"), "");
    EXPECT_EQ(u.push("\xAC!"), "\xE2\x82\xAC!");
    EXPECT_EQ(u.push("\xF0\x9F"), "");
    EXPECT_EQ(u.flush(), "\xF0\x9F");  // at the end whatever is left goes out
}

TEST(Admission, SlotsQueueAndBudget) {
    Admission a(AdmissionConfig{1, 1, 1000});
    auto never = a.acquire(2000, std::chrono::milliseconds(0));
    ASSERT_FALSE(never.ok());
    EXPECT_EQ(never.status().code(), StatusCode::kOutOfRange);
    auto l1 = a.acquire(600, std::chrono::milliseconds(0));
    ASSERT_TRUE(l1.ok());
    EXPECT_EQ(a.stats().active, 1);
    EXPECT_EQ(a.stats().reserved_bytes, 600);
    // The slot is taken: a waiter times out with 503-kind error.
    auto t = a.acquire(100, std::chrono::milliseconds(20));
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().code(), StatusCode::kOutOfMemory);
    // One waiter fits the queue; a second is rejected at once.
    std::thread waiter([&] {
        auto l2 = a.acquire(300, std::chrono::milliseconds(5000));
        EXPECT_TRUE(l2.ok());
    });
    while (a.stats().queued == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    auto full = a.acquire(1, std::chrono::milliseconds(1000));
    ASSERT_FALSE(full.ok());
    EXPECT_NE(full.status().message().find("queue"), std::string::npos);
    l1->release();
    waiter.join();
    EXPECT_EQ(a.stats().active, 0);
    EXPECT_EQ(a.stats().reserved_bytes, 0);
}

TEST(Admission, BudgetBlocksUntilMemoryIsFree) {
    Admission a(AdmissionConfig{2, 4, 1000});
    auto l1 = a.acquire(800, std::chrono::milliseconds(0));
    ASSERT_TRUE(l1.ok());
    auto t = a.acquire(300, std::chrono::milliseconds(20));  // a slot is free but not the memory
    EXPECT_FALSE(t.ok());
    auto l2 = a.acquire(200, std::chrono::milliseconds(0));
    EXPECT_TRUE(l2.ok());
    a.shutdown();
    EXPECT_FALSE(a.acquire(1, std::chrono::milliseconds(1000)).ok());
}

// Prompt reuse: a released lease's kept bytes stay counted until the slot is taken again (then the
// request's reservation covers them) or the room is needed (then the idle slot's context is dropped).
TEST(Admission, SlotActionsTakeTheirSlotNowOrSayWhy) {
    Admission a(AdmissionConfig{2, 4, 1000});
    std::vector<int32_t> dropped;
    a.set_drop_kept([&](int32_t s) { dropped.push_back(s); });
    auto l0 = a.acquire_slot(0, 300);  // a restore: its bytes, then kept
    ASSERT_TRUE(l0.ok()) << l0.status().to_string();
    EXPECT_EQ(l0->slot(), 0);
    EXPECT_EQ(a.acquire_slot(0, 1).status().code(), StatusCode::kCancelled);  // busy: HTTP 409
    EXPECT_EQ(a.acquire_slot(2, 1).status().code(), StatusCode::kInvalidArgument);
    l0->keep(300);
    l0->release();
    EXPECT_EQ(a.stats().kept_bytes, 300);
    auto save = a.acquire_slot(0, -1);  // a save: what the slot keeps, kept again after
    ASSERT_TRUE(save.ok());
    EXPECT_EQ(save->bytes(), 300);
    EXPECT_EQ(a.stats().kept_bytes, 0);
    EXPECT_EQ(a.stats().reserved_bytes, 300);
    save->keep(300);
    save->release();
    EXPECT_EQ(a.stats().kept_bytes, 300);
    // slot 1 restoring 800 bytes: slot 0's kept context makes room
    auto l1 = a.acquire_slot(1, 800);
    ASSERT_TRUE(l1.ok());
    EXPECT_EQ(dropped, std::vector<int32_t>{0});
    EXPECT_EQ(a.acquire_slot(0, 300).status().code(), StatusCode::kOutOfMemory);  // no room now
}

TEST(Admission, KeptContextsCountUntilTakenOrDropped) {
    Admission a(AdmissionConfig{2, 4, 1000});
    std::vector<int32_t> dropped;
    a.set_drop_kept([&](int32_t s) { dropped.push_back(s); });
    auto l1 = a.acquire(600, std::chrono::milliseconds(0));
    ASSERT_TRUE(l1.ok());
    const int32_t s1 = l1->slot();
    l1->keep(500);
    l1->release();
    EXPECT_EQ(a.stats().kept_bytes, 500);
    EXPECT_EQ(a.stats().reserved_bytes, 0);
    // The preferred slot is taken back: its kept bytes become part of the new reservation.
    auto l2 = a.acquire(700, std::chrono::milliseconds(0), s1);
    ASSERT_TRUE(l2.ok());
    EXPECT_EQ(l2->slot(), s1);
    EXPECT_EQ(a.stats().kept_bytes, 0);
    l2->keep(400);
    l2->release();
    // Without a preference the free slot keeping nothing is chosen, and 700 bytes fit only once the
    // 400 kept bytes of the other idle slot are dropped.
    auto l3 = a.acquire(700, std::chrono::milliseconds(0));
    ASSERT_TRUE(l3.ok());
    EXPECT_NE(l3->slot(), s1);
    EXPECT_EQ(dropped, std::vector<int32_t>{s1});
    EXPECT_EQ(a.stats().kept_bytes, 0);
    EXPECT_EQ(a.stats().reserved_bytes, 700);
    l3->keep(5000);  // never more than the lease's own bytes
    l3->release();
    EXPECT_EQ(a.stats().kept_bytes, 700);
}

TEST(Metrics, PrometheusText) {
    Metrics m;
    m.on_request("/v1/completions", 200, 0.3);
    m.on_request("/v1/completions", 503, 0.01);
    m.add_tokens(5, 7);
    m.add_kv_in_use(4096);
    const std::string t = m.render(MetricsGauges{2, 1, 3, 0, 100, 5});
    EXPECT_NE(t.find("heterokv_requests_total{path=\"/v1/completions\",status=\"503\"} 1"), std::string::npos);
    EXPECT_NE(t.find("heterokv_request_duration_seconds_bucket{le=\"0.5\"} 2"), std::string::npos);
    EXPECT_NE(t.find("heterokv_request_duration_seconds_bucket{le=\"0.25\"} 1"), std::string::npos);
    EXPECT_NE(t.find("heterokv_generated_tokens_total 7"), std::string::npos);
    EXPECT_NE(t.find("heterokv_kv_bytes_in_use 4096"), std::string::npos);
    EXPECT_NE(t.find("heterokv_queue_length 3"), std::string::npos);
}

}  // namespace
}  // namespace hkv::server
