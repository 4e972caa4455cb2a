// model/arch/gemma2.cpp — the `gemma2` architecture (Gemma 2 2B/9B/27B).
// Token embeddings scaled by sqrt(n_embd); RMSNorm before and after attention and before and after
// the FFN (the GGUF norm weights already hold Gemma's 1 + w); GeGLU FFN (tanh GELU); NEOX RoPE;
// Q scaled by 1/sqrt(query_pre_attn_scalar) with attention logits soft-capped at
// attn_logit_softcapping (50) and the final logits at final_logit_softcapping (30); even layers
// attend through a sliding window of attention.sliding_window (4096) positions, odd layers globally.
// Tied output (token_embd). The GGUF carries no query_pre_attn_scalar: it is head_dim, except for the
// 27B model (46 layers), where it is n_embd / n_head (Gemma's published configs, as llama.cpp does).
#include <cmath>

#include "model/model.h"

namespace hkv {
namespace {

Status read_hparams(const GgufFile& f, ModelConfig& c) {
    const std::string p = c.arch + ".";
    c.post_norms = true;
    c.ffn_act = GluAct::kGeluTanh;
    c.embd_scale = std::sqrt(float(c.n_embd));
    const int32_t qpas = c.n_layer == 46 ? c.n_embd / c.n_head : c.head_dim;
    c.attn_scale = 1.0f / std::sqrt(float(qpas));
    HKV_ASSIGN_OR_RETURN(c.attn_softcap, f.get_f32_or(p + "attn_logit_softcapping", 50.0f));
    HKV_ASSIGN_OR_RETURN(c.final_softcap, f.get_f32_or(p + "final_logit_softcapping", 30.0f));
    if (!(c.attn_softcap >= 0.0f) || !(c.final_softcap >= 0.0f)) {
        return Status::corrupt("model: gemma2 soft-capping values must be >= 0");
    }
    HKV_TRY(read_sliding_window(f, c, false));
    if (!f.find(p + "attention.sliding_window")) c.n_swa = 4096;  // Gemma 2's window
    return read_swa_pattern(f, c, 2);
}

Status load_layer(TensorLoader& t, const ModelConfig& c, int32_t il, LayerWeights& L) {
    HKV_TRY(load_llama_layer(t, c, il, L));
    const std::string b = "blk." + std::to_string(il) + ".";
    HKV_TRY(t.vector(b + "post_attention_norm.weight", c.n_embd, &L.attn_post_norm));
    HKV_TRY(t.vector(b + "post_ffw_norm.weight", c.n_embd, &L.ffn_post_norm));
    return Status();
}

}  // namespace

extern const ArchSpec kArchGemma2;
const ArchSpec kArchGemma2 = {"gemma2", RopeStyle::kNeox, /*qkv_bias=*/false, read_hparams, load_layer};
}  // namespace hkv
