// tests/fuzz/fuzz_inputs.h — what the fuzz targets do with one input, shared by the libFuzzer
// targets (fuzz_gguf.cpp, fuzz_request.cpp) and the corpus replay test (tests/unit/test_fuzz_corpus.cpp).
//
// fuzz_gguf_input: an input starting with "GGUF" is a file: GgufFile::from_memory, then
//   Model::from_gguf. An input starting with byte 0x01 is a mutation of a valid file:
//     [0x01][n][n records of 10 bytes: u8 tensor, u8 field, u64 value][GGUF bytes]
//   The file is parsed; if valid, each record rewrites one field of a tensor info in a copy (field
//   % 4: 0 type id = value % 48, 1 offset = value, 2 offset += int8(value) * alignment, 3 ne[0] =
//   value % 65536), and the copy is parsed and loaded again: wrong types, overlapping or moved
//   offsets and shapes behind a valid header must be refused cleanly.
// fuzz_request_input: the first byte selects what the rest is:
//   (b & 0xc0) == 0x40  raw HTTP bytes for RequestFramer, fed in pieces of 1 + b1 % 64 bytes
//                       (b1 = the second byte); a complete request's body then goes to the parser
//   (b & 0xc0) == 0x80  a request's kv_policy spec: resolve_request_policy (one alias offered),
//                       then policy_create on the result
//   otherwise           a request body for parse_completion_request (bit 0: chat endpoint), and
//                       for chat, chat_render with content ranges (bits 1-3: template family)
// Never a crash, a hang or a leak; every failure is a Status.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "heterokv/policy.h"
#include "model/gguf.h"
#include "model/model.h"
#include "server/chat_template.h"
#include "server/http_framer.h"
#include "server/request.h"

namespace hkv::fuzz {

// Byte positions of one tensor info's fields, found by walking the infos of a parsed file.
struct InfoPos {
    size_t ne0, type, offset;
};

inline std::vector<InfoPos> tensor_info_positions(const uint8_t* data, size_t size, const GgufFile& f) {
    std::vector<InfoPos> out;
    size_t pos = 24;  // magic, version, counts
    for (const GgufTensor& t : f.tensors()) {
        // [u64 len][name][u32 n_dims][u64 ne x n_dims][u32 type][u64 offset]
        std::string key(8 + t.name.size() + 4, '\0');
        const uint64_t len = t.name.size();
        const uint32_t nd = uint32_t(t.n_dims);
        std::memcpy(key.data(), &len, 8);
        std::memcpy(key.data() + 8, t.name.data(), t.name.size());
        std::memcpy(key.data() + 8 + t.name.size(), &nd, 4);
        const std::string_view hay(reinterpret_cast<const char*>(data), size);
        const size_t at = hay.find(key, pos);
        if (at == std::string_view::npos) return {};
        const size_t ne0 = at + key.size();
        const size_t type = ne0 + 8 * size_t(nd);
        if (type + 12 > size) return {};
        out.push_back({ne0, type, type + 4});
        pos = type + 12;
    }
    return out;
}

// Returns true when a model loaded.
inline bool fuzz_gguf_input(const uint8_t* data, size_t size) {
    auto load = [](const uint8_t* d, size_t n) {
        auto file = GgufFile::from_memory(d, n);
        if (!file.ok()) return false;
        return Model::from_gguf(std::move(file).value()).ok();
    };
    if (size < 2 || data[0] != 0x01) return load(data, size);
    const size_t n_rec = std::min<size_t>(data[1], 8);
    const size_t head = 2 + 10 * n_rec;
    if (size < head) return false;
    const uint8_t* gguf = data + head;
    const size_t gsize = size - head;
    auto file = GgufFile::from_memory(gguf, gsize);
    if (!file.ok() || (*file)->tensors().empty()) return false;
    const std::vector<InfoPos> at = tensor_info_positions(gguf, gsize, **file);
    if (at.empty()) return false;
    std::vector<uint8_t> copy(gguf, gguf + gsize);
    for (size_t r = 0; r < n_rec; ++r) {
        const uint8_t* rec = data + 2 + 10 * r;
        const InfoPos& p = at[rec[0] % at.size()];
        uint64_t v = 0;
        std::memcpy(&v, rec + 2, 8);
        switch (rec[1] % 4) {
            case 0: {
                const uint32_t type = uint32_t(v % 48);
                std::memcpy(&copy[p.type], &type, 4);
                break;
            }
            case 1: std::memcpy(&copy[p.offset], &v, 8); break;
            case 2: {
                uint64_t off = 0;
                std::memcpy(&off, &copy[p.offset], 8);
                off += uint64_t(int64_t(int8_t(v & 0xff)) * int64_t((*file)->alignment()));
                std::memcpy(&copy[p.offset], &off, 8);
                break;
            }
            default: {
                const uint64_t ne0 = v % 65536;
                std::memcpy(&copy[p.ne0], &ne0, 8);
                break;
            }
        }
    }
    return load(copy.data(), copy.size());
}

inline void fuzz_request_input(const uint8_t* data, size_t size) {
    using namespace hkv::server;
    if (size == 0) return;
    const uint8_t b = data[0];
    RequestLimits lim;
    lim.max_body_bytes = 64 * 1024;
    std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
    if ((b & 0xc0) == 0x40) {
        if (rest.empty()) return;
        const size_t step = 1 + size_t(uint8_t(rest[0])) % 64;
        rest.remove_prefix(1);
        FramerLimits fl;
        fl.max_head_bytes = 1024;
        fl.max_body_bytes = lim.max_body_bytes;
        RequestFramer fr(fl);
        for (int n = 0; n < 4 && !rest.empty(); ++n) {  // up to four pipelined requests
            while (!rest.empty() && !fr.done() && !fr.failed()) {
                rest.remove_prefix(fr.feed(rest.substr(0, step)));
            }
            if (!fr.done()) break;
            const std::string req = fr.take_request();
            const size_t body = req.find("\r\n\r\n");
            (void)parse_completion_request(std::string_view(req).substr(body + 4), Endpoint::kCompletions, lim, 512);
        }
        return;
    }
    if ((b & 0xc0) == 0x80) {
        const std::vector<std::pair<std::string, std::string>> files = {{"t", "/nonexistent/heterokv-fuzz.json"}};
        auto spec = resolve_request_policy(rest, files);
        if (spec.ok()) (void)policy_create(*spec);
        return;
    }
    const Endpoint ep = (b & 1) ? Endpoint::kChat : Endpoint::kCompletions;
    auto r = parse_completion_request(rest, ep, lim, 512);
    if (r.ok() && ep == Endpoint::kChat) {
        const ChatFamily f = static_cast<ChatFamily>(b >> 1 & 7);
        std::vector<std::pair<size_t, size_t>> content;
        (void)chat_render(f <= ChatFamily::kGemma ? f : ChatFamily::kChatml, r->messages, &content);
    }
}

}  // namespace hkv::fuzz
