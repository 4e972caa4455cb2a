// model/synthetic.h — GGUF models with deterministic synthetic weights, for speed and memory work
// at realistic shapes (no large model can be downloaded here) and for small test models.
//
// Weights are drawn from a counter-based generator keyed by (seed, tensor name, element index), so a
// file is the same bit for bit on every machine and thread count. Scales keep activations in range
// through any depth: projections into the residual stream are scaled by 1/sqrt(2 n_layer).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/thread_pool.h"
#include "heterokv/status.h"
#include "tokenizer/tokenizer.h"

namespace hkv {

struct SynthShape {
    std::string preset;       // e.g. "llama-3.2-1b"
    std::string arch;         // an architecture of arch_list() (model/model.h)
    int32_t n_vocab = 0;      // the tokenizer is padded with unused tokens up to this size
    int32_t n_ctx = 0;
    int32_t n_embd = 0;
    int32_t n_layer = 0;
    int32_t n_head = 0;
    int32_t n_head_kv = 0;
    int32_t n_ff = 0;
    float rope_base = 10000.0f;
    float rms_eps = 1e-5f;
    bool tied = true;         // no output.weight: the embedding is the output matrix
    float llama3_rope_factor = 0.0f;  // > 0: write Llama-3 rope_freqs (factor, low 1, high 4, orig 8192)
    // ---- the other architectures (issue 20); zero = not written / the default ----
    int32_t head_dim = 0;     // attention.key_length; 0 = n_embd / n_head
    int32_t n_rot = 0;        // rope.dimension_count; 0 = head_dim (phi-4-mini: partial RoPE)
    int32_t n_swa = 0;        // attention.sliding_window (mistral, gemma, phi3)
    float rope_linear = 0.0f; // rope.scaling.type linear with this factor (gemma3 4B+)
    int32_t n_ctx_orig = 0;   // phi3 LongRoPE: rope.scaling.original_context_length, factors and attn_factor
    float attn_softcap = 0.0f, final_softcap = 0.0f;  // gemma2 soft-capping values
    std::string vocab_style;  // "gemma" or "phi3": the family's chat tokens and settings (synth_vocab)
};

// Named presets: smollm2-135m, qwen2.5-0.5b, llama-3.2-1b, llama-3.1-8b, qwen3-0.6b, qwen3-4b,
// gemma2-2b, gemma3-1b, gemma3-4b, phi-3.5-mini, mistral-7b (shapes from the published configs), and
// the small test shapes tiny-llama, tiny-qwen2, tiny-llama3 (untied output, Llama-3 rope_freqs),
// tiny-qwen3, tiny-gemma2, tiny-gemma3, tiny-phi3, tiny-mistral (sliding windows shorter than the
// test prompts). Unknown name: kNotFound listing the names.
Expected<SynthShape> synth_preset(const std::string& name);
std::vector<std::string> synth_preset_names();

struct SynthOptions {
    // f32, f16, q8_0, or one of q2_K, q3_K, q4_K, iq4_nl, iq4_xs with the output/embedding matrix in
    // q6_K (as llama.cpp's Q*_K_M / IQ4 files); rows not a multiple of 256 fall back (synth_type_for_row).
    DType weight_type = DType::kQ8_0;
    uint64_t seed = 1;
    // Called after each tensor with (tensors done, total, bytes written so far).
    std::function<void(size_t, size_t, uint64_t)> progress;
};

// Number of bytes the file will have (approximately: metadata excluded).
uint64_t synth_weight_bytes(const SynthShape& shape, DType weight_type);

// Writes the model to `path` with `tok` as its tokenizer (padded to shape.n_vocab).
Status synth_model_write(const SynthShape& shape, const TokenizerData& tok, const SynthOptions& opt,
                         ThreadPool& pool, const std::string& path);

// The fallback llama.cpp uses when a row length is not a multiple of a K-quant's 256: q2_K, q3_K,
// iq4_xs -> iq4_nl, q4_K/q5_K -> q5_0, q6_K -> q8_0; other types unchanged.
DType synth_type_for_row(DType t, int64_t n_in);

// The vocabulary a preset writes: `tok` padded to shape.n_vocab, with the family's settings for
// shape.vocab_style — "gemma": <start_of_turn>/<end_of_turn> control tokens (end of turn = EOT) and,
// for a SentencePiece vocabulary, no leading space; "phi3": <unk>, <s>, </s> (when absent), <|endoftext|>,
// <|assistant|>, <|end|>, <|system|>, <|user|> control tokens (<|end|> = EOT). kInvalidArgument when tok is too large.
Expected<TokenizerData> synth_vocab(const SynthShape& shape, const TokenizerData& tok);

}  // namespace hkv
