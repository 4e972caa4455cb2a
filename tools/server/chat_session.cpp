// server/chat_session.cpp — a conversation of many turns on one Context (see chat_session.h).
#include "server/chat_session.h"

#include <limits>

#include "heterokv/model.h"
#include "heterokv/tokenizer.h"
#include "server/generate.h"

namespace hkv::server {

Expected<std::unique_ptr<ChatSession>> ChatSession::create(Context& ctx, const ChatOptions& o) {
    if (o.family == ChatFamily::kNone) {
        return Status::invalid("the model has no chat template (GGUF key tokenizer.chat_template is absent); "
                               "give one with --chat-template FAMILY (%s)", chat_family_list().c_str());
    }
    if (o.family == ChatFamily::kUnknown) {
        return Status::invalid("the model's chat template is not one of the families heterokv renders (%s); "
                               "give one with --chat-template FAMILY", chat_family_list().c_str());
    }
    if (o.n_predict < -1) return Status::invalid("-n %d: expected >= -1", o.n_predict);
    HKV_ASSIGN_OR_RETURN(Sampler s, Sampler::create(o.sampler));
    std::unique_ptr<ChatSession> c(new ChatSession(ctx, o, std::move(s)));
    c->reset();
    return c;
}

void ChatSession::reset() {
    ctx_.reset();
    sampler_.reset();
    messages_.clear();
    if (!opt_.system.empty()) messages_.push_back({"system", opt_.system});
    pending_ = -1;
    tokens_.clear();
}

Status ChatSession::resume(std::vector<ChatMessage> messages, int32_t pending) {
    if (messages.empty() || messages.back().role != "assistant") {
        return Status::invalid("chat: a resumed conversation must end with the assistant's reply");
    }
    const Tokenizer& tok = model_tokenizer(ctx_.model());
    if (pending < -1 || pending >= tok.n_vocab()) return Status::invalid("chat: pending token %d", pending);
    if (ctx_.n_past() < 1) return Status::invalid("chat: the context holds no conversation");
    sampler_.reset();
    messages_ = std::move(messages);
    pending_ = pending;
    tokens_.clear();
    return Status();
}

Expected<std::vector<int32_t>> ChatSession::turn_tokens(std::string_view text) const {
    const Tokenizer& tok = model_tokenizer(ctx_.model());
    using Ranges = std::vector<std::pair<size_t, size_t>>;
    auto encode = [&](std::string_view s, bool bos, const Ranges& literal) {
        return opt_.parse_special ? tok.encode(s, bos, true) : tok.encode(s, bos, literal);
    };
    std::vector<ChatMessage> next = messages_;
    next.push_back({"user", std::string(text)});
    Ranges next_content;
    HKV_ASSIGN_OR_RETURN(const std::string full, chat_render(opt_.family, next, &next_content));
    if (ctx_.n_past() == 0) return encode(full, true, next_content);  // the first turn, with BOS

    // The conversation so far, ending with the reply (whose text the context holds), and where
    // the reply's text ends in it: what follows is its closing markup, which the context lacks.
    Ranges prev_content;
    HKV_ASSIGN_OR_RETURN(const std::string prev, chat_render(opt_.family, messages_, &prev_content, false));
    if (full.compare(0, prev.size(), prev) != 0) {
        return Status::internal("chat: the %s format does not render turns incrementally",
                                chat_family_name(opt_.family));
    }
    size_t reply_end = prev.size();
    if (!messages_.back().content.empty() && !prev_content.empty()) {
        reply_end = prev_content.back().first + prev_content.back().second;
    } else {  // an empty reply: its markup starts after the previous turn's generation prompt
        const std::vector<ChatMessage> before(messages_.begin(), messages_.end() - 1);
        auto head = chat_render(opt_.family, before);
        if (head.ok() && prev.compare(0, head->size(), *head) == 0) reply_end = head->size();
    }
    const std::string closing = prev.substr(reply_end);
    const std::string delta = closing + full.substr(prev.size());
    Ranges literal;
    for (const auto& [off, len] : next_content) {
        if (off >= prev.size()) literal.emplace_back(off - prev.size() + closing.size(), len);
    }
    std::vector<int32_t> ids = encode(delta, false, literal);
    if (pending_ >= 0) ids.insert(ids.begin(), pending_);
    return ids;
}

Expected<ChatTurn> ChatSession::turn(std::string_view user, const std::function<bool(std::string_view)>& on_text) {
    const Tokenizer& tok = model_tokenizer(ctx_.model());
    ChatTurn r;
    HKV_ASSIGN_OR_RETURN(const std::vector<int32_t> ids, turn_tokens(user));
    // The turn's tokens and at least one sampled token must fit.
    if (ids.empty() || int64_t(ctx_.n_past()) + int64_t(ids.size()) >= int64_t(ctx_.n_ctx())) {
        r.finish = "context";
        return r;
    }
    HKV_TRY(ctx_.eval(ids));  // the turn's segment; a failed eval leaves the sequence as it was
    for (int32_t id : ids) sampler_.accept(id);
    tokens_.insert(tokens_.end(), ids.begin(), ids.end());
    r.n_eval = int32_t(ids.size());
    pending_ = -1;
    messages_.push_back({"user", std::string(user)});

    TextStream stream({});
    auto send = [&](const std::string& t) {
        r.reply += t;
        return t.empty() || !on_text || on_text(t);
    };
    const int32_t limit = opt_.n_predict < 0 ? std::numeric_limits<int32_t>::max() : opt_.n_predict;
    Status st;
    r.finish = "length";
    while (r.n_gen < limit) {
        const int32_t next = sampler_.sample(ctx_.logits());
        if (tok.is_eog(next)) {  // the closing markup of the next turn starts with it
            r.finish = "eog";
            break;
        }
        sampler_.accept(next);
        ++r.n_gen;
        pending_ = next;
        if (!send(stream.push(tok.token_to_piece(next, opt_.parse_special)))) {
            r.finish = "stopped";
            break;
        }
        if (r.n_gen == limit) break;
        if (ctx_.n_past() >= ctx_.n_ctx()) {
            r.finish = "context";
            break;
        }
        st = ctx_.eval({&next, 1});
        if (!st.ok()) break;
        tokens_.push_back(next);
        pending_ = -1;
    }
    send(stream.flush());
    messages_.push_back({"assistant", r.reply});
    if (!st.ok()) return st;
    // The next turn needs at least the reply's closing token and one more.
    if (int64_t(ctx_.n_past()) + 2 >= int64_t(ctx_.n_ctx())) r.finish = "context";
    return r;
}

}  // namespace hkv::server
