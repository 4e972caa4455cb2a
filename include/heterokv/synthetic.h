// heterokv/synthetic.h — GGUF models with deterministic synthetic weights (`heterokv make-model`),
// for speed and memory work at realistic shapes and for small test models.
//
// Weights are drawn from a counter-based generator keyed by (seed, tensor name, element index), so a
// file is the same bit for bit on every machine and thread count. Scales keep activations in range
// through any depth: projections into the residual stream are scaled by 1/sqrt(2 n_layer).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "heterokv/status.h"
#include "heterokv/tokenizer.h"

namespace hkv {

struct SynthShape {
    std::string preset;       // e.g. "llama-3.2-1b"
    std::string arch;         // a supported architecture: llama, qwen2, qwen3, gemma2, gemma3, phi3
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
    // ---- the other architectures; zero = not written / the default ----
    int32_t head_dim = 0;     // attention.key_length; 0 = n_embd / n_head
    int32_t n_rot = 0;        // rope.dimension_count; 0 = head_dim (partial RoPE otherwise)
    int32_t n_swa = 0;        // attention.sliding_window (mistral, gemma, phi3)
    float rope_linear = 0.0f; // rope.scaling.type linear with this factor (gemma3 4B+)
    int32_t n_ctx_orig = 0;   // phi3 LongRoPE: rope.scaling.original_context_length, factors and attn_factor
    float attn_softcap = 0.0f, final_softcap = 0.0f;  // gemma2 soft-capping values
    std::string vocab_style;  // "gemma" or "phi3": the family's chat tokens and settings
    std::string chat_style;   // "chatml", "gemma", "phi3", "mistral": a minimal chat template of the family
                              // written when the tokenizer has none (synth_chat_template)
};

// Named presets: smollm2-135m, qwen2.5-0.5b, llama-3.2-1b, llama-3.1-8b, qwen3-0.6b, qwen3-4b,
// gemma2-2b, gemma3-1b, gemma3-4b, phi-3.5-mini, mistral-7b (shapes from the published configs), and
// the small test shapes tiny-llama, tiny-qwen2, tiny-llama3 (untied output, Llama-3 rope_freqs),
// tiny-qwen3, tiny-gemma2, tiny-gemma3, tiny-phi3, tiny-mistral (sliding windows shorter than the
// test prompts). Unknown name: kNotFound listing the names.
Expected<SynthShape> synth_preset(const std::string& name);
std::vector<std::string> synth_preset_names();

// Weight types a synthetic file can have (values: GGML type ids). The K-quants and IQ4 types are
// mixes as llama.cpp's Q*_K_M / IQ4 files: the output and embedding matrices are q6_K, and rows whose
// length is not a multiple of 256 fall back as llama.cpp does (q2_K, q3_K, iq4_xs -> iq4_nl,
// q4_K -> q5_0, q6_K -> q8_0).
enum class SynthType : uint32_t {
    kF32 = 0, kF16 = 1, kQ8_0 = 8, kQ2_K = 10, kQ3_K = 11, kQ4_K = 12, kIQ4_NL = 20, kIQ4_XS = 23,
};
// "f32", "f16", "q8_0", "q2_k", "q3_k", "q4_k", "iq4_nl", "iq4_xs" (any case). Error
// (kInvalidArgument): "'<name>': expected f32, f16, q8_0, q2_k, q3_k, q4_k, iq4_nl or iq4_xs".
Expected<SynthType> synth_type_parse(std::string_view name);

struct SynthOptions {
    SynthType weight_type = SynthType::kQ8_0;
    uint64_t seed = 1;
    int32_t n_threads = 0;    // threads for quantization; 0 = all hardware threads
    // Called after each tensor with (tensors done, total, bytes written so far).
    std::function<void(size_t, size_t, uint64_t)> progress;
};

// Number of bytes the file's tensors will have (metadata excluded).
uint64_t synth_weight_bytes(const SynthShape& shape, SynthType weight_type);

// Writes the model to `path` with `tok` as its tokenizer (padded to shape.n_vocab).
Status synth_model_write(const SynthShape& shape, const TokenizerData& tok, const SynthOptions& opt,
                         const std::string& path);

}  // namespace hkv
