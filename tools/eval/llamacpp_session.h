// tools/eval/llamacpp_session.h — writes a full-cache sequence as a llama.cpp session file, so
// that llama.cpp can continue from a context heterokv prefilled: its decode speed at a depth can be
// measured without its own (hours-long, on 2 cores) prefill of that depth, and its continuation
// compared with heterokv's on the same cache.
//
// The file is what `llama-completion --prompt-cache FILE` writes after a prompt (llama_state_save_file,
// session format version 11, single sequence, flash-attention layout — V not transposed):
//
//   u32 magic 'ggsn', u32 version 11, u32 n_tokens, i32 tokens[n_tokens]
//   u32 len, char arch[len]                          general.architecture
//   u32 n_stream = 1, u32 n_cells                    cells 0 .. n_cells-1
//   { i32 pos, u32 n_seq = 1, i32 seq = 0 } [n_cells]
//   u32 v_trans = 0, u32 n_layer, u64 0
//   K, then V: per layer { i32 ggml type, u64 row bytes, row[n_cells] }, row = [n_head_kv * head_dim]
//   of the K (V) type: f16/bf16/f32 values, or for q8_0 / q4_0 (-ctk / -ctv) each head's head_dim / 32
//   blocks back to back, which is llama.cpp's row of n_head_kv * head_dim values in those types
//
// The layout was read from llama.cpp's own files (build 11669) and is pinned by a model test against
// a session file that llama.cpp wrote (tests/golden). llama-completion replays the last token when
// the file holds one token more than it has cells, so a file with n_cells = n_tokens - 1 resumes at
// depth n_tokens with fresh logits (`-p ""` takes the prompt from the file).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "heterokv/engine.h"
#include "heterokv/status.h"
#include "heterokv/tokenizer.h"

namespace hkv::eval {

// Writes `path` from the KV of ctx's uncompressed sequence: every head must hold slots 0 .. n_cells-1
// at positions 0 .. n_cells-1 (kInvalidArgument otherwise, e.g. under a compressing policy); the
// cache type must be f32, f16 or bf16. tokens: [n_tokens], n_cells <= n_tokens. A failed write
// removes the partial file (when `path` is a regular file).
Status write_llamacpp_session(const std::string& path, const Context& ctx, std::span<const int32_t> tokens,
                              int32_t n_cells);

// The fill of a heterokv run that writes sessions, and the prompt text that times llama.cpp's prefill
// at a session's depth (bench --llamacpp-session, compare_llamacpp.sh --ref-from-hkv -p N). Random
// tokens would not survive decoding to text and back, so the fill is [BOS when the model adds one] +
// one word repeated, space-separated (the first pair of a few common words that the tokenizer
// encodes as one token each, however they repeat and meet; the first word may be a different token
// than the rest, as "the" and " the" are in a byte-level BPE). For depth d the text is the fill's
// first d - 1 tokens as words, then the second word n_prompt times: llama-completion matches the
// session's first d - 1 tokens (the session holds d - 1 cells), stops at the second word and
// evaluates the n_prompt new tokens at depth d - 1 (after its last matched token again: n_prompt + 1
// tokens from depth d - 2, as llama-completion build 11669 does), in llama.cpp as here (the same
// tokenizer).
struct SessionText {
    std::string word, word2;    // e.g. "the", "a"
    size_t n_bos = 0;           // 1 when the tokenizer adds BOS
    std::vector<int32_t> fill;  // [max_d]: the fill of every depth up to max_d

    // kInvalidArgument when no two candidate words qualify (or the tokenizer appends EOS).
    Status init(const Tokenizer& tok, int32_t max_d);
    // The pp prompt of depth d (2 <= d <= max_d, n_prompt >= 1; kInvalidArgument otherwise): kInternal
    // unless it tokenizes to fill[0, d - 1) followed by n_prompt tokens of which the first differs
    // from fill[d - 1] (so that llama.cpp's match with the session stops there).
    Expected<std::string> pp_text(const Tokenizer& tok, int32_t d, int32_t n_prompt) const;
};

}  // namespace hkv::eval
