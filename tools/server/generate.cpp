// server/generate.cpp — generation loop and stop strings (see generate.h).
#include "server/generate.h"

#include <algorithm>
#include <chrono>


namespace hkv::server {
namespace {

// Bytes at the end of s that start a UTF-8 sequence not yet complete (0..3).
size_t utf8_incomplete_tail(std::string_view s) {
    const size_t n = s.size();
    for (size_t back = 1; back <= std::min<size_t>(3, n); ++back) {
        const unsigned char c = static_cast<unsigned char>(s[n - back]);
        if ((c & 0xC0) == 0x80) continue;  // continuation byte: look further back
        size_t need = 1;
        if ((c & 0xE0) == 0xC0) need = 2;
        else if ((c & 0xF0) == 0xE0) need = 3;
        else if ((c & 0xF8) == 0xF0) need = 4;
        return need > back ? back : 0;
    }
    return 0;
}

}  // namespace

std::string TextStream::push(std::string_view piece) {
    if (stopped_) return {};
    pending_.append(piece);
    size_t first = std::string::npos;
    for (const std::string& s : stop_) first = std::min(first, pending_.find(s));
    if (first != std::string::npos) {
        std::string out = pending_.substr(0, first);
        pending_.clear();
        stopped_ = true;
        return out;
    }
    // Hold back the longest suffix that is a proper prefix of some stop string.
    size_t hold = 0;
    for (const std::string& s : stop_) {
        for (size_t len = std::min(s.size() - 1, pending_.size()); len > hold; --len) {
            if (pending_.compare(pending_.size() - len, len, s, 0, len) == 0) {
                hold = len;
                break;
            }
        }
    }
    size_t emit = pending_.size() - hold;
    emit -= utf8_incomplete_tail(std::string_view(pending_).substr(0, emit));
    std::string out = pending_.substr(0, emit);
    pending_.erase(0, emit);
    return out;
}

std::string TextStream::flush() {
    std::string out;
    out.swap(pending_);
    return stopped_ ? std::string() : out;
}

Status generate(Context& ctx, std::span<const int32_t> prompt, const GenParams& p, const GenHooks& hooks,
                GenResult* out) {
    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    const Tokenizer& tok = model_tokenizer(ctx.model());
    auto sampler = Sampler::create(p.sampler);
    if (!sampler.ok()) return sampler.status();
    out->n_prompt = int32_t(prompt.size());
    if (p.n_cached < 0 || size_t(p.n_cached) >= prompt.size() || ctx.n_past() != p.n_cached) {
        return Status::internal("generate: %d cached tokens for a prompt of %zu on a context of %d", p.n_cached,
                                prompt.size(), ctx.n_past());
    }
    // The prompt is one eval() call, as in `heterokv run` and hkv::generate: the engine chunks it
    // (ContextParams::n_batch) and the policy sees one prompt, so the text is the CLI's (issue 24
    // item 5). The client is polled before each chunk through the eval's cancel hook.
    // With prompt reuse only the tokens after the cached prefix are evaluated (a later segment).
    Status st = ctx.eval(
        prompt.subspan(size_t(p.n_cached)), nullptr,
        [&](int64_t, int64_t) { if (hooks.on_kv) hooks.on_kv(ctx.kv_bytes()); },
        [&] { return hooks.alive && !hooks.alive(); });
    if (st.code() == StatusCode::kCancelled) {
        out->finish_reason = "cancelled";
        return Status();
    }
    HKV_TRY(st);
    for (int32_t id : prompt) sampler->accept(id);

    TextStream stream(p.stop);
    auto send = [&](const std::string& text) {
        if (text.empty()) return true;
        out->text += text;
        return !hooks.on_text || hooks.on_text(text);
    };
    out->finish_reason = "length";
    while (out->n_gen < p.max_tokens && ctx.n_past() < ctx.n_ctx()) {
        if (hooks.alive && !hooks.alive()) {
            out->finish_reason = "cancelled";
            return Status();
        }
        const int32_t next = sampler->sample(ctx.logits());
        if (out->n_gen == 0) out->ttft_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        if (tok.is_eog(next) && !p.ignore_eos) {
            out->finish_reason = "stop";
            break;
        }
        sampler->accept(next);
        ++out->n_gen;
        out->tokens.push_back(next);
        if (!send(stream.push(tok.token_to_piece(next)))) {
            out->finish_reason = "cancelled";
            return Status();
        }
        if (stream.stopped()) {
            out->finish_reason = "stop";
            break;
        }
        if (out->n_gen == p.max_tokens || ctx.n_past() >= ctx.n_ctx()) break;
        HKV_TRY(ctx.eval({&next, 1}));
        if (hooks.on_kv) hooks.on_kv(ctx.kv_bytes());
    }
    if (!send(stream.flush())) out->finish_reason = "cancelled";
    return Status();
}

}  // namespace hkv::server
