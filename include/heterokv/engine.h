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
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "heterokv/status.h"

namespace hkv {

class Model;
class KvStore;

// Loads and validates a GGUF model (see src/model/model.h for what is checked).
Expected<std::shared_ptr<const Model>> model_load(const std::string& path);

struct ContextParams {
    int32_t n_ctx = 0;          // max tokens in the sequence; 0 = the model's training context
    int32_t n_threads = 0;      // 0 = all hardware threads
    int32_t n_batch = 256;      // prefill chunk: tokens per forward pass (bounds scratch memory)
    uint32_t kv_type = 1;       // DType id of the cache: 1 = f16 (default), 30 = bf16, 0 = f32
    int32_t kv_page_size = 64;  // slots per KV page
    int64_t kv_max_bytes = 0;   // cache memory limit; 0 = unlimited
    std::string policy = "full";  // KV compression policy spec (heterokv/policy.h), e.g. "snapkv:budget=256"
    std::string kv_cold_dir;      // folder for a policy's cold tier (heterocache); "" = host RAM
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

class Context {
public:
    // Called during long evals with (tokens done, tokens total).
    using ProgressFn = std::function<void(int64_t done, int64_t total)>;

    static Expected<std::unique_ptr<Context>> create(std::shared_ptr<const Model> model,
                                                     const ContextParams& params);
    ~Context();

    // Runs tokens through the model at positions n_past() .. n_past() + n - 1 and appends them
    // to the cache. Afterwards logits() holds the last token's next-token logits [n_vocab]; if
    // all_logits is given, the logits of every token are appended to it ([n, n_vocab]).
    // Errors: kOutOfRange if the sequence would exceed n_ctx (nothing is changed), kInvalidArgument
    // for a token id outside the vocabulary, kOutOfMemory from the cache limit.
    Status eval(std::span<const int32_t> tokens, std::vector<float>* all_logits = nullptr,
                const ProgressFn& progress = {});

    std::span<const float> logits() const;
    int32_t n_past() const;
    int32_t n_ctx() const;
    // Forgets the sequence (cache cleared, position 0).
    void reset();
    // Rewinds the sequence to its first n tokens (0 <= n <= n_past): the cache drops every slot
    // at a position >= n. logits() is stale until the next eval().
    Status truncate(int32_t n);

    const Model& model() const;
    const KvStore& kv() const;
    const Timings& timings() const;
    // The policy's own counters (e.g. HeteroCache's refreshes and I/O), empty when it has none.
    std::string policy_report() const;
    void reset_timings();
    // Installs (or, with an empty function, removes) the attention observer. Without one the
    // forward pass does no extra work.
    void set_attn_observer(AttnObserver fn);

private:
    Context();
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace hkv
