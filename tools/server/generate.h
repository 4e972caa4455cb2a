// server/generate.h — one request's generation on a Context and the text stream with stop
// strings. No sockets: the HTTP layer (http_server.cpp) and the tests drive these directly. A
// request's KV reservation is the engine's kv_bytes_bound (heterokv/engine.h).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "heterokv/engine.h"
#include "heterokv/status.h"
#include "heterokv/sampler.h"

namespace hkv::server {

// Turns generated token pieces into text that is safe to send: it never sends the beginning of a
// stop string before knowing whether the whole string follows, nor an incomplete UTF-8 sequence.
class TextStream {
public:
    explicit TextStream(std::vector<std::string> stop) : stop_(std::move(stop)) {}
    // Appends a piece; returns the text that can be sent now. When a stop string completes, the
    // text before it is returned, stopped() becomes true and the rest is dropped.
    std::string push(std::string_view piece);
    // Whatever is still held back at the end of the generation.
    std::string flush();
    bool stopped() const { return stopped_; }

private:
    std::vector<std::string> stop_;
    std::string pending_;
    bool stopped_ = false;
};

struct GenParams {
    int32_t max_tokens = 16;         // tokens to generate at most; the context's end also stops
    SamplerParams sampler;
    std::vector<std::string> stop;
    bool ignore_eos = false;
    int32_t n_cached = 0;            // the prompt's first tokens the context already holds (prompt
                                     // reuse): only the rest is evaluated
};

// Callbacks, all optional. on_text returns false when the client is gone (generation stops);
// alive is polled before each prefill chunk (the context's n_batch, through Context::eval's cancel
// hook) and before each decode step; on_kv receives the cache's bytes in use after each chunk and
// step.
struct GenHooks {
    std::function<bool(std::string_view text)> on_text;
    std::function<bool()> alive;
    std::function<void(int64_t bytes)> on_kv;
};

struct GenResult {
    std::string text;                    // everything sent through on_text, concatenated
    std::string finish_reason = "length";  // "stop" (end of generation or stop string), "length", "cancelled"
    int32_t n_prompt = 0;
    int32_t n_gen = 0;
    std::vector<int32_t> tokens;         // [n_gen] generated ids (the last one is not evaluated)
    double ttft_ms = 0.0;                // prefill + first sample
};

// Prefills `prompt` (after its first n_cached tokens, which the context holds: n_past() must equal
// n_cached) and generates. Errors: the context's (kOutOfMemory when the
// KV limit is hit, kOutOfRange past the context) and a Sampler parameter error.
Status generate(Context& ctx, std::span<const int32_t> prompt, const GenParams& params,
                const GenHooks& hooks, GenResult* out);

}  // namespace hkv::server
