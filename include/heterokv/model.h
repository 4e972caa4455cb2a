// heterokv/model.h — a loaded model: what it is (ModelInfo), its tensors, its tokenizer.
//
//   auto m = hkv::model_load("m.gguf");                // Expected<std::shared_ptr<const Model>>
//   hkv::ModelInfo info = hkv::model_info(**m);        // architecture, shape, vocab, context, ...
//   const hkv::Tokenizer& tok = hkv::model_tokenizer(**m);
//
// A Model is opaque here (its weights and the forward pass are the library's business). It is
// immutable after load and safe to share across threads and Contexts (heterokv/engine.h). Every
// function below is const and thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "heterokv/status.h"
#include "heterokv/tokenizer.h"

namespace hkv {

class Model;

// Opens, validates and maps a GGUF model. Only the metadata configures the model; every tensor the
// forward pass uses is checked for presence, shape and a supported type here, so a bad file is a
// one-line error naming the file and the problem (kNotFound, kIoError, kCorrupt, kUnsupported).
Expected<std::shared_ptr<const Model>> model_load(const std::string& path);

// What a model is: its GGUF metadata as the engine reads it, and sizes derived from its tensors.
struct ModelInfo {
    std::string arch;              // general.architecture: llama, qwen2, qwen3, gemma2, gemma3, phi3
    std::string name;              // general.name, may be empty
    int32_t n_vocab = 0;
    int32_t n_ctx_train = 0;       // <arch>.context_length
    int32_t n_embd = 0;
    int32_t n_layer = 0;
    int32_t n_head = 0;            // query heads
    int32_t n_head_kv = 0;         // KV heads (n_head / n_head_kv query heads share one: GQA)
    int32_t head_dim = 0;
    int32_t n_ff = 0;              // feed-forward width
    float rms_eps = 0.0f;
    bool qkv_bias = false;
    std::string rope_style;        // "norm" (llama) | "neox" (qwen2)
    int32_t rope_n_rot = 0;        // rotated dimensions per head
    float rope_freq_base = 0.0f;
    float rope_freq_scale = 0.0f;  // linear scaling factor
    bool rope_freq_factors = false;  // the file has per-frequency factors (Llama-3 rope_freqs)
    bool rope_longrope = false;    // the file has LongRoPE short/long factors (phi3)
    int32_t n_swa = 0;             // sliding-window attention width in positions; 0 = none
    int32_t n_swa_layers = 0;      // layers that use the sliding window (the others are global)
    float rope_swa_freq_base = 0.0f;  // RoPE base of the sliding-window layers
    float attn_softcap = 0.0f;     // > 0: attention score soft-cap (gemma2)
    float final_softcap = 0.0f;    // > 0: logit soft-cap (gemma2)
    int64_t weight_bytes = 0;      // bytes of every tensor the forward pass uses
    int64_t weight_bytes_decode = 0;  // bytes one decode step reads: every matrix once, the
                                      // embedding table only when it is also the output matrix
    std::string weight_types;      // tensor types and counts, e.g. "f32 x 61, q4_K x 154, q6_K x 29"
    bool tied_embeddings = false;  // no output.weight: the embedding table is the output matrix
    std::string chat_template;     // tokenizer.chat_template (Jinja source), may be empty
};

ModelInfo model_info(const Model& model);

// One tensor of the model's file, in file order.
struct TensorInfo {
    std::string name;              // e.g. "blk.0.attn_q.weight"
    std::string type;              // GGML type name: "f32", "f16", "q8_0", "q4_K", ...
    int64_t ne[4] = {1, 1, 1, 1};  // dimensions, ne[0] innermost (ggml order)
    int64_t n_bytes = 0;
};

std::vector<TensorInfo> model_tensors(const Model& model);

// The model's tokenizer (from its GGUF metadata); lives as long as the model.
const Tokenizer& model_tokenizer(const Model& model);

}  // namespace hkv
