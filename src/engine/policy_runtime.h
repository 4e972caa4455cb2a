// engine/policy_runtime.h — runs a compression Policy inside the forward pass: computes the
// statistics it asked for, builds its LayerView, calls its hooks, checks and applies its plans
// through KvStore::compact, and restricts decode attention to the pages it selects.
//
// With the `full` policy the runtime is inactive and the forward pass is exactly the
// uncompressed one (bit for bit).
#pragma once

#include <memory>
#include <vector>

#include "backend/cpu/ops.h"
#include "core/thread_pool.h"
#include "heterokv/policy.h"
#include "kv/kv_store.h"

namespace hkv {

// Counters for reports.
struct PolicyStats {
    int64_t prefill_calls = 0, decode_calls = 0;  // hook invocations that compacted at least one head
    int64_t slots_evicted = 0;
    double ms = 0.0;                              // time in scoring + hooks + compaction
};

class PolicyRuntime {
public:
    PolicyRuntime(std::unique_ptr<Policy> policy, const ModelShape& shape);

    Policy& policy() { return *policy_; }
    const PolicyNeeds& needs() const { return needs_; }
    bool active() const { return active_; }
    const KvBudget& budget() const { return budget_; }
    const PolicyStats& stats() const { return stats_; }

    // Start of a sequence whose prompt has n_prompt tokens: plans budgets, resets the policy.
    Status begin_sequence(int32_t n_prompt);

    // After layer il's attention for a chunk of n_tok queries (q post-RoPE, positions qpos).
    // decode: a single-token step after the prompt. prefill_last: the prompt's last chunk.
    Status after_layer(int32_t il, bool decode, bool prefill_last, int32_t n_past, KvStore& kv,
                       ThreadPool& pool, const AttnParams& ap, const float* q, const int32_t* qpos,
                       int32_t n_tok);

    // Where forward's attention should write its row log-sum-exp for layer il's step of n_tok
    // queries ([n_tok, n_head]), or nullptr when the policy does not use it (needs().lse_scores).
    float* lse_buffer(int32_t n_tok);
    // The sequence's token ids by position (LayerView::tokens); the vector is owned by the caller
    // (engine/context.cpp), holds at least n_past entries during every hook, and outlives the runtime.
    void set_tokens(const std::vector<int32_t>* tokens) { tokens_ = tokens; }

    // Before decode attention (needs().select): narrows heads[ih] to the selected pages; the views
    // point into this runtime's scratch and stay valid until the next call.
    Status select_pages(int32_t il, int32_t n_past, KvStore& kv, const float* q, AttnKvHead* heads);

    // Before decode attention of layer il (needs().refresh): applies the slot overwrites the policy
    // has ready for this layer (HeteroCache's satellite refresh, waited for here).
    Status refresh(int32_t il, KvStore& kv);

private:
    void build_view(int32_t il, int32_t n_past, bool prefill_last, const KvStore& kv, bool with_scores,
                    bool with_pos = true);
    Status apply(int32_t il, KvStore& kv, bool decode);
    Status apply_writes(int32_t il, KvStore& kv, const KeepPlan& plan);  // merged rows, before compaction

    std::unique_ptr<Policy> policy_;
    ModelShape shape_;
    PolicyNeeds needs_;
    bool active_ = false;
    KvBudget budget_;
    int32_t n_prompt_ = 0;
    PolicyStats stats_;
    // scratch
    LayerView view_;
    std::vector<int32_t> n_live_, pos_, idx_, n_keep_;  // [n_head_kv], [n_head_kv, n_slot] ...
    std::vector<float> scores_, tmp_scores_;
    std::vector<const void*> k_tables_;                 // [n_head_kv]
    std::vector<const void*> v_tables_;                 // [n_head_kv]
    std::vector<SlotRefresh> refresh_;
    std::vector<AttnKvHead> heads_;                     // [n_head_kv]
    std::vector<int32_t> sel_pages_, sel_n_;
    std::vector<float> lse_, local_;                    // [n_tok, n_head], [n_head_kv, n_slot]
    bool lse_ready_ = false;                            // lse_ holds this step's rows
    std::vector<std::vector<const void*>> sel_k_, sel_v_;
    std::vector<std::vector<int32_t>> sel_pos_;
    const std::vector<int32_t>* tokens_ = nullptr;      // [>= n_past] see set_tokens
    std::vector<float> band_recent_, band_count_;       // [n_head_kv, n_slot] needs().band
};

}  // namespace hkv
