// model/arch/gemma3.cpp — the `gemma3` architecture, text decoder (Gemma 3 270M/1B/4B/12B/27B).
// As gemma2 (sqrt(n_embd) embedding scale, pre- and post-norms, GeGLU, NEOX RoPE, tied output)
// without soft-capping, plus a per-head RMSNorm of Q and K before RoPE (attn_q_norm / attn_k_norm,
// [head_dim]). Five of every six layers are local: a sliding window of attention.sliding_window
// positions (512 for 1B, 1024 for 4B+) and RoPE base 10000 without scaling; every sixth layer is
// global with rope.freq_base (1e6) and the file's rope scaling (linear x8 for 4B+).
// attention.sliding_window_pattern, when present, overrides the 5:1 pattern. Q scale as gemma2
// (27B = 62 layers: n_embd / n_head, else head_dim). Vision tensors (mmproj) are not read.
#include <cmath>

#include "model/model.h"

namespace hkv {
namespace {

Status read_hparams(const GgufFile& f, ModelConfig& c) {
    c.post_norms = true;
    c.qk_norm = true;
    c.ffn_act = GluAct::kGeluTanh;
    c.embd_scale = std::sqrt(float(c.n_embd));
    const int32_t qpas = c.n_layer == 62 ? c.n_embd / c.n_head : c.head_dim;
    c.attn_scale = 1.0f / std::sqrt(float(qpas));
    HKV_TRY(read_sliding_window(f, c, true));
    c.rope_swa.freq_base = 10000.0f;
    c.rope_swa.freq_scale = 1.0f;
    return read_swa_pattern(f, c, 6);
}

Status load_layer(TensorLoader& t, const ModelConfig& c, int32_t il, LayerWeights& L) {
    HKV_TRY(load_llama_layer(t, c, il, L));
    const std::string b = "blk." + std::to_string(il) + ".";
    HKV_TRY(t.vector(b + "attn_q_norm.weight", c.head_dim, &L.q_norm));
    HKV_TRY(t.vector(b + "attn_k_norm.weight", c.head_dim, &L.k_norm));
    HKV_TRY(t.vector(b + "post_attention_norm.weight", c.n_embd, &L.attn_post_norm));
    HKV_TRY(t.vector(b + "post_ffw_norm.weight", c.n_embd, &L.ffn_post_norm));
    return Status();
}

}  // namespace

extern const ArchSpec kArchGemma3;
const ArchSpec kArchGemma3 = {"gemma3", RopeStyle::kNeox, /*qkv_bias=*/false, read_hparams, load_layer};
}  // namespace hkv
