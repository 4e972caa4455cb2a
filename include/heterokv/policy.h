// heterokv/policy.h — the KV compression policy interface.
//
// A policy DECIDES which KV slots each (layer, KV head) keeps; the KV store APPLIES it
// (src/kv/kv_store.h: compact). Hooks are per layer per step with array arguments — never per token
// or per head — so the virtual call is amortized. Budgets are per layer x per KV head and are
// planned once per sequence. Every baseline and method (src/policy/*.cpp, one file each) plugs in here.
//
// Call sequence for one sequence (engine/context.cpp):
//   plan_budget(shape, n_prompt, budget)               once, when the prompt arrives (resets state)
//   for each prefill chunk, for each layer il:          after layer il's K/V for the chunk are written
//       [engine computes view.scores if needs().attn_scores]
//       on_prefill(view, plan)                          plan may keep a subset of slots per head
//   for each decode step, for each layer il:
//       select(view, q, sel)        only if needs().select: which pages each KV head attends to now
//       [attention, scores]
//       on_decode(view, plan)       only when some head holds more than budget + needs().decode_slack
//                                   or, with needs().decode_every_step, after every step (view.q set)
//   with needs().refresh, before select() of each decode step and layer:
//       take_refresh(il, out)       in-place slot overwrites that became ready (HeteroCache), applied
//                                   through KvStore::overwrite_slots before attention
//
// Threading: hooks run on the engine's thread, one at a time. Views are valid only during the call.
// Randomness, if any, takes an explicit seed from the spec. A policy keeps per-sequence state only
// between plan_budget() calls (plan_budget resets it).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "heterokv/status.h"

namespace hkv {

class ThreadPool;  // core/thread_pool.h

// What a policy is planned against.
struct ModelShape {
    int32_t n_layer = 0;
    int32_t n_head = 0;
    int32_t n_head_kv = 0;
    int32_t head_dim = 0;
    int32_t n_ctx = 0;       // the context's capacity
    std::span<const uint8_t> delim_mask;  // [n_vocab] 1 = the token's text holds a separator
                                          // (. , ; : ! ? newline, closing quote/bracket; see
                                          // tokenizer/delimiters.h); empty when the engine has no
                                          // tokenizer. Owned by the engine, valid for the context's life.
    std::string kv_cold_dir; // where a policy with a cold tier (heterocache) keeps it: "" = host RAM,
                             // else a folder for its files (ContextParams::kv_cold_dir)
};

// Per layer x per KV head slot budgets. -1 = unbounded (the head keeps everything).
struct KvBudget {
    int32_t n_layer = 0, n_head_kv = 0;
    std::vector<int32_t> n_keep;  // [n_layer * n_head_kv]
    int32_t at(int32_t il, int32_t ih) const { return n_keep[size_t(il) * size_t(n_head_kv) + size_t(ih)]; }
    int32_t& at(int32_t il, int32_t ih) { return n_keep[size_t(il) * size_t(n_head_kv) + size_t(ih)]; }
    void init(int32_t layers, int32_t heads, int32_t value) {
        n_layer = layers;
        n_head_kv = heads;
        n_keep.assign(size_t(layers) * size_t(heads), value);
    }
    int64_t total() const;  // sum of bounded budgets (unbounded heads count 0)
};

// What the engine must compute for the policy.
struct PolicyNeeds {
    bool attn_scores = false;   // per-slot attention mass in LayerView::scores (summed over the GQA group)
    int32_t n_obs = 0;          // which queries' attention is summed: the last n_obs queries of the
                                // prompt (SnapKV observation window), or 0 = every query (H2O)
    bool accumulate = false;    // scores accumulate over chunks and decode steps (and move with compaction)
    bool select = false;        // select() is called before decode attention (Quest-style)
    int32_t decode_slack = 64;  // on_decode runs when a head holds > budget + decode_slack slots
    int32_t n_local = 0;        // with accumulate: LayerView::local_scores = attention of the last
                                // n_local queries of the step (prefill: of the chunk; decode: the
                                // step's one query), summed over the GQA group; 0 = not wanted
    bool lse_scores = false;    // with accumulate: the column sums come from the attention kernel's
                                // row log-sum-exp in one pass (backend/cpu/scores.h attn_colsums)
                                // instead of attn_scores' own two passes; same values up to rounding
    bool prefill_every_chunk = false;  // window scores (last n_obs queries of the CHUNK) on every
                                       // prefill chunk, not only the prompt's last (chunked eviction)
    int32_t band = 0;           // > 0: LayerView::band_recent / band_count on every prefill chunk
                                // (backend/cpu/scores.h attn_band_recent with this band width)
    int32_t band_stride = 1;    // band statistics from every band_stride-th query of a chunk
    bool band_full_norm = true; // band attention normalised over the whole row (true) or the band
    bool decode_every_step = false;  // on_decode runs after every decode step's attention (with
                                     // LayerView::q), whatever the heads hold (HeteroCache's monitor)
    bool refresh = false;       // take_refresh() runs before every decode step's attention (in-place
                                // slot overwrites prepared asynchronously, e.g. from a cold tier)
    bool decode_no_positions = false;  // on_decode reads no LayerView::pos (nor scores): the runtime
                                       // skips copying them each step (pos is then empty)
};

// Read-only state of one layer, valid only during a hook call.
struct LayerView {
    int32_t il = 0;
    int32_t n_layer = 0;
    int32_t n_head_kv = 0;
    int32_t head_dim = 0;
    int32_t page_size = 0;
    int32_t n_slot = 0;                // row stride of pos / scores: max live slots over heads
    int32_t n_prompt = 0;              // prompt length given to plan_budget
    int32_t n_past = 0;                // tokens of the sequence processed, including this step
    bool prefill_last = false;         // on_prefill: this is the prompt's last chunk
    std::span<const int32_t> n_live;   // [n_head_kv] live slots per head
    std::span<const int32_t> pos;      // [n_head_kv, n_slot] original token position of each slot
    std::span<const float> scores;     // [n_head_kv, n_slot]; empty unless needs().attn_scores
    std::span<const void* const> k_pages;  // [n_head_kv] -> page table of keys (AttnKvHead layout,
                                           // kv_type rows of head_dim; see backend/cpu/ops.h)
    uint32_t kv_type = 1;              // DType id of K/V rows (1 = f16, 30 = bf16, 0 = f32)
    uint64_t kv_epoch = 0;             // changes whenever slots may have been removed or moved
                                       // (compaction, truncation); while equal, slots only gain
                                       // rows after them, so per-page caches stay valid
    const KvBudget* budget = nullptr;
    std::span<const void* const> v_pages;  // [n_head_kv] -> page table of values (as k_pages)
    std::span<const float> local_scores;   // [n_head_kv, n_slot]; empty unless needs().n_local > 0
    std::span<const int32_t> tokens;   // [n_past] token id at each position of the sequence (slot
                                       // s of head ih holds tokens[pos[ih * n_slot + s]])
    std::span<const float> band_recent;  // [n_head_kv, n_slot] when needs().band > 0, prefill only:
    std::span<const float> band_count;   // sum / count over (query, GQA head) pairs with
                                         // pos[s] < qpos <= pos[s] + band of the query's attention
                                         // mass on the slots at positions >= pos[s] (scores.h)
    int32_t n_q = 0;                   // queries of this chunk / step (the chunk's tokens; 1 in decode)
    std::span<const float> q;          // [n_q, n_head, head_dim] post-RoPE queries of the chunk
    int32_t n_head = 0;                // query heads (q's middle dimension)
    ThreadPool* pool = nullptr;        // the engine's workers, idle while a hook runs: a policy may
                                       // run its own kernels on it (nullptr: single-threaded)
};

// A merged row written into a surviving slot (merging policies: EMS). k, v: [head_dim] f32,
// converted to the store's kv_type; they must stay valid until the hook's plan has been applied.
struct SlotWrite {
    int32_t head = 0;          // KV head
    int32_t slot = 0;          // slot index BEFORE compaction; must be one of the head's kept slots
    const float* k = nullptr;  // [head_dim] new key (post-RoPE, at the slot's position)
    const float* v = nullptr;  // [head_dim] new value
    float score = 0.0f;        // new score-lane value (accumulate policies); NaN = leave it
};

// Written by on_prefill / on_decode. The engine sizes idx to [n_head_kv, n_slot] and presets
// n_keep[ih] = -1 (keep everything). A policy that compacts head ih writes its surviving slot
// indices, strictly ascending, into idx[ih * n_slot ...] and sets n_keep[ih]; n_keep[ih] must not
// exceed the head's budget when the budget is bounded.
struct KeepPlan {
    int32_t n_slot = 0;            // row stride of idx
    std::span<int32_t> idx;        // [n_head_kv, n_slot]
    std::span<int32_t> n_keep;     // [n_head_kv]
    std::span<const SlotWrite> writes;  // optional, policy-owned: rows overwritten (KvStore::write_row)
                                        // before the compaction; empty = pure eviction
};

// Written by select(): for each KV head, the pages (indices into its page table) to attend to
// this step, ascending. The engine presets n_pages[ih] = -1 (all pages).
struct PageSelection {
    int32_t max_pages = 0;         // row stride of pages
    std::span<int32_t> pages;      // [n_head_kv, max_pages]
    std::span<int32_t> n_pages;    // [n_head_kv]
};

// Written by take_refresh(): slots to overwrite in place, each a run [slot0, slot0 + n) of KV head
// ih with raw kv_type rows (KvStore::overwrite_slots). The pointers are owned by the policy and
// stay valid until its next hook call. Used by HeteroCache to swap a satellite's hot set.
struct SlotRefresh {
    int32_t ih = 0, slot0 = 0, n = 0;
    const void* k = nullptr;       // [n, head_dim] kv_type
    const void* v = nullptr;       // [n, head_dim] kv_type
    const int32_t* pos = nullptr;  // [n] original positions
};

class Policy {
public:
    virtual ~Policy() = default;
    virtual std::string_view name() const = 0;
    virtual PolicyNeeds needs() const = 0;
    // Once per sequence, before its prompt: sets per-layer x per-head budgets (may be
    // non-uniform: PyramidKV, AdaKV) and resets per-sequence state. Errors: infeasible budgets.
    virtual Status plan_budget(const ModelShape& shape, int32_t n_prompt, KvBudget& budget) = 0;
    // After layer view.il is written for a prefill chunk.
    virtual Status on_prefill(const LayerView& view, KeepPlan& plan) = 0;
    // During decoding, when some head exceeds its budget by more than needs().decode_slack.
    virtual Status on_decode(const LayerView& view, KeepPlan& plan) = 0;
    // Before decode attention when needs().select. q: [n_head, head_dim] post-RoPE query.
    virtual Status select(const LayerView& view, std::span<const float> q, PageSelection& sel) {
        return Status();
    }
    // Before decode attention of layer il when needs().refresh: the overwrites that became ready
    // for this layer (may wait for them: the asynchronous fence). Appends to out.
    virtual Status take_refresh(int32_t il, std::vector<SlotRefresh>& out) { return Status(); }
    // Policy-specific counters for reports (one or more lines of text), empty when none.
    virtual std::string report() const { return std::string(); }
};

// Creates a policy from a spec "name:key=value,key=value", e.g. "snapkv:budget=1024,window=32".
// Unknown names or keys, malformed values, and impossible combinations (budget <= 0, window >=
// budget) are kInvalidArgument errors that say what is wrong and what is accepted.
Expected<std::unique_ptr<Policy>> policy_create(std::string_view spec);
// Names of the registered policies, comma-separated.
std::string policy_names();

}  // namespace hkv
