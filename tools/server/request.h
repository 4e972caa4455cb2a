// server/request.h — OpenAI-style request bodies: parsing and validation, without sockets.
//
// parse_completion_request() turns the JSON body of POST /v1/completions or /v1/chat/completions
// into a CompletionRequest, checking every field's type and range against RequestLimits. Unknown
// fields are an error (so a misspelled option is not silently ignored), except a short list of
// OpenAI fields that are accepted when they carry their neutral value (see request.cpp).
// Errors are kInvalidArgument with a message that names the field (-> HTTP 400), or kUnsupported
// for a well-formed feature heterokv does not provide (n > 1, logprobs; -> HTTP 501).
// Pure functions; thread-safe; never throw.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "heterokv/status.h"

namespace hkv::server {

// Caps on untrusted input. The defaults are the server's; tests and the fuzzer use the same.
struct RequestLimits {
    size_t max_body_bytes = 1 << 20;     // whole request body
    int32_t max_depth = 32;              // JSON nesting
    size_t max_prompt_bytes = 1 << 20;   // prompt text / all message contents together
    int32_t max_prompt_tokens = 1 << 20; // prompt given as token ids
    int32_t max_messages = 256;          // chat messages
    int32_t max_stop = 4;                // stop strings (OpenAI's limit)
    size_t max_stop_bytes = 256;         // each stop string
    int32_t max_tokens = 1 << 20;        // upper bound of max_tokens (the context bounds it further)
    size_t max_string_bytes = 4096;      // model, user, kv_policy and other short strings
};

enum class Endpoint { kCompletions, kChat };

struct ChatMessage {
    std::string role;     // "system" | "user" | "assistant"
    std::string content;  // text (content parts of type "text" are concatenated)
};

struct CompletionRequest {
    Endpoint endpoint = Endpoint::kCompletions;
    std::string model;                      // informational; any value is accepted
    std::string prompt;                     // completions: text prompt
    std::vector<int32_t> prompt_tokens;     // completions: prompt given as token ids (then prompt is empty)
    bool prompt_is_tokens = false;
    std::vector<ChatMessage> messages;      // chat
    std::optional<int32_t> max_tokens;      // absent: completions 16 (as OpenAI), chat until the context ends
    float temperature = 1.0f;               // [0, 2]; 0 = greedy
    float top_p = 1.0f;                     // (0, 1]
    int32_t top_k = 0;                      // extension; 0 = off
    float min_p = 0.0f;                     // extension; [0, 1]
    float repeat_penalty = 1.0f;            // extension; (0, 10]
    std::optional<uint64_t> seed;           // absent: random
    bool stream = false;
    bool include_usage = false;             // stream_options.include_usage
    std::vector<std::string> stop;          // up to max_stop strings, none empty
    bool echo = false;                      // completions: prepend the prompt text to the output
    bool ignore_eos = false;                // extension
    bool parse_special = false;             // extension: special-token text in the prompt / message
                                            // content becomes control tokens (default: plain text)
    std::string kv_policy;                  // extension: policy spec for this request; empty = server's
    bool cache_prompt = true;               // extension (llama.cpp's): reuse the slot's cached prefix
};

// Parses and validates a request body. `n_vocab` bounds token ids in a token prompt (0 = unchecked).
Expected<CompletionRequest> parse_completion_request(std::string_view body, Endpoint endpoint,
                                                     const RequestLimits& limits, int32_t n_vocab = 0);

// A request's kv_policy spec made safe for the server: the spec must be "name" or
// "name:key=value,..." whose names and values are words or numbers ([A-Za-z0-9_.+-]); a file
// option (taxonomy=) must name one of `files` (the server's --taxonomy NAME=PATH aliases) and is
// replaced by its path. A request can therefore never make the server open a path of its choosing,
// and the error does not depend on what exists on the server. Errors: kInvalidArgument.
Expected<std::string> resolve_request_policy(std::string_view spec,
                                             const std::vector<std::pair<std::string, std::string>>& files);

// Maximum nesting depth of a JSON text (brackets outside strings), stopping early past `cap`.
// Used before parsing so that a deeply nested body is rejected cheaply.
int32_t json_depth(std::string_view text, int32_t cap);

}  // namespace hkv::server
