// model/model.h — a loaded model: configuration from GGUF metadata, weights as views into the
// mapped file, and the tokenizer.
//
// Only the metadata configures the model (no name-based guesses). Architectures are registered in
// model/arch/<arch>.cpp; an architecture not registered there is a kUnsupported error. Every tensor
// the forward pass uses is checked for presence, shape and a supported type at load time, so the
// engine never meets a surprise. The Model is immutable after load and safe to share across threads.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/matmul.h"
#include "backend/cpu/ops.h"
#include "heterokv/status.h"
#include "model/gguf.h"
#include "tokenizer/tokenizer.h"

namespace hkv {

struct ModelConfig {
    std::string arch;              // "llama" | "qwen2"
    std::string name;              // general.name, may be empty
    int32_t n_vocab = 0;
    int32_t n_ctx_train = 0;       // <arch>.context_length
    int32_t n_embd = 0;
    int32_t n_layer = 0;
    int32_t n_head = 0;
    int32_t n_head_kv = 0;
    int32_t head_dim = 0;          // attention.key_length, else n_embd / n_head
    int32_t n_ff = 0;
    float rms_eps = 1e-5f;
    RopeParams rope;               // style, n_rot, base, scale (freq_factors set by the Model)
    bool qkv_bias = false;
};

// Per-architecture description (model/arch/*.cpp).
struct ArchSpec {
    const char* name;
    RopeStyle rope_style;
    bool qkv_bias;
};
// nullptr if `arch` is not supported.
const ArchSpec* arch_find(const std::string& arch);
// Names of all supported architectures, comma-separated (for error messages).
std::string arch_list();

struct LayerWeights {
    std::vector<float> attn_norm;  // [n_embd]
    WeightView wq;                 // [n_head * head_dim, n_embd]
    WeightView wk;                 // [n_head_kv * head_dim, n_embd]
    WeightView wv;                 // [n_head_kv * head_dim, n_embd]
    WeightView wo;                 // [n_embd, n_head * head_dim]
    std::vector<float> bq, bk, bv; // [n_head*head_dim], [n_head_kv*head_dim] x2; qwen2 only
    std::vector<float> ffn_norm;   // [n_embd]
    WeightView w_gate;             // [n_ff, n_embd]
    WeightView w_up;               // [n_ff, n_embd]
    WeightView w_down;             // [n_embd, n_ff]
};

class Model {
public:
    // Opens, validates and maps a GGUF model. Errors name the file and the problem.
    static Expected<std::unique_ptr<Model>> load(const std::string& path);
    // Same, from an already-opened GGUF (takes ownership).
    static Expected<std::unique_ptr<Model>> from_gguf(std::unique_ptr<GgufFile> file);

    const ModelConfig& config() const { return config_; }
    const Tokenizer& tokenizer() const { return *tokenizer_; }
    const GgufFile& gguf() const { return *file_; }

    const WeightView& tok_embd() const { return tok_embd_; }    // [n_vocab, n_embd]
    const std::vector<float>& output_norm() const { return output_norm_; }  // [n_embd]
    const WeightView& output() const { return output_; }        // [n_vocab, n_embd] (tied: == tok_embd)
    bool tied_embeddings() const { return tied_; }
    const std::vector<LayerWeights>& layers() const { return layers_; }
    size_t weight_bytes() const { return weight_bytes_; }       // bytes of all tensors used
    // "f32 x 61, q4_K x 154, q6_K x 29"
    const std::string& weight_type_summary() const { return summary_; }

private:
    Model() = default;
    Status init(std::unique_ptr<GgufFile> file);

    std::unique_ptr<GgufFile> file_;
    ModelConfig config_;
    std::unique_ptr<Tokenizer> tokenizer_;
    WeightView tok_embd_, output_;
    bool tied_ = false;
    std::vector<float> output_norm_;
    std::vector<float> rope_freqs_;  // [n_rot/2] or empty
    std::vector<LayerWeights> layers_;
    size_t weight_bytes_ = 0;
    std::string summary_;
};

}  // namespace hkv
