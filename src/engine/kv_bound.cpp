// engine/kv_bound.cpp — the most KV bytes a context can hold, from the policy's own plan and its
// declared decode behaviour (engine.h kv_bytes_bound).
#include <algorithm>

#include "engine/context_setup.h"
#include "heterokv/engine.h"
#include "policy/spec.h"

namespace hkv {

Expected<int64_t> kv_bytes_bound(const Model& model, const ContextParams& params, int32_t n_prompt, int32_t n_gen) {
    ContextSetup S;
    HKV_TRY(context_setup(model, params, &S));
    if (n_prompt < 1 || n_gen < 0) {
        return Status::invalid("kv bound: a prompt of %d tokens and %d generated tokens", n_prompt, n_gen);
    }
    if (int64_t(n_prompt) + n_gen > S.params.n_ctx) {
        return Status::out_of_range("kv bound: %d prompt + %d generated tokens exceed the context of %d tokens",
                                    n_prompt, n_gen, S.params.n_ctx);
    }
    KvBudget budget;
    HKV_TRY(S.policy->plan(Segment{0, 0, n_prompt}, budget));  // local sliding layers: -1 (whole)
    const PolicyInfo& info = S.policy->info();
    const bool evicts = info.decode == DecodeKv::kEvicts;
    const int64_t n = n_prompt, g = n_gen, page = S.kv.page_size;
    int64_t bytes = 0;
    for (size_t i = 0; i < budget.n_keep.size(); ++i) {
        const int32_t b = budget.n_keep[i];
        int64_t slots = n + g;  // unbounded head (b = -1): everything stays
        if (b >= 0) {
            // the whole prompt until its end (PolicyInfo declares no eviction within a segment), then
            // min(n, b) plus what decoding adds
            const int64_t kept = std::min<int64_t>(n, b);
            const int64_t decode = evicts ? std::min(kept + g, int64_t(b) + int64_t(info.decode_slack) + 1) : kept + g;
            slots = std::max(n, decode);
        }
        // each head's pages cost what its own types do (per-head precision)
        const int32_t il = int32_t(i / size_t(S.kv.n_head_kv)), ih = int32_t(i % size_t(S.kv.n_head_kv));
        bytes += (slots + page - 1) / page * int64_t(KvStore::page_cost(S.kv, il, ih));
    }
    return bytes;
}

}  // namespace hkv
