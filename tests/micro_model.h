// tests/micro_model.h — micro synthetic models for tests and fuzz targets that need a real forward
// pass without ../shared: a small SentencePiece-style vocabulary and 6-layer shapes of each
// architecture (test_arch.cpp, test_context_state.cpp, fuzz_state.cpp).
#pragma once

#include <cstdio>
#include <string>

#include "heterokv/synthetic.h"
#include "heterokv/tokenizer.h"

namespace hkv::test {

// <unk> <s> </s>, 256 byte tokens, a few pieces.
inline TokenizerData micro_vocab() {
    TokenizerData d;
    d.model = "llama";
    d.tokens = {"<unk>", "<s>", "</s>"};
    d.token_type = {int32_t(TokenAttr::kUnknown), int32_t(TokenAttr::kControl), int32_t(TokenAttr::kControl)};
    for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>", b);
        d.tokens.push_back(name);
        d.token_type.push_back(int32_t(TokenAttr::kByte));
    }
    for (const char* p : {"\xe2\x96\x81" "a", "\xe2\x96\x81" "b", "ab", "ba", "\xe2\x96\x81" "ab"}) {
        d.tokens.push_back(p);
        d.token_type.push_back(int32_t(TokenAttr::kNormal));
    }
    d.scores.assign(d.tokens.size(), 0.0f);
    d.bos_id = 1, d.eos_id = 2, d.unk_id = 0;
    d.add_bos = true;
    return d;
}

// Micro shape of an architecture: 6 layers of 64 wide, 2 query heads of 32 per KV head (1 or 2).
inline SynthShape micro_shape(const std::string& arch, int32_t n_head_kv = 1) {
    SynthShape s;
    s.preset = "micro-" + arch;
    s.arch = arch;
    s.n_vocab = 320, s.n_ctx = 512, s.n_embd = 64 * n_head_kv, s.n_layer = 6, s.n_head = 2 * n_head_kv;
    s.n_head_kv = n_head_kv, s.n_ff = 128;
    s.rope_base = 10000.0f, s.rms_eps = 1e-6f, s.tied = true, s.head_dim = 32;
    if (arch == "gemma2") s.n_swa = 8, s.attn_softcap = 4.0f, s.final_softcap = 8.0f, s.vocab_style = "gemma";
    if (arch == "gemma3") s.n_swa = 8, s.rope_linear = 8.0f, s.rope_base = 1000000.0f, s.vocab_style = "gemma";
    if (arch == "phi3") s.tied = false, s.n_ctx_orig = 64, s.n_rot = 16, s.vocab_style = "phi3";
    if (arch == "llama") s.n_swa = 8;  // Mistral-style window
    return s;
}

}  // namespace hkv::test
