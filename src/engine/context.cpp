// engine/context.cpp — a sequence: KV cache + scratch + thread pool; chunked prefill and decode.
#include <chrono>
#include <new>
#include <string>

#include "engine/context_impl.h"
#include "engine/context_setup.h"
#include "engine/forward.h"
#include "engine/policy_runtime.h"
#include "heterokv/engine.h"
#include "kv/kv_store.h"
#include "model/model.h"

namespace hkv {


Context::Context() : impl_(new Impl()) {}
Context::~Context() = default;

Expected<std::unique_ptr<Context>> Context::create(std::shared_ptr<const Model> model,
                                                   const ContextParams& params) {
    if (!model) return Status::invalid("context: no model");
    const ModelConfig& c = model->config();
    try {
        ContextSetup S;
        HKV_TRY(context_setup(*model, params, &S));
        const ContextParams& p = S.params;
        std::unique_ptr<Context> ctx(new Context());
        Impl& I = *ctx->impl_;
        I.token_flags = std::move(S.token_flags);  // the buffer moves: S.shape.token_flags stays valid
        I.policy = std::move(S.policy);
        I.policy->set_tokens(&I.tokens);
        I.window_evict = std::move(S.window_evict);
        auto kv = KvStore::create(S.kv);
        if (!kv.ok()) return kv.status();
        I.kv = std::move(kv).value();
        I.model = std::move(model);
        I.params = p;
        I.pool = std::make_unique<ThreadPool>(p.n_threads);
        I.scratch.resize(c, std::min(p.n_batch, p.n_ctx), p.n_ctx);
        I.logits.assign(size_t(c.n_vocab), 0.0f);
        return ctx;
    } catch (const std::bad_alloc&) {
        return Status::out_of_memory("context: out of memory allocating buffers");
    }
}

Status Context::eval(std::span<const int32_t> tokens, std::vector<float>* all_logits,
                     const ProgressFn& progress, const CancelFn& cancel) {
    Impl& I = *impl_;
    const ModelConfig& c = I.model->config();
    const int64_t n = int64_t(tokens.size());
    if (n == 0) return Status();
    if (!I.reset_needed.empty()) return Status(StatusCode::kFailedPrecondition, I.reset_needed);
    if (int64_t(I.n_past) + n > I.params.n_ctx) {
        return Status::out_of_range("context: %lld tokens after %d would exceed the context of %d tokens",
                                    (long long)n, I.n_past, I.params.n_ctx);
    }
    for (int64_t i = 0; i < n; ++i) {
        if (tokens[size_t(i)] < 0 || tokens[size_t(i)] >= c.n_vocab) {
            return Status::invalid("context: token id %d at index %lld is outside the vocabulary (%d)",
                                   tokens[size_t(i)], (long long)i, c.n_vocab);
        }
    }
    const size_t nv = size_t(c.n_vocab);
    size_t base = 0;
    if (all_logits) {
        try {
            base = all_logits->size();
            all_logits->resize(base + size_t(n) * nv);
        } catch (const std::bad_alloc&) {
            return Status::out_of_memory("context: no memory for %lld rows of logits", (long long)n);
        }
    }
    const auto t0 = std::chrono::steady_clock::now();
    const int32_t nb = I.scratch.n_batch;
    const int32_t n_past0 = I.n_past;
    const bool decode = n == 1 && I.n_past > 0;
    const Segment seg0 = I.policy->segment();
    I.policy->begin_eval();
    if (!decode) {  // a new segment (heterokv/policy.h, "The sequence contract"); the first is the prompt
        const Segment seg{I.n_past == 0 ? 0 : seg0.index + 1, I.n_past, int32_t(n)};
        Status st = I.policy->begin_segment(seg);
        if (!st.ok()) return st;
    }
    // The policy's observation window must fall inside the last chunk: shorten the one before it.
    const int64_t n_obs = I.policy->tail_min();
    for (int64_t done = 0; done < n;) {
        int32_t m = int32_t(std::min<int64_t>(nb, n - done));
        const int64_t rest = n - done - m;
        if (rest > 0 && rest < n_obs && m > n_obs - rest) m -= int32_t(n_obs - rest);
        ChunkInfo info;
        info.step = decode ? kStepDecode : done + m == n ? kStepSegmentEnd : kStepChunk;
        info.tap = I.tap.get();
        info.window_evict = I.window_evict.empty() ? nullptr : I.window_evict.data();
        float* out = all_logits ? all_logits->data() + base + size_t(done) * nv : I.logits.data();
        I.tokens.resize(size_t(I.n_past));
        I.tokens.insert(I.tokens.end(), tokens.begin() + done, tokens.begin() + done + m);
        Status st = cancel && cancel()
                        ? Status(StatusCode::kCancelled, "context: eval cancelled after " + std::to_string(done) +
                                                             " of " + std::to_string(n) + " tokens")
                        : forward_chunk(*I.model, *I.kv, *I.pool, I.scratch, I.policy.get(), info,
                                        tokens.data() + done, m, I.n_past, all_logits != nullptr, out);
        if (!st.ok()) {  // a failed eval leaves no partial state behind, or asks for a reset
            I.policy->restore_segment(seg0);  // the segment before the failed one (no replan)
            I.kv->drop_from(n_past0);
            const bool restored = I.policy->rollback(*I.kv);
            I.n_past = n_past0;
            I.tokens.resize(size_t(n_past0));
            if (all_logits) all_logits->resize(base);
            // A failed first segment is undone whatever the policy did: the next eval is a first
            // segment again, whose begin() resets the policy. A later one is undone when no hook ran.
            if (!restored && n_past0 > 0) {
                const std::string_view name = I.policy->info().name;
                I.reset_needed = "context: a failed eval changed the " + std::string(name) +
                                 " policy's state beyond what dropping its tokens undoes (its hooks ran on "
                                 "the failed chunks); reset() the context and evaluate the sequence again";
                return Status(st.code(), st.message() + "; the context needs reset() before the next eval (the " +
                                             std::string(name) + " policy's state changed)");
            }
            return st;
        }
        I.n_past += m;
        done += m;
        if (progress) progress(done, n);
    }
    if (all_logits) std::copy_n(all_logits->data() + base + size_t(n - 1) * nv, nv, I.logits.data());
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (n == 1) {
        I.timings.decode_ms += ms;
        I.timings.n_decode += 1;
    } else {
        I.timings.prefill_ms += ms;
        I.timings.n_prefill += n;
    }
    return Status();
}

std::span<const float> Context::logits() const { return impl_->logits; }
int32_t Context::n_past() const { return impl_->n_past; }
int32_t Context::n_ctx() const { return impl_->params.n_ctx; }
void Context::reset() {
    impl_->kv->clear();
    impl_->n_past = 0;
    impl_->reset_needed.clear();
}
Status Context::truncate(int32_t n) {
    if (n < 0 || n > impl_->n_past) {
        return Status::invalid("context: cannot truncate to %d tokens (sequence has %d)", n, impl_->n_past);
    }
    if (n == 0) impl_->reset_needed.clear();
    if (!impl_->reset_needed.empty()) return Status(StatusCode::kFailedPrecondition, impl_->reset_needed);
    impl_->kv->drop_from(n);
    impl_->n_past = n;
    return Status();
}

Status Context::set_kv_max_bytes(int64_t bytes) {
    if (bytes < 0) return Status::invalid("context: kv_max_bytes %lld < 0", (long long)bytes);
    impl_->kv->set_max_bytes(bytes);
    impl_->params.kv_max_bytes = bytes;
    return Status();
}

const Model& Context::model() const { return *impl_->model; }
int64_t Context::kv_bytes() const { return int64_t(impl_->kv->bytes_in_use()); }
KvStats Context::kv_stats() const {
    const KvStore& kv = *impl_->kv;
    const KvStoreConfig& kc = kv.config();
    KvStats s;
    s.bytes_in_use = int64_t(kv.bytes_in_use());
    s.bytes_reserved = int64_t(kv.bytes_reserved());
    s.bytes_limit = kc.max_bytes;
    s.slots_total = kv.slots_total();
    s.n_layer = kc.n_layer;
    s.n_head_kv = kc.n_head_kv;
    s.page_size = kc.page_size;
    s.type = impl_->params.k_type();
    s.type_v = impl_->params.v_type();
    s.n_slot.resize(size_t(kc.n_layer) * size_t(kc.n_head_kv));
    for (int32_t il = 0; il < kc.n_layer; ++il) {
        for (int32_t ih = 0; ih < kc.n_head_kv; ++ih) s.n_slot[size_t(il) * size_t(kc.n_head_kv) + size_t(ih)] = kv.n_slot(il, ih);
    }
    for (const KvRowTypes& t : kc.head_types) {
        s.head_type.push_back(KvType(uint32_t(t.k)));
        s.head_type_v.push_back(KvType(uint32_t(t.v)));
    }
    return s;
}
Expected<KvHeadView> Context::kv_head(int32_t il, int32_t ih) const {
    const KvStore& kv = *impl_->kv;
    const KvStoreConfig& kc = kv.config();
    if (il < 0 || il >= kc.n_layer || ih < 0 || ih >= kc.n_head_kv) {
        return Status::invalid("kv: head (%d, %d) outside the cache's %d layers x %d KV heads", il, ih, kc.n_layer,
                               kc.n_head_kv);
    }
    const AttnKvHead h = kv.view(il, ih);
    const size_t n_pages = size_t((h.n_slot + kc.page_size - 1) / kc.page_size);
    KvHeadView v;
    v.n_slot = h.n_slot;
    v.page_size = kc.page_size;
    v.type = KvType(uint32_t(h.k_type));  // the head's own (per-head precision)
    v.type_v = KvType(uint32_t(h.v_type));
    v.row_bytes = kv.k_row_bytes(il, ih);
    v.v_row_bytes = kv.v_row_bytes(il, ih);
    v.pos = h.pos;
    v.k_pages = std::span<const void* const>(h.k_pages, n_pages);
    v.v_pages = std::span<const void* const>(h.v_pages, n_pages);
    return v;
}
const Timings& Context::timings() const { return impl_->timings; }
std::string Context::policy_report() const { return impl_->policy->report(*impl_->kv); }
void Context::reset_timings() { impl_->timings = Timings(); }
void Context::set_attn_observer(AttnObserver fn) {
    impl_->tap = fn ? std::make_unique<AttnTap>(std::move(fn)) : nullptr;
}

}  // namespace hkv
