// model/arch/qwen3.cpp — the `qwen3` architecture (Qwen3 dense models): the llama layout without
// biases, NEOX RoPE, and a per-head RMSNorm of Q and K before RoPE (attn_q_norm / attn_k_norm,
// [head_dim] each, shared by all heads). The head dimension is attention.key_length (128), so
// n_head * head_dim may differ from n_embd (Qwen3-0.6B: 16 x 128 = 2048 over a 1024 residual).
#include "model/model.h"

namespace hkv {
namespace {

Status read_hparams(const GgufFile&, ModelConfig& c) {
    c.qk_norm = true;
    return Status();
}

Status load_layer(TensorLoader& t, const ModelConfig& c, int32_t il, LayerWeights& L) {
    HKV_TRY(load_llama_layer(t, c, il, L));
    const std::string b = "blk." + std::to_string(il) + ".";
    HKV_TRY(t.vector(b + "attn_q_norm.weight", c.head_dim, &L.q_norm));
    HKV_TRY(t.vector(b + "attn_k_norm.weight", c.head_dim, &L.k_norm));
    return Status();
}

}  // namespace

extern const ArchSpec kArchQwen3;
const ArchSpec kArchQwen3 = {"qwen3", RopeStyle::kNeox, /*qkv_bias=*/false, read_hparams, load_layer};
}  // namespace hkv
