// model/arch/qwen2.cpp — the `qwen2` architecture (Qwen2, Qwen2.5): as llama, plus biases on the Q, K
// and V projections and NEOX-style RoPE (rotating dims i and i + n_rot/2).
#include "model/model.h"

namespace hkv {
namespace {
Status read_hparams(const GgufFile&, ModelConfig&) { return Status(); }
}  // namespace

extern const ArchSpec kArchQwen2;
const ArchSpec kArchQwen2 = {"qwen2", RopeStyle::kNeox, /*qkv_bias=*/true, read_hparams, load_llama_layer};
}  // namespace hkv
