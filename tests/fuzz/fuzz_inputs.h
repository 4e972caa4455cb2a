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
// fuzz_state_input: a saved context (Context::state_read, docs/saved-contexts.md) for one of the
//   contexts of fuzz_state_contexts() (a micro synthetic model written once to a temp file): the
//   first byte picks the context (% 3: full f32, h2o with a score lane on q8_0 rows, heterocache
//   with a cold tier on q4_0 rows), the rest is the file. A state that loads is continued by one decode step.
//   fuzz_state_seed writes a valid state of context i after a 24-token prompt and a few decode steps (the
//   committed corpus tests/fuzz/corpus/fuzz_state/ is made from it).
// Never a crash, a hang or a leak; every failure is a Status.
#pragma once

#include <cstdio>
#include <memory>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "heterokv/engine.h"
#include "heterokv/policy.h"
#include "heterokv/synthetic.h"
#include "micro_model.h"
#include "policy/heterocache.h"
#include "policy/heterocache_taxonomy.h"
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

// The contexts a fuzzed state is loaded into (built once; nullptr entries when the model could not
// be made).
inline std::vector<std::unique_ptr<Context>>& fuzz_state_contexts() {
    static std::vector<std::unique_ptr<Context>>* ctxs = [] {
        auto* v = new std::vector<std::unique_ptr<Context>>();
        // The taxonomy's path is part of the policy spec a saved state records: a fixed name (written
        // under a unique one and renamed, so concurrent processes never see half a file).
        const std::string base = "/tmp/hkv_fuzz_state_" + std::to_string(::getpid());
        const std::string tax = "/tmp/hkv_fuzz_state_structural_6x2.json";
        SynthOptions so;
        so.weight_type = SynthType::kF32;
        so.n_threads = 1;
        const bool wrote = synth_model_write(test::micro_shape("llama", 2), test::micro_vocab(), so, base + ".gguf").ok() &&
                           taxonomy_save(taxonomy_structural(6, 2), base + ".json").ok() &&
                           std::rename((base + ".json").c_str(), tax.c_str()) == 0;
        auto model = wrote ? model_load(base + ".gguf") : Expected<std::shared_ptr<const Model>>(Status::internal("no model"));
        const std::vector<std::string> specs = {"full", "h2o:budget=8,slack=2",
                                                "heterocache:taxonomy=" + tax + ",ratio=0.8,tau=1.01,window=2"};
        for (size_t i = 0; i < specs.size(); ++i) {
            ContextParams p;
            p.n_ctx = 64, p.n_threads = 1, p.n_batch = 16, p.kv_page_size = 8, p.policy = specs[i];
            p.kv_type = i == 0 ? KvType::kF32 : i == 1 ? KvType::kQ8_0 : KvType::kQ4_0;
            auto c = model.ok() ? Context::create(*model, p) : Expected<std::unique_ptr<Context>>(model.status());
            v->push_back(c.ok() ? std::move(*c) : nullptr);
        }
        std::remove((base + ".gguf").c_str());  // mapped: the model stays
        return v;
    }();
    return *ctxs;
}

// Returns true when the state loaded.
inline bool fuzz_state_input(const uint8_t* data, size_t size) {
    if (size < 1) return false;
    auto& ctxs = fuzz_state_contexts();
    Context* c = ctxs[data[0] % ctxs.size()].get();
    if (!c) return false;
    std::FILE* f = fmemopen(const_cast<uint8_t*>(data + 1), size - 1, "rb");
    if (!f) return false;
    const bool ok = size > 1 && c->state_read(f, size - 1).ok();
    std::fclose(f);
    if (ok && c->n_past() < c->n_ctx()) {
        const int32_t t = 3;
        (void)c->eval({&t, 1});
    }
    c->reset();
    return ok;
}

// A valid input for context i: [i][the state after a 24-token prompt and `steps` decode steps].
inline std::string fuzz_state_seed(size_t i, int steps) {
    Context* c = fuzz_state_contexts()[i].get();
    if (!c) return std::string();
    std::vector<int32_t> prompt{1};
    for (int32_t k = 1; k < 24; ++k) prompt.push_back(3 + (k * 37) % 300);
    c->reset();
    if (!c->eval(prompt).ok()) return std::string();
    for (int k = 0; k < steps; ++k) {
        const int32_t t = int32_t(std::max_element(c->logits().begin(), c->logits().end()) - c->logits().begin());
        if (!c->eval({&t, 1}).ok()) return std::string();
    }
    char* buf = nullptr;
    size_t len = 0;
    std::FILE* f = open_memstream(&buf, &len);
    if (!f) return std::string();
    const bool ok = c->state_write(f).ok();
    std::fclose(f);
    std::string out = ok ? std::string(1, char(i)) + std::string(buf, len) : std::string();
    std::free(buf);
    c->reset();
    return out;
}

}  // namespace hkv::fuzz
