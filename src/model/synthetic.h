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
    std::string arch;         // "llama" | "qwen2"
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
};

// Named presets: smollm2-135m, qwen2.5-0.5b, llama-3.2-1b, llama-3.1-8b, and the small test shapes
// tiny-llama, tiny-qwen2, tiny-llama3 (untied output, Llama-3 rope_freqs). Unknown name: kNotFound listing the names.
Expected<SynthShape> synth_preset(const std::string& name);
std::vector<std::string> synth_preset_names();

struct SynthOptions {
    DType weight_type = DType::kQ8_0;  // f32, f16, q8_0 or q4_K (q4_K: output/embedding q6_K, as Q4_K_M)
    uint64_t seed = 1;
    // Called after each tensor with (tensors done, total, bytes written so far).
    std::function<void(size_t, size_t, uint64_t)> progress;
};

// Number of bytes the file will have (approximately: metadata excluded).
uint64_t synth_weight_bytes(const SynthShape& shape, DType weight_type);

// Writes the model to `path` with `tok` as its tokenizer (padded to shape.n_vocab).
Status synth_model_write(const SynthShape& shape, const TokenizerData& tok, const SynthOptions& opt,
                         ThreadPool& pool, const std::string& path);

// The fallback llama.cpp uses when a row length is not a multiple of a K-quant's 256: q4_K -> q5_0,
// q6_K -> q8_0; other types unchanged.
DType synth_type_for_row(DType t, int64_t n_in);

}  // namespace hkv
