// heterokv/engine.h — the public entry points: load a model, create a context, run tokens.
//
//   auto model = hkv::model_load("m.gguf");            // Expected<std::shared_ptr<const Model>>
//   auto ctx = hkv::Context::create(*model, {.n_ctx = 4096, .n_threads = 2});
//   ctx->eval(prompt_tokens);                           // prefill, in chunks of n_batch
//   token = sample(ctx->logits()); ctx->eval({&token, 1});   // decode
//
// A Model is immutable and may be shared by many Contexts. A Context owns one sequence's KV cache
// (the cache is a separate object the engine passes into each step, as in gemma.cpp) and its
// scratch buffers; it is not thread-safe, but uses its own thread pool internally.
// Errors come back as Status (never exceptions, never exit()).
// The rest of the public API: heterokv/model.h (ModelInfo, tensors, tokenizer), tokenizer.h,
// sampler.h, types.h (KvType), policy.h (the policy interface), calibrate.h, synthetic.h, system.h;
// heterokv/heterokv.h includes them all.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "heterokv/model.h"
#include "heterokv/status.h"
#include "heterokv/types.h"

namespace hkv {

struct ContextParams {
    int32_t n_ctx = 0;          // max tokens in the sequence; 0 = the model's training context
    int32_t n_threads = 0;      // 0 = all hardware threads
    int32_t n_batch = 256;      // prefill chunk: tokens per forward pass (bounds scratch memory)
    KvType kv_type = KvType::kF16;  // element type of the cache's K and V rows (both, unless set below)
    // The K rows' and the V rows' types separately (llama.cpp's type_k / type_v, `-ctk` / `-ctv`);
    // unset = kv_type. Block types (q8_0, q4_0, hq4) need a head_dim that is a multiple of 32 (hq4: a
    // power of two from 32 to 1024).
    std::optional<KvType> type_k, type_v;
    KvType k_type() const { return type_k.value_or(kv_type); }
    KvType v_type() const { return type_v.value_or(kv_type); }
    int32_t kv_page_size = 64;  // slots per KV page
    int64_t kv_max_bytes = 0;   // cache memory limit; 0 = unlimited
    std::string policy = "full";  // KV compression policy spec (heterokv/policy.h), e.g. "snapkv:budget=256"
    std::string kv_cold_dir;      // folder for a policy's cold tier (heterocache); "" = host RAM
    // How a cold tier in host RAM gathers a refresh (heterocache's satellites): kThread on its
    // background I/O thread while the engine computes (the paper's asynchronous retrieval), kFence
    // when the layer next needs the rows, straight into the cache over the context's threads (no
    // staging copy, no extra thread competing for a core), kAuto = kThread when the machine has a
    // core beyond n_threads, else kFence. A file tier (kv_cold_dir) always uses its I/O thread.
    enum class ColdGather : uint8_t { kAuto, kThread, kFence };
    ColdGather kv_cold_gather = ColdGather::kAuto;
    // Sliding-window layers (Gemma 2/3's local layers, Mistral's window shorter than n_ctx): by
    // default their slots are freed as they leave the window, so such a layer holds at most the
    // window (+ one page) and a truncate() further back than the window cannot bring them back.
    // true keeps every slot, as a global layer does (same logits, the memory of a global layer).
    bool swa_full = false;
};

// What a context's KV cache holds now (Context::kv_stats).
struct KvStats {
    int64_t bytes_in_use = 0;    // pages owned by heads (K and V) and their position / score lanes
    int64_t bytes_reserved = 0;  // bytes_in_use + free pages the cache keeps for reuse
    int64_t bytes_limit = 0;     // ContextParams::kv_max_bytes (0 = unlimited)
    int64_t slots_total = 0;     // slots over every (layer, KV head)
    int32_t n_layer = 0;
    int32_t n_head_kv = 0;
    int32_t page_size = 0;       // slots per page
    KvType type = KvType::kF16;    // the K rows' type (ContextParams::k_type())
    KvType type_v = KvType::kF16;  // the V rows' type (ContextParams::v_type())
    std::vector<int32_t> n_slot;  // [n_layer, n_head_kv] live slots of each head (il * n_head_kv + ih)
    // Per-head precision (a policy's kv= option, e.g. heterocache): [n_layer, n_head_kv] each head's
    // K and V types; empty when every head has type / type_v.
    std::vector<KvType> head_type, head_type_v;
};

// Read-only view of one (layer, KV head) of the cache: a paged table, as the attention reads it.
// type / type_v are the head's own (they differ from KvStats::type under per-head precision).
// Slot s lives in page s / page_size, row s % page_size; K rows are head_dim values of `type` (keys
// after RoPE), V rows of `type_v` (in block types, head_dim / 32 blocks of llama.cpp's layout). Slots are in position order. Valid until the context's next eval(), truncate() or
// reset().
struct KvHeadView {
    int32_t n_slot = 0;
    int32_t page_size = 0;
    KvType type = KvType::kF16;            // K rows
    KvType type_v = KvType::kF16;          // V rows
    size_t row_bytes = 0;                  // one K row: kv_type_row_size(type, head_dim)
    size_t v_row_bytes = 0;                // one V row: kv_type_row_size(type_v, head_dim)
    PosLane pos;                           // [n_slot] token position of each slot (a 16-bit or int32
                                           // lane read as int32_t: heterokv/types.h)
    std::span<const void* const> k_pages;  // [ceil(n_slot / page_size)] -> [page_size, head_dim] type
    std::span<const void* const> v_pages;  // [ceil(n_slot / page_size)] -> [page_size, head_dim] type_v
    // Row of slot s (0 <= s < n_slot): row_bytes (K) or v_row_bytes (V) bytes.
    const void* k_row(int32_t s) const { return row(k_pages, s, row_bytes); }
    const void* v_row(int32_t s) const { return row(v_pages, s, v_row_bytes); }

private:
    const void* row(std::span<const void* const> pages, int32_t s, size_t rb) const {
        return static_cast<const uint8_t*>(pages[size_t(s / page_size)]) + size_t(s % page_size) * rb;
    }
};

// Wall-clock timings accumulated since the last reset_timings().
struct Timings {
    double prefill_ms = 0.0;    // eval() calls with more than one token
    double decode_ms = 0.0;     // eval() calls with exactly one token
    int64_t n_prefill = 0;      // tokens
    int64_t n_decode = 0;       // tokens
};

// Read-only view of one layer's attention for the LAST token of an eval() call (the prompt's last
// token, then every decode step), for offline profiling (`heterokv calibrate`, HeteroCache). It is
// computed after the layer's attention, before any compression policy acts on that layer, over the
// slots the cache holds for each KV head. Valid only during the observer call.
struct AttnObservation {
    int32_t il = 0;                   // layer
    int32_t n_past = 0;               // tokens of the sequence, this step included
    bool decode = false;              // a single-token step after the prompt (else a prompt's end)
    int32_t n_head_kv = 0;
    int32_t n_slot = 0;               // row stride of pos / attn: the largest live count over heads
    std::span<const int32_t> n_live;  // [n_head_kv] live slots per head
    std::span<const int32_t> pos;     // [n_head_kv, n_slot] token position of each slot
    std::span<const float> attn;      // [n_head_kv, n_slot] softmax(scale * q·K) of the last query
                                      // over the head's slots, mean over the head's GQA group
};
// Called once per layer per observed step on the engine's thread; a non-ok Status fails the
// eval() (which then leaves the sequence as it was).
using AttnObserver = std::function<Status(const AttnObservation&)>;

// Checks a policy spec (ContextParams::policy, `--policy`) against a model and a context of n_ctx
// tokens (0 = the model's training context) before any work starts: unknown policies and options,
// malformed or impossible values, and the errors that depend on the model (a HeteroCache taxonomy
// made for another model or a ratio it cannot meet, dynsplit's need for the tokenizer's
// delimiters), as one kInvalidArgument line. kv_page_size > 0: also the cache the spec will run on
// (a policy's selection pages must divide its pages). Context::create makes the same check. A file
// the spec names (heterocache:taxonomy=FILE) is read.
Status policy_validate(std::string_view spec, const Model& model, int32_t n_ctx, int32_t kv_page_size = 0);

// The most KV cache bytes (KvStats::bytes_in_use: everything the cache allocates, K and V pages and
// the per-slot position and score lanes) a context created with `params` holds at any moment while
// it evaluates a prompt of n_prompt tokens in one eval() call and then generates n_gen tokens one
// eval() at a time. Computed from the policy's own plan for that prompt (Policy::begin on the
// model's shape) and the decode behaviour it declares (PolicyInfo::decode, decode_slack): per
// (layer, KV head) with budget b and slack s,
//   b = -1 (unbounded):  slots = n + g
//   else:                kept   = min(n, b)                                   (after the prompt)
//                        decode = kEvicts ? min(kept + g, b + s + 1) : kept + g
//                        slots  = max(n, decode)              (the whole prompt until its end)
//   bytes = sum over heads of ceil(slots / page_size) * (K page + V page + page_size lane entries).
// Given as ContextParams::kv_max_bytes it caps the cache without ever failing that sequence (the
// server reserves and caps each request with it). Errors: those of Context::create for params, and
// kInvalidArgument / kOutOfRange for n_prompt < 1, n_gen < 0 or n_prompt + n_gen > the context.
// Not counted: a policy's own memory outside the cache (HeteroCache's cold tier).
Expected<int64_t> kv_bytes_bound(const Model& model, const ContextParams& params, int32_t n_prompt, int32_t n_gen);

class Context {
public:
    // Called during long evals with (tokens done, tokens total).
    using ProgressFn = std::function<void(int64_t done, int64_t total)>;
    // Polled before each chunk of an eval() (n_batch tokens); true stops the eval, which then fails
    // with kCancelled and, as any failed eval, leaves the sequence as it was. Lets a front end stop a
    // long prompt (a client gone) while the prompt stays one eval() call, i.e. one policy segment.
    using CancelFn = std::function<bool()>;

    static Expected<std::unique_ptr<Context>> create(std::shared_ptr<const Model> model,
                                                     const ContextParams& params);
    ~Context();

    // Runs tokens through the model at positions n_past() .. n_past() + n - 1 and appends them
    // to the cache. Afterwards logits() holds the last token's next-token logits [n_vocab]; if
    // all_logits is given, the logits of every token are appended to it ([n, n_vocab]).
    // Errors: kOutOfRange if the sequence would exceed n_ctx (nothing is changed), kInvalidArgument
    // for a token id outside the vocabulary, kOutOfMemory from the cache limit, kCancelled when
    // cancel returned true. A failed eval leaves the sequence as it was, or, when the policy's
    // hooks had already changed its state, says so and leaves a context that answers
    // kFailedPrecondition to eval() and truncate(n > 0) until reset() (heterokv/policy.h, "The
    // sequence contract", says which failures under which policies).
    Status eval(std::span<const int32_t> tokens, std::vector<float>* all_logits = nullptr,
                const ProgressFn& progress = {}, const CancelFn& cancel = {});

    std::span<const float> logits() const;
    int32_t n_past() const;
    int32_t n_ctx() const;
    // Forgets the sequence (cache cleared, position 0); clears a "reset needed" state.
    void reset();
    // Rewinds the sequence to its first n tokens (0 <= n <= n_past): the cache drops every slot
    // at a position >= n. logits() is stale until the next eval(). Slots a compression policy
    // evicted, or that left a sliding-window layer's window (ContextParams::swa_full), stay gone.
    // kFailedPrecondition for n > 0 while the context needs reset() (see eval()); 0 is a reset.
    Status truncate(int32_t n);

    // Changes the cache's memory limit (ContextParams::kv_max_bytes; 0 = unlimited) for the steps
    // to come, e.g. when a kept context serves a new request with its own reservation. What the
    // cache holds already stays (kInvalidArgument for bytes < 0).
    Status set_kv_max_bytes(int64_t bytes);

    const Model& model() const;
    // KV cache bytes in use now (KvStats::bytes_in_use; cheap: no per-head list).
    int64_t kv_bytes() const;
    KvStats kv_stats() const;
    // Layer il, KV head ih (kInvalidArgument outside the model's n_layer x n_head_kv).
    Expected<KvHeadView> kv_head(int32_t il, int32_t ih) const;
    const Timings& timings() const;
    // The policy's own counters (e.g. HeteroCache's refreshes and I/O), empty when it has none.
    std::string policy_report() const;
    void reset_timings();
    // Installs (or, with an empty function, removes) the attention observer. Without one the
    // forward pass does no extra work.
    void set_attn_observer(AttnObserver fn);
    // The sequence's token ids by position: [n_past].
    std::span<const int32_t> tokens() const;

    // ---- Saved contexts (llama.cpp's state_seq_save_file / load_file) ----
    // The sequence as it is — every (layer, KV head)'s slots in the cache's K/V types (compressed:
    // only what the policy kept, with their positions and score lanes), the cold tier's rows, the
    // tokens, the last logits and the policy's state (budgets, segments, Policy::state) — in
    // a versioned binary file (docs/saved-contexts.md). Pending cold-tier refreshes are applied
    // first. state_save_file writes through file_write_atomic (heterokv/file_io.h) and returns
    // the bytes written (kFailedPrecondition while the context needs reset(): see eval()).
    // app_data: bytes the application keeps with the sequence (a chat's messages; at most
    // kStateMaxAppData), given back by state_load_file.
    Expected<int64_t> state_save_file(const std::string& path, std::string_view app_data = {});
    // Replaces this context's sequence with a saved one: afterwards logits(), n_past(), tokens()
    // and every later eval() are those of the context that saved it. A file of another model
    // (architecture, shapes, or the fingerprint of its weights and tokenizer metadata), another
    // policy spec, K/V type, page size or sliding-window setting, a sequence longer than this
    // context's n_ctx, and a truncated or corrupt file (every count is checked against the
    // model and the bytes left before anything is allocated; a checksum ends the file) are
    // errors that say which (kInvalidArgument, kCorrupt, kOutOfMemory for kv_max_bytes). On any
    // error the context is left empty, as after reset(). app_data (optional) receives the bytes
    // saved with it.
    Status state_load_file(const std::string& path, std::string* app_data = nullptr);
    // The same on an open stream: state_write appends at the stream's position; state_read reads
    // exactly `size` bytes (the whole saved state) from it.
    Expected<int64_t> state_write(std::FILE* f, std::string_view app_data = {});
    Status state_read(std::FILE* f, uint64_t size, std::string* app_data = nullptr);
    static constexpr size_t kStateMaxAppData = size_t(64) << 20;

private:
    Context();
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace hkv
