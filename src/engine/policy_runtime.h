// engine/policy_runtime.h — runs a compression Policy inside the forward pass: tracks the
// sequence's segments, computes the statistics the policy requested (through the table of
// engine/policy_stats.h), builds its LayerView, calls its hooks at the steps it asked for, checks
// its plans against the budgets and has the KV store apply them, and restricts decode attention to
// the pages it selects.
//
// A policy that asks for nothing (`full`) leaves the runtime inactive: the forward pass is then
// exactly the uncompressed one (bit for bit).
#pragma once

#include <memory>
#include <string_view>
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
    int64_t decode_steps = 0;                     // decode steps of the sequence
    double ms = 0.0;                              // time in statistics + hooks + plans
};

class PolicyRuntime {
public:
    // kInternal for a policy whose info the runtime cannot serve (more than one lane statistic);
    // kInvalidArgument when it selects pages (info().select_page) that do not divide the cache's
    // kv_page_size slots (0: not checked, the caller has no cache yet).
    static Expected<std::unique_ptr<PolicyRuntime>> create(std::unique_ptr<Policy> policy, const ModelShape& shape,
                                                           int32_t kv_page_size = 0);

    Policy& policy() { return *policy_; }
    const PolicyInfo& info() const { return info_; }
    bool active() const { return active_; }
    // The store must keep a score lane (a kAttentionSum statistic).
    bool needs_score_lane() const { return lane_ >= 0; }
    const KvBudget& budget() const { return budget_; }
    const PolicyStats& stats() const { return stats_; }
    const Segment& segment() const { return segment_; }

    // A segment starts (heterokv/policy.h, "The sequence contract"): seg.index 0 plans the budgets
    // (Policy::begin) and resets the counters.
    // The policy's budget plan for a prompt segment (policy_plan) with the local layers unbounded
    // (-1): what begin_segment installs, and what kv_bytes_bound counts.
    Status plan(const Segment& seg, KvBudget& budget);
    Status begin_segment(const Segment& seg);
    // Makes seg the current segment again without planning (after a failed eval rolled back).
    void restore_segment(const Segment& seg) { segment_ = seg; }
    // The sequence's first segment (the prompt the budgets were planned for); n_tokens 0 before any.
    const Segment& prompt() const { return prompt_; }
    // Saved contexts: plans `prompt` again (Policy::begin), checks that the budgets are `budget`
    // (the saved plan; kInvalidArgument otherwise), hands `state` to Policy::state (loading) and makes
    // seg the current segment, with decode_steps counted.
    Status restore(const Segment& prompt, const Segment& seg, const KvBudget& budget, std::string_view state,
                   int64_t decode_steps);
    // The segment's last chunk must hold at least this many tokens (segment_tail statistics).
    int32_t tail_min() const { return tail_min_; }
    // Marks the start of an eval(), before its segment begins: from here the runtime records what
    // a failed eval must undo besides its tokens (which the store drops): the score lanes of the
    // slots before it (saved per layer at the eval's first lane update: one float per slot) and the
    // counters.
    void begin_eval();
    // After a failed eval, once the store has dropped its tokens: restores the lanes and counters.
    // false when a hook ran during the failed eval (touched()): a compaction, merge or cold-tier
    // spill of older slots, or the policy's own state (h2o/ems scores by slot, DynSplit's band
    // sums and blocks, HeteroCache's hot sets), which the runtime cannot undo.
    bool rollback(KvStore& kv);
    bool touched() const { return touched_; }

    // Before layer il's attention: applies the cold-tier refreshes pending for the layer, and at a
    // decode step (info().select_pages) narrows heads[ih] to the selected pages; the narrowed
    // views point into this runtime's scratch and stay valid until the next call. When the policy
    // selects pages finer than the cache's (info().select_page), every head's view is given in
    // pages of that many slots and *page_size (the attention's page size, the cache's on entry)
    // is set to it.
    Status before_attention(int32_t il, PolicyStep step, int32_t n_past, KvStore& kv, ThreadPool& pool,
                            const float* q, AttnKvHead* heads, int32_t* page_size);
    // Where the attention of layer il's step of n_tok queries should write its row log-sum-exp
    // ([n_tok, n_head]), or nullptr when no requested statistic reads it.
    float* lse_buffer(PolicyStep step, int32_t n_tok);
    // After lse_buffer: where the attention of layer il's step should take the column sums of its
    // own probabilities (ops.h AttnColSums) for the score lane (kAttentionSum from_lse), or nullptr
    // when the step updates no lane from the lse (or the heads are narrowed to selected pages).
    // heads: the views the attention reads ([n_head_kv]); after_layer uses the sums of the heads the
    // kernel took (the rest by attn_colsums, as without them).
    AttnColSums* colsum_buffer(int32_t il, PolicyStep step, int32_t n_tok, const AttnKvHead* heads);
    // After layer il's attention for a step of n_tok queries (q post-RoPE, positions qpos).
    Status after_layer(int32_t il, PolicyStep step, int32_t n_past, KvStore& kv, ThreadPool& pool,
                       const AttnParams& ap, const float* q, const int32_t* qpos, int32_t n_tok);

    // Layers the policy never runs on ([n_layer], 1 = local): a model's sliding-window layers when it
    // also has global ones (Gemma 2/3). Their budget is -1 (the window bounds them), and neither
    // statistics, on_layer nor select run there. Set before the first segment.
    void set_local_layers(std::vector<uint8_t> local) { local_ = std::move(local); }
    bool layer_local(int32_t il) const { return !local_.empty() && local_[size_t(il)] != 0; }

    // The sequence's token ids by position (LayerView::tokens); the vector is owned by the caller
    // (engine/context.cpp), holds at least n_past entries during every hook, and outlives the runtime.
    void set_tokens(const std::vector<int32_t>* tokens) { tokens_ = tokens; }

    // The policy's report followed by the cold tier's counters (when the store has one).
    std::string report(const KvStore& kv) const;

private:
    PolicyRuntime(std::unique_ptr<Policy> policy, const ModelShape& shape);
    void build_view(int32_t il, PolicyStep step, int32_t n_past, const KvStore& kv, ThreadPool* pool);
    void load_heads(int32_t il, const KvStore& kv);  // heads_ = the layer's attention views
    Status check_plan(int32_t il, const LayerPlan& plan) const;

    std::unique_ptr<Policy> policy_;
    PolicyInfo info_;
    ModelShape shape_;
    bool active_ = false;
    int32_t lane_ = -1;      // index of the kAttentionSum request, -1 = none
    int32_t tail_min_ = 0;
    KvBudget budget_;
    Segment segment_;
    Segment prompt_;  // the first segment (prompt())
    PolicyStats stats_;
    bool touched_ = false;
    PolicyStats stats_saved_;                           // the counters at begin_eval
    std::vector<uint8_t> lane_saved_;                   // [n_layer] 1 = lane_save_ holds the layer's lanes
    std::vector<std::vector<float>> lane_save_;         // [n_layer * n_head_kv] -> [n_slot] lanes at the
                                                        // eval's first update of the layer
    const std::vector<int32_t>* tokens_ = nullptr;  // [>= n_past] see set_tokens
    std::vector<uint8_t> local_;                    // [n_layer] or empty: see set_local_layers
    // scratch
    LayerView view_;
    std::vector<int32_t> n_live_, keep_, n_keep_;       // [n_head_kv], [n_head_kv, n_slot], [n_head_kv]
    std::vector<PosLane> pos_rows_;                     // [n_head_kv]
    std::vector<AttnKvHead> heads_;                     // [n_head_kv]
    std::vector<StatValues> stat_views_;                // [requests]
    std::vector<std::vector<float>> stat_values_, stat_counts_;  // [requests] -> [n_head_kv, n_slot]
    std::vector<float> lane_add_;                       // [n_head_kv, n_slot]
    std::vector<float> lse_;                            // [n_tok, n_head]
    bool lse_ready_ = false;                            // lse_ holds this step's rows
    AttnColSums colsums_;                               // colsum_buffer's request, over the two below
    std::vector<float> colsum_values_;                  // [n_head_kv, colsums_.stride]
    std::vector<uint8_t> colsum_done_;                  // [n_head_kv]
    std::vector<int32_t> colsum_n_slot_;                // [n_head_kv] the slots the kernel saw
    bool colsums_ready_ = false;                        // colsums_ is this step's (after_layer)
    std::vector<int32_t> sel_pages_, sel_n_;
    std::vector<std::vector<const void*>> sel_k_, sel_v_;
    std::vector<std::vector<int32_t>> sel_pos_;
};

}  // namespace hkv
