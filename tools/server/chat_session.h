// server/chat_session.h — a conversation of many turns on one Context (`heterokv chat`).
//
// Each turn renders the chat template (server/chat_template.h) incrementally and evaluates only the
// tokens the turn adds: the end of the previous reply (the template's closing markup, e.g.
// "<|im_end|>\n") and the new user message with the assistant's header. That eval is a new segment
// of the sequence (heterokv/policy.h, "The sequence contract"), so the conversation is never
// prefilled again and a policy that evicts keeps it bounded. The reply is sampled token by token;
// its last token (or the end-of-turn token) is evaluated at the start of the next turn.
//
//   auto chat = ChatSession::create(ctx, {.family = ChatFamily::kChatml, .system = "Be brief."});
//   auto r = (*chat)->turn("Hello", [](std::string_view text) { fputs(...); return true; });
//
// Not thread-safe (one per Context); the Context must outlive the session.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "heterokv/engine.h"
#include "heterokv/sampler.h"
#include "heterokv/status.h"
#include "server/chat_template.h"
#include "server/request.h"

namespace hkv::server {

struct ChatOptions {
    ChatFamily family = ChatFamily::kNone;  // a renderable family (kNone / kUnknown: create() fails)
    std::string system;                     // system prompt; empty = none
    int32_t n_predict = -1;                 // reply tokens at most; -1: until end of turn or a full context
    SamplerParams sampler;
    bool parse_special = false;             // special-token text in messages becomes control tokens
};

struct ChatTurn {
    std::string reply;       // the reply's text (what on_text received)
    int32_t n_eval = 0;      // tokens the turn evaluated before its reply (its new segment)
    int32_t n_gen = 0;       // reply tokens sampled
    // Why the reply ended: "eog" (end-of-turn token), "length" (n_predict), "stopped" (on_text
    // returned false), "context" (the context is full: the conversation cannot go on).
    std::string finish;
};

class ChatSession {
public:
    // Errors: kInvalidArgument for a family that cannot be rendered (the message says how to choose
    // one) or bad sampler parameters.
    static Expected<std::unique_ptr<ChatSession>> create(Context& ctx, const ChatOptions& options);

    // One user turn: evaluates the turn's new tokens, then samples the reply, passing its text to
    // on_text as it is generated (never an incomplete UTF-8 sequence; false stops the reply).
    // A turn that does not fit in the context changes nothing and ends with finish "context".
    // Errors: the context's (eval), a rendering error.
    Expected<ChatTurn> turn(std::string_view user, const std::function<bool(std::string_view)>& on_text);

    // Forgets the conversation (the context is reset; the system prompt stays).
    void reset();
    // Continues a conversation whose context was restored (Context::state_load): `messages` are the
    // turns so far (the last one the assistant's reply), `pending` the reply's last sampled token
    // not yet evaluated (-1: none, e.g. it ended with the end-of-turn token).
    Status resume(std::vector<ChatMessage> messages, int32_t pending);

    const std::vector<ChatMessage>& messages() const { return messages_; }
    int32_t pending() const { return pending_; }
    // The tokens the context holds, in order (after resume(): only those evaluated since).
    const std::vector<int32_t>& tokens() const { return tokens_; }
    Context& context() { return ctx_; }

private:
    ChatSession(Context& ctx, const ChatOptions& o, Sampler s) : ctx_(ctx), opt_(o), sampler_(std::move(s)) {}
    // The tokens that follow what the context holds for messages_ + {user, text}: the previous
    // reply's end and the new turn, up to the assistant's header.
    Expected<std::vector<int32_t>> turn_tokens(std::string_view text) const;

    Context& ctx_;
    ChatOptions opt_;
    Sampler sampler_;
    std::vector<ChatMessage> messages_;  // the system prompt (if any), then user / assistant turns
    int32_t pending_ = -1;               // last reply token, sampled but not evaluated
    std::vector<int32_t> tokens_;        // [n_past] what the context holds
};

}  // namespace hkv::server
