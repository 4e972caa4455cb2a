// engine/context_setup.h — what Context::create decides before it allocates anything: the params
// resolved against the model, the KV store's configuration, the policy (in its runtime) and the
// shape it is planned against. Shared by Context::create and kv_bytes_bound (engine.h) so the two
// give the same errors for the same params.
#pragma once

#include <memory>
#include <vector>

#include "engine/policy_runtime.h"
#include "heterokv/engine.h"
#include "heterokv/policy.h"
#include "kv/kv_store.h"

namespace hkv {

struct ContextSetup {
    ContextParams params;                   // resolved: n_ctx > 0 (0 became the model's training context)
    KvStoreConfig kv;                       // score lane and cold tier as the policy needs, validated
    std::vector<uint8_t> token_flags;       // [n_vocab] ModelShape::token_flags (moving it keeps shape valid)
    ModelShape shape;                       // token_flags points into this->token_flags
    std::unique_ptr<PolicyRuntime> policy;  // created from params.policy against shape
    // [n_layer] 1 = the store frees what leaves the layer's window (ChunkInfo::window_evict); empty =
    // none. The runtime's local layers (policy_runtime.h set_local_layers) are set to match.
    std::vector<uint8_t> window_evict;
};

// Fills *out (errors: kInvalidArgument for a range or the policy spec, kUnsupported for the cache
// type, as Context::create reports them).
Status context_setup(const Model& model, const ContextParams& params, ContextSetup* out);

}  // namespace hkv
