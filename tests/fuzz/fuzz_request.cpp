// tests/fuzz/fuzz_request.cpp — libFuzzer target: the server's request parser and chat rendering.
// Any input must give a CompletionRequest or an error Status; never a crash, a hang or a leak.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "server/chat_template.h"
#include "server/request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace hkv::server;
    if (size == 0) return 0;
    // The first byte picks the endpoint; the rest is the body.
    const Endpoint ep = (data[0] & 1) ? Endpoint::kChat : Endpoint::kCompletions;
    const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
    RequestLimits lim;
    lim.max_body_bytes = 64 * 1024;
    auto r = parse_completion_request(body, ep, lim, 512);
    if (r.ok() && ep == Endpoint::kChat) {
        const ChatFamily f = static_cast<ChatFamily>(data[0] >> 1 & 7);
        auto text = chat_render(f <= ChatFamily::kGemma ? f : ChatFamily::kChatml, r->messages);
        (void)text;
    }
    return 0;
}
