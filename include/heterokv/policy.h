// heterokv/policy.h — the KV compression policy interface.
//
// A policy DECIDES which KV slots each (layer, KV head) keeps; the KV store APPLIES the plan (the
// store is the only thing that mutates the cache: src/kv/kv_store.h KvStore::apply). Hooks run per
// layer per step with array arguments — never per token or per head — so the virtual call is
// amortized. Budgets are per layer x per KV head. Every baseline and method is one file in
// src/policy/ and is listed in src/policy/registry.cpp.
//
// ---- Writing a policy: a tutorial ----
// A policy says what it is and what it needs in info(), sets budgets in begin(), and writes a
// LayerPlan in on_layer(). The smallest useful one keeps the most recent `keep` tokens of each head:
//
//   class Recent final : public Policy {
//   public:
//       PolicyInfo info() const override {
//           PolicyInfo i;
//           i.name = "recent";
//           i.calls = kStepSegmentEnd;       // on_layer at the end of every prompt segment,
//           i.decode = DecodeKv::kEvicts;    // and while decoding whenever a head holds more
//           i.decode_slack = 64;             // than budget + 64 slots (evictions are batched)
//           return i;
//       }
//       Status begin(const ModelShape& shape, const Segment&, KvBudget& budget) override {
//           budget.init(shape.n_layer, shape.n_head_kv, keep_);
//           return Status();
//       }
//       Status on_layer(const LayerView& v, LayerPlan& plan) override {
//           for (int32_t ih = 0; ih < v.n_head_kv; ++ih) {
//               const int32_t n = v.n_live[size_t(ih)];
//               if (n <= keep_) continue;                  // untouched heads keep everything
//               int32_t* keep = plan.head(ih);             // surviving slot indices, ascending
//               for (int32_t i = 0; i < keep_; ++i) keep[i] = n - keep_ + i;
//               plan.n_keep[size_t(ih)] = keep_;
//           }
//           return Status();
//       }
//   private:
//       int32_t keep_ = 256;
//   };
//
// Slots of a head are in position order (appends go to the end; compaction keeps order), so "the
// last w slots" are the w most recent tokens. A policy that ranks slots asks for statistics in
// info().stats (e.g. SnapKV: the attention of the segment's last 32 queries, {StatKind::kAttention,
// kStepSegmentEnd, 32, true}); the runtime computes each request at the steps it names, from one
// table of statistics (src/engine/policy_stats.cpp), and hands the values to on_layer in
// LayerView::stats in the same order. Keys and values are read through LayerView::kv as f32 rows
// whatever the cache's element type, and q·K is computed in place there; a policy never sees
// pages, element types or backend code. A merging policy writes f32 rows back (LayerPlan::writes,
// EMS); a policy with a cold tier drives it with LayerPlan::cold (HeteroCache); a sparse-attention
// policy narrows each decode step's attention at kStepSelect (LayerPlan::select: Quest).
//
// ---- Call sequence ----
//   begin(shape, prompt, budget)        once per sequence, at its first segment: budgets, state reset
//   each prefill chunk (kStepChunk, or kStepSegmentEnd for a segment's last), each layer il, after
//   the layer's K/V are appended and its attention computed:
//       [the runtime computes the stats requested for the step]
//       on_layer(view, plan)            when info().calls has the step
//   each decode step (kStepDecode), each layer il:
//       [cold-tier refreshes planned for layer il are applied, then]
//       on_layer(view, plan)            view.step == kStepSelect, when info().select_pages: the
//                                       pages this step attends to, in *plan.select
//       [attention, stats]
//       on_layer(view, plan)            when info().calls has kStepDecode, or (decode = kEvicts)
//                                       some head holds more than budget + decode_slack slots
//
// ---- The sequence contract ----
// A sequence is made of SEGMENTS: every eval() of more than one token (or of the first token of
// a sequence) is one segment; a one-token eval() after that is a decode step. The first segment is
// the prompt: begin() plans budgets for its length and resets the policy's state. A later segment
// (a question after a compressed context, a new chat turn, the next part of a prompt given in
// several eval() calls) continues the same sequence under the same budgets: its tokens are
// appended after what the cache holds and its last chunk is a kStepSegmentEnd, i.e. a "prompt end"
// for the prompt-time policies, which compress the whole cache (old survivors and new tokens) back
// to their budgets there. So a conversation stays bounded under every policy that evicts (see
// DecodeKv). Each policy documents what it does at a later segment in its file.
//
// A FAILED eval() (cancelled, over the context or the cache limit, a bad token, a policy error)
// leaves the sequence as it was: the slots of its tokens are dropped (the cold tier's rows too),
// the segment and the runtime's counters are restored, and so are the score lanes of the older
// slots (kAttentionSum: h2o, ems), which its chunks' queries had added to; a rerun then gives the
// logits of a context that never saw the failure, bit for bit. That holds for every failure of a
// sequence's first segment (the next eval begins the sequence again) and for any later failure
// during which no on_layer ran: every failure under full and quest; under every policy that acts
// only at a segment's end or while decoding, a failure before the segment's last chunk (a cancel
// is always one: the hook is polled between chunks) or a decode step in which no hook ran. When a
// hook ran before the failure — after any prefill chunk under dynsplit and heterocache:spill=chunk
// (hooks on every chunk), inside a segment's last chunk after layer 0 was compressed, inside a
// decode step whose hook ran (an evicting policy over budget + slack, heterocache's drift
// monitor) — the policy's state (compactions and merges of older slots, spills, its own scores,
// band sums and blocks) cannot be undone: the eval's error says so, and the context then refuses
// eval() and truncate(n > 0) with kFailedPrecondition ("reset needed") until reset() or
// truncate(0). tests/model/test_sequence.cpp checks both for every policy, with each failure.
// Undoing those too would need a copy of the cache and of the policy's state (state()) before
// every segment's end and every decode step, for errors that are rare there (a memory limit or an
// observer failing inside a last chunk), where a cancel or an overflow is common and is undone.
//
// Threading: hooks run on the engine's thread, one at a time; views are valid only during the
// call. Randomness, if any, takes an explicit seed from the spec. A policy keeps per-sequence state
// only between begin() calls.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "heterokv/status.h"
#include "heterokv/types.h"

namespace hkv {

class KvStore;     // src/kv/kv_store.h (internal)
class ThreadPool;  // src/core/thread_pool.h (internal)

// ---- what a policy is planned against ----

// Per-token flags (ModelShape::token_flags).
enum TokenFlag : uint8_t {
    kTokenSeparator = 1,  // the token's text holds a separator: . , ; : ! ? newline, a closing
                          // quote or bracket (tokenizer/delimiters.h)
};

struct ModelShape {
    int32_t n_layer = 0;
    int32_t n_head = 0;
    int32_t n_head_kv = 0;
    int32_t head_dim = 0;
    int32_t n_ctx = 0;                      // the context's capacity in tokens
    std::span<const uint8_t> token_flags;   // [n_vocab] TokenFlag bits; empty when the engine has no
                                            // tokenizer. Owned by the engine, valid for the context's life.
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

// A segment of the sequence (see "The sequence contract" above).
struct Segment {
    int32_t index = 0;     // 0: the sequence's first segment (its prompt); then 1, 2, ...
    int32_t pos0 = 0;      // position of its first token (= the tokens before it)
    int32_t n_tokens = 0;  // its length
};

// The kinds of step a hook can run at (bits).
enum PolicyStep : uint32_t {
    kStepChunk = 1u << 0,       // a prefill chunk that is not its segment's last
    kStepSegmentEnd = 1u << 1,  // the last chunk of a segment: a prompt's end
    kStepDecode = 1u << 2,      // a one-token step after the prompt
    kStepSelect = 1u << 3,      // a decode step before its attention: page selection (LayerView::step
                                // only; requested by PolicyInfo::select_pages, not by calls)
};
inline constexpr uint32_t kStepPrefill = kStepChunk | kStepSegmentEnd;
inline constexpr uint32_t kStepAll = kStepPrefill | kStepDecode;

// ---- statistics the runtime serves ----

enum class StatKind : uint8_t {
    // Attention mass on each slot, summed over queries and the GQA group: values [n_head_kv,
    // stride], sum over the step's queries t (the last n_query of them; 0 = all) and query heads h
    // of KV head ih's group of softmax_s(scale * q[t,h]·K[s]) over the slots visible to t.
    kAttention,
    // kAttention of every query the sequence has had (prompt and generated), accumulated in a lane
    // of the store that moves with compaction (H2O's heavy-hitter score). Added at each step in
    // `steps`; the view shows the lane whenever on_layer runs. RowWrite::score sets a merged row's.
    kAttentionSum,
    // DynSplit-KV's band statistics over the step's queries (every `stride`-th, counted from the
    // last, which is always in): for a slot s and a later query t with pos[s] < pos_t <= pos[s] +
    // band, the attention mass t puts on the slots at positions >= pos[s] (normalised over t's
    // whole row when full_norm, else over the band): sum in values, number of (query, query head)
    // pairs in counts.
    kBand,
};

struct StatRequest {
    StatKind kind = StatKind::kAttention;
    uint32_t steps = 0;           // PolicyStep bits: when it is computed
    int32_t n_query = 0;          // kAttention: the last n_query queries of the step; 0 = all
    bool segment_tail = false;    // kAttention: the engine makes a segment's last chunk hold at least
                                  // n_query tokens, so at kStepSegmentEnd the queries are the
                                  // SEGMENT's last n_query (SnapKV's observation window)
    bool from_lse = false;        // kAttention(Sum): from the attention kernel's row log-sum-exp in
                                  // one pass instead of two; the same values up to rounding. The
                                  // score lane's sums (kAttentionSum) are taken inside the kernel
                                  // from its own probabilities where it can (f32/f16/bf16 keys,
                                  // backend/cpu/ops.h AttnColSums): no second q·k pass
    int32_t band = 0;             // kBand: band width in positions
    int32_t stride = 1;           // kBand: query sampling stride
    bool full_norm = true;        // kBand: normalise over the whole row (true) or the band; the
                                  // whole row's normaliser comes from the kernel's log-sum-exp
                                  // (float keys; same values up to rounding), so only the band's
                                  // dots are computed
};

// One request's values for the layer (empty when it was not computed at this step).
struct StatValues {
    int32_t stride = 0;             // row stride: head ih's values start at ih * stride
    std::span<const float> values;  // [n_head_kv, stride]; slot s of head ih at [ih * stride + s]
    std::span<const float> counts;  // kBand only: [n_head_kv, stride]
    const float* head(int32_t ih) const { return values.data() + size_t(ih) * size_t(stride); }
    const float* head_counts(int32_t ih) const { return counts.data() + size_t(ih) * size_t(stride); }
};

// ---- decode behaviour (what the engine's KV bounds are computed from) ----

enum class DecodeKv : uint8_t {
    kAppends,  // keeps every generated token: a head grows by one slot per decode step
    kEvicts,   // on_layer runs at a decode step in which some head holds more than budget +
               // decode_slack slots, and brings every such head back to its budget
};

// The K and V element types of one head's rows (PolicyInfo::kv_types).
struct KvHeadTypes {
    KvType k = KvType::kF16;
    KvType v = KvType::kF16;
    bool set = false;  // false: the context's types (ContextParams type_k / type_v)
};

// What a policy is and what the runtime must do for it. A policy whose info is all defaults
// (`full`) is never called and costs nothing.
struct PolicyInfo {
    std::string_view name;           // the registry name (static storage)
    uint32_t calls = 0;              // PolicyStep bits at which on_layer runs (kStepDecode: every step)
    DecodeKv decode = DecodeKv::kAppends;
    int32_t decode_slack = 0;        // kEvicts: slots a head may hold above its budget while decoding
    bool select_pages = false;       // on_layer runs at kStepSelect before every decode step's
                                     // attention and fills LayerPlan::select
    int32_t select_page = 0;         // select_pages: slots per selected page; 0 = the cache's pages
                                     // (KvLayerView::page_size()); else a divisor of them, so a
                                     // policy selects finer than the cache stores (Quest's 16-token
                                     // pages on 64-slot storage pages)
    bool cold_tier = false;          // may plan ColdOps (ContextParams::kv_cold_dir holds the tier)
    std::vector<StatRequest> stats;  // served in LayerView::stats, in this order
    // Per-head precision (issue 19 item 5): [n_layer * n_head_kv] the types each head's K and V
    // rows are stored in (e.g. heterocache's kv= option, by head class), applied by the engine
    // before it allocates the cache (a q8_0 head holds q8_0 bytes); empty = every head has the
    // context's types. Must have the model's n_layer x n_head_kv entries (begin() has checked the
    // shape, e.g. a taxonomy's).
    std::vector<KvHeadTypes> kv_types;
};

// ---- the views and plans a hook receives ----

// Read-only access to one layer's keys and values, per KV head, whatever the cache's element type:
// rows come out as f32 (post-RoPE keys). Valid during the hook call. Constructed by the runtime
// (and by tests) over a KvStore; empty() when the caller gave no cache (synthetic score tests).
class KvLayerView {
public:
    KvLayerView() = default;
    KvLayerView(const KvStore* kv, int32_t il, ThreadPool* pool) : kv_(kv), il_(il), pool_(pool) {}
    bool empty() const { return kv_ == nullptr; }
    int32_t head_dim() const;
    int32_t n_slot(int32_t ih) const;
    // Slots are stored in pages of page_size() slots: slot s is in page s / page_size(). A page is
    // the unit a page selection (kStepSelect) picks.
    int32_t page_size() const;
    // Changes whenever slots may have been removed, moved or rewritten (compaction, merges,
    // refreshes, truncation); while it is unchanged, heads only gained slots at their ends, so
    // per-slot or per-page caches stay valid.
    uint64_t epoch() const;
    // f32 copies of rows [s0, s0 + n) of head ih: out [n, head_dim].
    void keys(int32_t ih, int32_t s0, int32_t n, float* out) const;
    void values(int32_t ih, int32_t s0, int32_t n, float* out) const;
    // out[r * stride + s] = q[r, :] · K[s, :] for the slots s in [0, n) of head ih, reading the keys
    // in place (SIMD, split over the engine's threads). q: [n_row, head_dim]; stride >= n.
    void key_dots(int32_t ih, const float* q, int32_t n_row, int32_t n, float* out, int64_t stride) const;
    // The same rows as probabilities: out[r, :] = softmax(scale * out[r, :]) over the n slots.
    void key_probs(int32_t ih, const float* q, int32_t n_row, int32_t n, float scale, float* out,
                   int64_t stride) const;
    // key_probs' normalisation of one row of key_dots, in the calling thread (the same bits): row[s] =
    // softmax(scale * row)[s] over [0, n). For a parallel_for item that normalises its own rows.
    static void scaled_softmax(float* row, int32_t n, float scale);
    // fn(i, thread) for every i in [0, n), spread over the engine's threads (thread in
    // [0, n_threads())), or in the calling thread when the view has no pool. For a hook's own
    // per-head or per-row work; fn must not call parallel_for, key_dots or key_probs itself.
    void parallel_for(int32_t n, const std::function<void(int32_t, int32_t)>& fn) const;
    int32_t n_threads() const;
    // Folds the keys of slots [s0, s1) of head ih into the elementwise extremes mn, mx: [head_dim].
    void key_extremes(int32_t ih, int32_t s0, int32_t s1, float* mn, float* mx) const;
    // Rows the cold tier holds for head ih (0 without a tier): row r holds position r.
    int32_t cold_rows(int32_t ih) const;

private:
    const KvStore* kv_ = nullptr;
    int32_t il_ = 0;
    ThreadPool* pool_ = nullptr;
};

// The state of one layer at a step, valid only during the hook call.
struct LayerView {
    int32_t il = 0;
    int32_t n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0;
    PolicyStep step = kStepSegmentEnd;
    Segment segment;                        // the segment of the step (decode: the last segment)
    int32_t n_past = 0;                     // tokens of the sequence processed, this step included
    std::span<const int32_t> n_live;        // [n_head_kv] live slots per head
    std::span<const PosLane> pos;           // [n_head_kv] -> [n_live[ih]] token position of each
                                            // slot, ascending; pos[ih][s] (an int32_t, whether the
                                            // cache's lane is 16-bit or int32: heterokv/types.h)
    std::span<const StatValues> stats;      // [info().stats.size()] this step's statistics
    const KvBudget* budget = nullptr;       // the plan of begin()
    int32_t n_q = 0;                        // queries of the step (the chunk's tokens; 1 in decode)
    std::span<const float> q;               // [n_q, n_head, head_dim] post-RoPE queries of the step
    std::span<const int32_t> tokens;        // [n_past] token id at each position (slot s of head
                                            // ih holds tokens[pos[ih][s]])
    KvLayerView kv;                         // the layer's keys and values
};

// A merged row written over a kept slot before the compaction (merging policies: EMS). k, v:
// [head_dim] f32 (converted to the cache's type); valid until the plan has been applied.
struct RowWrite {
    int32_t head = 0;          // KV head
    int32_t slot = 0;          // slot index BEFORE compaction; must be one of the head's kept slots
    const float* k = nullptr;  // [head_dim] new key (post-RoPE, at the slot's position)
    const float* v = nullptr;  // [head_dim] new value
    float score = 0.0f;        // new kAttentionSum lane value; NaN = leave it
};

// An operation on the cold tier: full-precision history kept outside the hot cache, in host RAM
// or files under ContextParams::kv_cold_dir; row r of a head's tier holds position r. The store
// creates the tier at the first spill and applies these.
enum class ColdOpKind : uint8_t {
    kSpill,    // append the head's slots at positions >= cold_rows(head) to its tier, before the
               // plan's compaction; they must be the head's last slots at consecutive positions
    kRefresh,  // overwrite slots [slot0, slot0 + rows.size()) with the tier rows `rows` (ascending):
               // gathered in the background, applied before this layer's next attention
};
struct ColdOp {
    ColdOpKind kind = ColdOpKind::kSpill;
    int32_t head = 0;
    int32_t slot0 = 0;               // kRefresh: first slot overwritten
    std::span<const int32_t> rows;   // kRefresh: [n] tier rows; copied when the plan is applied
};

// Written by on_layer (at kStepSelect: only *select). The runtime sizes keep to [n_head_kv, stride]
// and presets n_keep[ih] = -1 (keep everything). A policy that compacts head ih writes its surviving
// slot indices, strictly ascending, to head(ih) and sets n_keep[ih], which must not exceed the
// head's bounded budget.
struct PageSelection;
struct LayerPlan {
    int32_t stride = 0;                 // row stride of keep
    std::span<int32_t> keep;            // [n_head_kv, stride]
    std::span<int32_t> n_keep;          // [n_head_kv]
    std::span<const RowWrite> writes;   // policy-owned, optional: applied before the compaction
    std::span<const ColdOp> cold;       // policy-owned, optional: spills before the compaction,
                                        // refreshes after it
    PageSelection* select = nullptr;    // kStepSelect only (keep and n_keep are empty then)
    int32_t* head(int32_t ih) { return keep.data() + size_t(ih) * size_t(stride); }
};

// Written by on_layer at kStepSelect (LayerPlan::select): for each KV head, the pages to attend to this step, ascending: page p holds
// the head's slots [p * page_size, (p + 1) * page_size). The runtime presets n_pages[ih] = -1 (all
// pages).
struct PageSelection {
    int32_t page_size = 0;         // slots per page: info().select_page, or the cache's page size
    int32_t max_pages = 0;         // row stride of pages
    std::span<int32_t> pages;      // [n_head_kv, max_pages]
    std::span<int32_t> n_pages;    // [n_head_kv]
};

// Policy::state's direction and bytes: saving when out is set (append to *out), else loading `in`.
struct PolicyStateIO {
    std::string* out = nullptr;
    std::string_view in;
    bool saving() const { return out != nullptr; }
};

// ---- the interface ----

class Policy {
public:
    virtual ~Policy() = default;
    // Name, the steps to be called at, decode behaviour, statistics. Constant for the object.
    virtual PolicyInfo info() const = 0;
    // Once per sequence, at its first segment (the prompt): sets per-layer x per-head budgets (may
    // be non-uniform: PyramidKV, AdaKV) and resets per-sequence state. Errors: infeasible budgets
    // or a spec that does not fit the model (policy_validate calls it with prompt.n_tokens = n_ctx).
    virtual Status begin(const ModelShape& shape, const Segment& prompt, KvBudget& budget) = 0;
    // The layer hook (see "Call sequence"): after layer view.il's attention at a step of
    // info().calls, writing plan.keep / n_keep (and writes, cold); and, when info().select_pages,
    // before each decode step's attention with view.step == kStepSelect, writing *plan.select only.
    virtual Status on_layer(const LayerView& view, LayerPlan& plan) = 0;
    // Policy-specific counters for reports (one line of text), empty when none.
    virtual std::string report() const { return std::string(); }
    // Saved contexts (Context::state_save / state_load): the per-sequence state that later steps
    // read, beyond the budgets that begin() plans again from the saved prompt segment (e.g.
    // HeteroCache's reference sets and query buffer). Saving (io.saving()) appends it to *io.out;
    // loading runs after begin() with the same shape and prompt segment and gets those bytes back
    // in io.in. They come from a file: check every count before using it (kInvalidArgument for
    // anything that does not fit the shape). Default: no state beyond the budgets (caches keyed by
    // KvLayerView::epoch() are not state: the epoch changes when the cache is restored).
    virtual Status state(PolicyStateIO& io) {
        if (io.saving() || io.in.empty()) return Status();
        return Status::invalid("%.*s: the saved state has %zu bytes of policy state; this policy keeps none",
                               int(name().size()), name().data(), io.in.size());
    }

    std::string_view name() const { return info().name; }
};

// Creates a policy from a spec "name:key=value,key=value", e.g. "snapkv:budget=1024,window=32".
// Unknown names or keys, malformed values, and impossible combinations (budget <= 0, window >=
// budget) are kInvalidArgument errors that say what is wrong and what is accepted.
//
// Every policy but `full` takes its size either as `budget=N` (slots per layer and KV head) or as
// `ratio=F` (0 < F <= 1: the fraction of the prompt's tokens kept, resolved against the prompt's
// length when each sequence starts: budget = max(1, floor(F * n_prompt)), raised to the smallest
// budget the policy's window and sinks allow) or `compression_ratio=F` (kvpress's name and meaning,
// the fraction removed: 0 <= F < 1, the same as ratio=1-F). HeteroCache's own `ratio` is this
// fraction kept (of the full prompt KV, full heads included).
Expected<std::unique_ptr<Policy>> policy_create(std::string_view spec);
// Names of the registered policies, comma-separated.
std::string policy_names();

// ---- the catalog: what each registered policy does, for users (`heterokv policies`) ----

// One option of a policy spec.
struct PolicyOptionDoc {
    std::string_view key;      // "window"
    std::string_view def;      // default as text: "32", "budget/2", "required", "max"
    std::string_view meaning;  // one line
};

// A registered policy described from its registry entry (src/policy/registry.cpp). The tests check
// the catalog against the policies themselves: every documented option is accepted, every option
// a policy reads is documented, and `decode` is what the policy's info() declares.
struct PolicyDoc {
    std::string_view name;
    std::string_view method;   // the method and its source: "SnapKV (Li et al. 2024)"
    std::string_view keeps;    // what each (layer, KV head) keeps
    std::string_view decoding; // memory while generating: what happens to new tokens
    std::string_view use;      // when to choose it
    DecodeKv decode = DecodeKv::kAppends;  // as PolicyInfo::decode
    bool sparse = false;       // keeps every slot and attends to a subset (PolicyInfo::select_pages)
    std::span<const PolicyOptionDoc> options;  // the policy's own options (the size options
                                               // budget / ratio / compression_ratio included)
};

// Every registered policy, in the registry's order. Static storage.
std::span<const PolicyDoc> policy_catalog();

}  // namespace hkv
