// model/arch/llama.cpp — the `llama` architecture: Llama 2/3, Mistral, TinyLlama, SmolLM.
// Pre-norm decoder, RMSNorm, GQA attention with interleaved ("norm") RoPE on the GGUF-permuted Q/K,
// SwiGLU FFN, no biases; tied embeddings when output.weight is absent; optional rope_freqs.weight
// (Llama-3 long-context frequency factors).
#include "model/model.h"

namespace hkv {
extern const ArchSpec kArchLlama;
const ArchSpec kArchLlama = {"llama", RopeStyle::kNorm, /*qkv_bias=*/false};
}  // namespace hkv
