// engine/policy_check.h — a policy spec checked against a model, before any work starts (tools
// call it on every --policy before loading text or running a window; Context::create runs the
// same check).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "heterokv/engine.h"
#include "heterokv/policy.h"

namespace hkv {

class Model;

// The shape policies are planned against for a context of n_ctx tokens on this model (0 = the
// model's training context). token_flags receives the [n_vocab] TokenFlag bits computed from the
// tokenizer that shape.token_flags points to: keep it alive as long as the shape.
ModelShape policy_shape(const Model& model, int32_t n_ctx, std::vector<uint8_t>* token_flags);

// The layers a context of n_ctx tokens (0 = the training context) treats as local: [n_layer], 1 =
// a sliding-window layer of a model that also has global layers (Gemma 2/3) with a window shorter
// than n_ctx. Policies leave them alone (PolicyRuntime::set_local_layers) and HeteroCache's
// calibration writes them as such (Taxonomy::local_layers). Empty when there are none.
std::vector<uint8_t> model_local_layers(const Model& model, int32_t n_ctx);

// policy_validate(spec, model, n_ctx, kv_page_size) is public: include/heterokv/engine.h.

// A policy that selects pages (PolicyInfo::select_page) on a cache of kv_page_size slots per page:
// kInvalidArgument unless its pages divide the cache's.
Status policy_page_check(const PolicyInfo& info, int32_t kv_page_size);

}  // namespace hkv
