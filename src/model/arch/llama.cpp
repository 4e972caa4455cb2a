// model/arch/llama.cpp — the `llama` architecture: Llama 2/3, Mistral, TinyLlama, SmolLM.
// Pre-norm decoder, RMSNorm, GQA attention with interleaved ("norm") RoPE on the GGUF-permuted Q/K,
// SwiGLU FFN, no biases; tied embeddings when output.weight is absent; optional rope_freqs.weight
// (Llama-3 long-context frequency factors). Mistral 7B v0.1 declares a sliding window
// (llama.attention.sliding_window, 4096): every layer then attends to the last n_swa positions only,
// as in Mistral's reference implementation. NOTE: llama.cpp ignores this key for `llama` models, so
// the two differ on prompts longer than the window.
#include "model/model.h"

namespace hkv {
namespace {

Status read_hparams(const GgufFile& f, ModelConfig& c) {
    HKV_TRY(read_sliding_window(f, c, false));
    if (c.n_swa > 0 && c.n_swa < c.n_ctx_train) c.swa_layers.assign(size_t(c.n_layer), 1);
    else c.n_swa = 0;  // a window at least the training context changes nothing
    return Status();
}

}  // namespace

Status load_llama_layer(TensorLoader& t, const ModelConfig& c, int32_t il, LayerWeights& L) {
    const int64_t n_q = int64_t(c.n_head) * c.head_dim;
    const int64_t n_kv = int64_t(c.n_head_kv) * c.head_dim;
    const std::string b = "blk." + std::to_string(il) + ".";
    HKV_TRY(t.vector(b + "attn_norm.weight", c.n_embd, &L.attn_norm));
    HKV_TRY(t.matrix(b + "attn_q.weight", c.n_embd, n_q, &L.wq));
    HKV_TRY(t.matrix(b + "attn_k.weight", c.n_embd, n_kv, &L.wk));
    HKV_TRY(t.matrix(b + "attn_v.weight", c.n_embd, n_kv, &L.wv));
    HKV_TRY(t.matrix(b + "attn_output.weight", n_q, c.n_embd, &L.wo));
    if (c.qkv_bias) {
        HKV_TRY(t.vector(b + "attn_q.bias", n_q, &L.bq));
        HKV_TRY(t.vector(b + "attn_k.bias", n_kv, &L.bk));
        HKV_TRY(t.vector(b + "attn_v.bias", n_kv, &L.bv));
    }
    HKV_TRY(t.vector(b + "ffn_norm.weight", c.n_embd, &L.ffn_norm));
    HKV_TRY(t.matrix(b + "ffn_gate.weight", c.n_embd, c.n_ff, &L.w_gate));
    HKV_TRY(t.matrix(b + "ffn_up.weight", c.n_embd, c.n_ff, &L.w_up));
    HKV_TRY(t.matrix(b + "ffn_down.weight", c.n_ff, c.n_embd, &L.w_down));
    return Status();
}


extern const ArchSpec kArchLlama;
const ArchSpec kArchLlama = {"llama", RopeStyle::kNorm, /*qkv_bias=*/false, read_hparams, load_llama_layer};
}  // namespace hkv
