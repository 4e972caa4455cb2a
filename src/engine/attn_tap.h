// engine/attn_tap.h — the attention observation hook behind Context::set_attn_observer
// (heterokv/engine.h: AttnObservation). After a layer's attention, for the last token of an eval()
// call, it computes that query's softmax row over every slot of each KV head (mean over the GQA
// group, backend/cpu/scores.h: attn_scores) and hands it to the observer.
//
// Cost: O(n_head * n_slot * head_dim) per layer per observed step, only when an observer is set;
// the forward pass without one does not touch this (ChunkInfo::tap is null).
#pragma once

#include <vector>

#include "backend/cpu/ops.h"
#include "core/thread_pool.h"
#include "heterokv/engine.h"
#include "kv/kv_store.h"

namespace hkv {

class AttnTap {
public:
    explicit AttnTap(AttnObserver fn) : fn_(std::move(fn)) {}

    // Layer il has just attended for n_tok queries q ([n_tok, n_head, head_dim], post-RoPE) at
    // positions qpos ([n_tok]); observes the last one. n_past counts this step's tokens.
    Status observe(int32_t il, bool decode, int32_t n_past, const KvStore& kv, ThreadPool& pool,
                   const AttnParams& ap, const float* q, const int32_t* qpos, int32_t n_tok);

private:
    AttnObserver fn_;
    std::vector<AttnKvHead> heads_;  // [n_head_kv]
    std::vector<int32_t> n_live_;    // [n_head_kv]
    std::vector<int32_t> pos_;       // [n_head_kv, n_slot]
    std::vector<float> attn_;        // [n_head_kv, n_slot]
};

}  // namespace hkv
