// engine/context_impl.h — Context's state (engine/context.cpp), shared with the saved-context
// code (engine/context_state.cpp).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "engine/attn_tap.h"
#include "engine/forward.h"
#include "engine/policy_runtime.h"
#include "heterokv/engine.h"
#include "kv/kv_store.h"

namespace hkv {

struct Context::Impl {
    std::shared_ptr<const Model> model;
    ContextParams params;
    std::unique_ptr<KvStore> kv;
    std::unique_ptr<ThreadPool> pool;
    ForwardScratch scratch;
    std::vector<uint8_t> token_flags;  // [n_vocab] ModelShape::token_flags (outlives `policy`)
    std::vector<int32_t> tokens;      // [n_past + chunk] the sequence's tokens (LayerView::tokens)
    std::unique_ptr<PolicyRuntime> policy;
    std::unique_ptr<AttnTap> tap;  // set_attn_observer; null = no observation
    std::vector<uint8_t> window_evict;  // [n_layer] ChunkInfo::window_evict; empty = none
    std::vector<float> logits;  // [n_vocab]
    int32_t n_past = 0;
    Timings timings;
    // Non-empty after a failed eval changed the policy's state beyond what it restores: why the
    // context refuses eval(), truncate() and state_write() until reset() (heterokv/policy.h, "The
    // sequence contract").
    std::string reset_needed;
};

}  // namespace hkv
