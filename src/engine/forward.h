// engine/forward.h — one forward pass of the decoder over a chunk of tokens: the pre-norm
// transformer of every supported architecture, with the per-architecture features of ModelConfig
// (QK norms, post-norms, GeGLU, embedding scale, soft-capping, sliding-window layers).
#pragma once

#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "engine/attn_tap.h"
#include "engine/policy_runtime.h"
#include "kv/kv_store.h"
#include "model/model.h"

namespace hkv {

// Scratch for a chunk of up to n_batch tokens; sized once, reused every step (no allocation in the loop).
struct ForwardScratch {
    int32_t n_batch = 0;
    std::vector<float> x;      // [n_batch, n_embd]  residual stream
    std::vector<float> xn;     // [n_batch, n_embd]  normalized input of a sublayer
    std::vector<float> q;      // [n_batch, n_head * head_dim]
    std::vector<float> k;      // [n_batch, n_head_kv * head_dim]
    std::vector<float> v;      // [n_batch, n_head_kv * head_dim]
    std::vector<float> attn;   // [n_batch, n_head * head_dim]
    std::vector<float> gate;   // [n_batch, n_ff]
    std::vector<float> up;     // [n_batch, n_ff]
    std::vector<float> out;    // [n_batch, n_embd]  sublayer output
    std::vector<int32_t> pos;  // [n_batch]
    std::vector<AttnKvHead> heads;  // [n_head_kv]
    std::vector<uint8_t> mm_scratch;  // matmul activation quantization
    std::vector<RopeParams> rope;     // [n_layer] each layer's RoPE for this context (ModelConfig::rope_for)
    void resize(const ModelConfig& c, int32_t n_batch, int32_t n_ctx);
};

// Where a chunk sits in the sequence, for the policy hooks.
struct ChunkInfo {
    PolicyStep step = kStepSegmentEnd;  // a prefill chunk, a segment's last chunk, or a decode step
    AttnTap* tap = nullptr;             // attention observation (engine/attn_tap.h); null = none
    // [n_layer] or null: 1 = a sliding-window layer whose slots that left the window are freed
    // after its attention (KvStore::drop_before), so it holds at most n_swa + page_size - 1 slots
    // between steps
    const uint8_t* window_evict = nullptr;
};

// Runs tokens[0..n) at positions pos0.. through every layer, appending K/V to `kv`, and writes
// logits for the rows selected: logits_all ? every row [n, n_vocab] : only the last row [n_vocab].
// n <= scratch.n_batch. Token ids must already be validated. rt (may be null) runs the compression
// policy after each layer's attention.
Status forward_chunk(const Model& model, KvStore& kv, ThreadPool& pool, ForwardScratch& s,
                     PolicyRuntime* rt, const ChunkInfo& info, const int32_t* tokens, int32_t n,
                     int32_t pos0, bool logits_all, float* logits);

}  // namespace hkv
