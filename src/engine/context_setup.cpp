// engine/context_setup.cpp — see context_setup.h.
#include "engine/context_setup.h"

#include <thread>

#include "engine/policy_check.h"
#include "model/model.h"
#include "policy/spec.h"

namespace hkv {

Status context_setup(const Model& model, const ContextParams& params, ContextSetup* out) {
    const ModelConfig& c = model.config();
    ContextParams& p = out->params;
    p = params;
    if (p.n_ctx < 0) return Status::invalid("context: n_ctx %d < 0", p.n_ctx);
    if (p.n_ctx == 0) p.n_ctx = c.n_ctx_train;
    if (p.n_batch <= 0 || p.n_batch > 65536) return Status::invalid("context: n_batch %d not in [1, 65536]", p.n_batch);
    if (p.n_threads < 0 || p.n_threads > 1024) return Status::invalid("context: n_threads %d not in [0, 1024]", p.n_threads);
    KvStoreConfig& kc = out->kv;
    kc.n_layer = c.n_layer;
    kc.n_head_kv = c.n_head_kv;
    kc.head_dim = c.head_dim;
    kc.page_size = p.kv_page_size;
    // KvType values are GGML / DType ids. Block types need whole blocks per row (llama.cpp refuses
    // the same: a q8_0 cache on a head size of 8 is an error, not a padded row).
    HKV_TRY(kv_type_check(p.k_type(), c.head_dim, "context (K rows)"));
    HKV_TRY(kv_type_check(p.v_type(), c.head_dim, "context (V rows)"));
    kc.k_type = static_cast<DType>(p.k_type());
    kc.v_type = static_cast<DType>(p.v_type());
    kc.max_bytes = p.kv_max_bytes;
    kc.n_ctx = p.n_ctx;  // positions stay below it: <= 65536 gives the 16-bit position lane
    HKV_ASSIGN_OR_RETURN(auto pol, policy_create(p.policy));
    out->shape = policy_shape(model, p.n_ctx, &out->token_flags);
    KvBudget probe;  // every spec error that depends on the model comes here, not at the first eval
    HKV_TRY(policy_plan(*pol, out->shape, Segment{0, 0, p.n_ctx}, probe));
    HKV_ASSIGN_OR_RETURN(out->policy, PolicyRuntime::create(std::move(pol), out->shape, p.kv_page_size));
    // Sliding-window layers: the policy leaves the local ones (a model's sliding layers when it
    // also has global ones) alone; the store frees what leaves the window of those, and of every
    // sliding layer when no policy compresses (Mistral's window under `full`).
    std::vector<uint8_t> local = model_local_layers(model, p.n_ctx);
    for (int32_t il = 0; il < c.n_layer; ++il) {
        const bool slides = c.layer_swa(il) && c.n_swa < p.n_ctx;
        if (slides && !p.swa_full && ((!local.empty() && local[size_t(il)]) || !out->policy->active())) {
            out->window_evict.resize(size_t(c.n_layer), 0);
            out->window_evict[size_t(il)] = 1;
        }
    }
    if (!local.empty()) out->policy->set_local_layers(std::move(local));
    // per-head precision: the policy's types for each head (its classes'), the context's elsewhere
    const std::vector<KvHeadTypes>& ht = out->policy->info().kv_types;
    if (!ht.empty()) {
        if (ht.size() != size_t(c.n_layer) * size_t(c.n_head_kv)) {
            return Status::invalid("context: policy %s gives KV types for %zu heads; the model has %d x %d",
                                   p.policy.c_str(), ht.size(), c.n_layer, c.n_head_kv);
        }
        kc.head_types.resize(ht.size());
        for (size_t i = 0; i < ht.size(); ++i) {
            const KvType k = ht[i].set ? ht[i].k : p.k_type(), v = ht[i].set ? ht[i].v : p.v_type();
            HKV_TRY(kv_type_check(k, c.head_dim, "context (policy kv= K rows)"));
            HKV_TRY(kv_type_check(v, c.head_dim, "context (policy kv= V rows)"));
            kc.head_types[i] = KvRowTypes{static_cast<DType>(k), static_cast<DType>(v)};
        }
    }
    kc.score_lane = out->policy->needs_score_lane();
    kc.cold_dir = p.kv_cold_dir;
    kc.cold_async = p.kv_cold_gather == ContextParams::ColdGather::kThread ||
                    (p.kv_cold_gather == ContextParams::ColdGather::kAuto &&
                     p.n_threads > 0 && int64_t(std::thread::hardware_concurrency()) > p.n_threads);
    return KvStore::validate(kc);
}

}  // namespace hkv
