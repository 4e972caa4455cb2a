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
#include <cstdint>
#include <vector>

#include "backend/cpu/matmul.h"
#include "backend/cpu/ops.h"
#include "heterokv/status.h"
#include "model/gguf.h"
#include "tokenizer/tokenizer.h"

namespace hkv {

struct ModelConfig {
    std::string arch;              // one of arch_list()
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

    // ---- decoder features, set by the architecture (model/arch/*.cpp) ----
    bool qk_norm = false;          // RMSNorm of every Q and K head (weights [head_dim]) before RoPE
    bool post_norms = false;       // RMSNorm of the attention and FFN outputs before each residual add
    GluAct ffn_act = GluAct::kSilu;   // FFN act(gate·x) * (up·x): SwiGLU, or GeGLU (tanh GELU, gemma)
    float embd_scale = 0.0f;       // > 0: token embeddings are multiplied by this (gemma: sqrt(n_embd))
    float attn_scale = 0.0f;       // q·k scale; 0 = 1/sqrt(head_dim)
    float attn_softcap = 0.0f;     // > 0: attention scores s -> cap * tanh(s / cap) (gemma2)
    float final_softcap = 0.0f;    // > 0: logits l -> cap * tanh(l / cap) (gemma2)
    // Sliding-window attention: a layer with swa_layers[il] != 0 lets the query at position p see
    // the keys at positions p - n_swa < pos <= p only; the other layers are global (full causal).
    int32_t n_swa = 0;             // 0 = no sliding window anywhere
    std::vector<uint8_t> swa_layers;  // [n_layer]
    RopeParams rope_swa;           // RoPE of the sliding-window layers (gemma3: its own base, no scaling)
    // LongRoPE (phi3): frequency factors for a context up to n_ctx_orig (short) or beyond it (long),
    // chosen per context (rope_for_context); rope.attn_factor scales both.
    int32_t n_ctx_orig = 0;
    const float* rope_factors_short = nullptr;  // [n_rot/2] or null
    const float* rope_factors_long = nullptr;   // [n_rot/2] or null

    bool layer_swa(int32_t il) const { return n_swa > 0 && swa_layers[size_t(il)] != 0; }
    // The RoPE a context of n_ctx tokens uses on layer il.
    RopeParams rope_for(int32_t il, int32_t n_ctx) const;
};

struct LayerWeights;
class TensorLoader;

// Per-architecture description (model/arch/*.cpp).
struct ArchSpec {
    const char* name;
    RopeStyle rope_style;
    bool qkv_bias;
    // Reads the architecture's own hyperparameters into c (the common ones are already there) and
    // sets its decoder features; a value out of range or a feature not supported is an error.
    Status (*read_hparams)(const GgufFile& f, ModelConfig& c);
    // Finds and checks the tensors of layer il.
    Status (*load_layer)(TensorLoader& t, const ModelConfig& c, int32_t il, LayerWeights& L);
    // Optional: the family's tokenizer conventions that GGUF has no key for (phi3: special_rstrip).
    void (*tokenizer_fixup)(TokenizerData& td) = nullptr;
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
    std::vector<float> bq, bk, bv; // [n_head*head_dim], [n_head_kv*head_dim] x2; qkv_bias only
    std::vector<float> q_norm, k_norm;        // [head_dim] each; qk_norm only
    std::vector<float> attn_post_norm;        // [n_embd]; post_norms only
    std::vector<float> ffn_norm;   // [n_embd]
    WeightView w_gate;             // [n_ff, n_embd]
    WeightView w_up;               // [n_ff, n_embd]
    WeightView w_down;             // [n_embd, n_ff]
    std::vector<float> ffn_post_norm;         // [n_embd]; post_norms only
};

// Tensor lookups for the architecture files: each checks presence, exact shape and a supported
// type, with an error naming the tensor. Matrices are views into the mapped file; vectors are
// dequantized to f32.
class TensorLoader {
public:
    virtual ~TensorLoader() = default;
    virtual bool has(const std::string& name) const = 0;
    virtual Status matrix(const std::string& name, int64_t n_in, int64_t n_out, WeightView* out) = 0;
    virtual Status vector(const std::string& name, int64_t n, std::vector<float>* out) = 0;
};
// Rows [r0, r0 + n) of w as a view of its own (a fused QKV or gate/up matrix split without a copy).
WeightView weight_rows(const WeightView& w, int64_t r0, int64_t n);
// The llama layout of layer il: attn_norm, attn_q/k/v (+ biases when c.qkv_bias), attn_output,
// ffn_norm, ffn_gate, ffn_up, ffn_down. The other architectures start from it.
Status load_llama_layer(TensorLoader& t, const ModelConfig& c, int32_t il, LayerWeights& L);
// Reads <arch>.attention.sliding_window into c.n_swa (absent: 0 unless required).
Status read_sliding_window(const GgufFile& f, ModelConfig& c, bool required);
// Sets c.swa_layers from <arch>.attention.sliding_window_pattern: an integer n (layer il slides
// when il % n < n - 1, i.e. the last of every n layers is global) or one flag per layer; absent:
// the integer def. Requires c.n_swa > 0.
Status read_swa_pattern(const GgufFile& f, ModelConfig& c, int32_t def);

class Model {
public:
    // Opens, validates and maps a GGUF model. Errors name the file and the problem.
    static Expected<std::unique_ptr<Model>> load(const std::string& path);
    // Same, from an already-opened GGUF (takes ownership).
    static Expected<std::unique_ptr<Model>> from_gguf(std::unique_ptr<GgufFile> file);
    ~Model();

    const ModelConfig& config() const { return config_; }
    const Tokenizer& tokenizer() const { return *tokenizer_; }
    const GgufFile& gguf() const { return *file_; }

    const WeightView& tok_embd() const { return tok_embd_; }    // [n_vocab, n_embd]
    const std::vector<float>& output_norm() const { return output_norm_; }  // [n_embd]
    const WeightView& output() const { return output_; }        // [n_vocab, n_embd] (tied: == tok_embd)
    bool tied_embeddings() const { return tied_; }
    const std::vector<LayerWeights>& layers() const { return layers_; }
    size_t weight_bytes() const { return weight_bytes_; }       // bytes of all tensors used
    // Bytes of the matrices repacked at load into the x16 layout (backend/cpu/repack.h): q4_K, q6_K
    // and q8_0 matrices with a multiple of 16 rows, when the CPU has x16 kernels and HKV_REPACK is
    // not 0. They live in an anonymous mapping, and the file pages they came from are released, so
    // the resident weights do not double. 0 = every matrix reads the mapped file.
    size_t repacked_bytes() const { return repacked_size_; }
    // "f32 x 61, q4_K x 154, q6_K x 29"
    const std::string& weight_type_summary() const { return summary_; }

private:
    Model() = default;
    Status init(std::unique_ptr<GgufFile> file);
    Status repack();

    std::unique_ptr<GgufFile> file_;
    ModelConfig config_;
    std::unique_ptr<Tokenizer> tokenizer_;
    WeightView tok_embd_, output_;
    bool tied_ = false;
    std::vector<float> output_norm_;
    std::vector<float> rope_freqs_;  // [n_rot/2] or empty
    std::vector<float> rope_long_, rope_short_;  // [n_rot/2] LongRoPE factors or empty
    std::vector<LayerWeights> layers_;
    size_t weight_bytes_ = 0;
    std::string summary_;
    void* repacked_ = nullptr;  // anonymous mapping of repacked_size_ bytes, or nullptr
    size_t repacked_size_ = 0;
};

}  // namespace hkv
