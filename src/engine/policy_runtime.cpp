// engine/policy_runtime.cpp — see policy_runtime.h.
#include "engine/policy_runtime.h"

#include <chrono>
#include <climits>
#include <cmath>

#include "backend/cpu/scores.h"
#include "engine/policy_check.h"
#include "model/model.h"
#include "policy/spec.h"
#include "tokenizer/delimiters.h"

namespace hkv {

ModelShape policy_shape(const Model& model, int32_t n_ctx, std::vector<uint8_t>* delim_mask) {
    const ModelConfig& c = model.config();
    ModelShape shape{c.n_layer, c.n_head, c.n_head_kv, c.head_dim, n_ctx > 0 ? n_ctx : c.n_ctx_train};
    *delim_mask = tokenizer_delimiter_mask(model.tokenizer());
    shape.delim_mask = *delim_mask;
    return shape;
}

Status policy_validate(std::string_view spec, const Model& model, int32_t n_ctx) {
    if (n_ctx < 0) return Status::invalid("policy: context of %d tokens", n_ctx);
    std::vector<uint8_t> delim;
    return policy_validate(spec, policy_shape(model, n_ctx, &delim));
}

PolicyRuntime::PolicyRuntime(std::unique_ptr<Policy> policy, const ModelShape& shape)
    : policy_(std::move(policy)), shape_(shape), needs_(policy_->needs()) {
    active_ = policy_->name() != "full";
}

Status PolicyRuntime::begin_sequence(int32_t n_prompt) {
    n_prompt_ = n_prompt;
    stats_ = PolicyStats();
    return policy_plan(*policy_, shape_, n_prompt, budget_);
}

void PolicyRuntime::build_view(int32_t il, int32_t n_past, bool prefill_last, const KvStore& kv, bool with_scores,
                               bool with_pos) {
    const int32_t nh = shape_.n_head_kv;
    n_live_.resize(size_t(nh));
    int32_t n_slot = 0;
    for (int32_t ih = 0; ih < nh; ++ih) {
        n_live_[size_t(ih)] = kv.n_slot(il, ih);
        n_slot = std::max(n_slot, n_live_[size_t(ih)]);
    }
    if (with_pos) {
        pos_.assign(size_t(nh) * size_t(n_slot), INT_MAX);
    } else {
        pos_.clear();
    }
    k_tables_.resize(size_t(nh));
    v_tables_.resize(size_t(nh));
    for (int32_t ih = 0; ih < nh; ++ih) {
        const int32_t* p = kv.positions(il, ih);
        if (with_pos) std::copy(p, p + n_live_[size_t(ih)], pos_.begin() + long(ih) * n_slot);
        k_tables_[size_t(ih)] = static_cast<const void*>(kv.view(il, ih).k_pages);
        v_tables_[size_t(ih)] = static_cast<const void*>(kv.view(il, ih).v_pages);
    }
    if (with_scores && needs_.accumulate) {  // the store's lanes are the scores
        scores_.assign(size_t(nh) * size_t(n_slot), 0.0f);
        for (int32_t ih = 0; ih < nh; ++ih) {
            const float* sc = kv.scores(il, ih);
            std::copy(sc, sc + n_live_[size_t(ih)], scores_.begin() + long(ih) * n_slot);
        }
    }
    view_ = LayerView();
    view_.il = il;
    view_.n_layer = shape_.n_layer;
    view_.n_head_kv = nh;
    view_.head_dim = shape_.head_dim;
    view_.page_size = kv.config().page_size;
    view_.n_slot = n_slot;
    view_.n_prompt = n_prompt_;
    view_.n_past = n_past;
    view_.prefill_last = prefill_last;
    view_.n_live = n_live_;
    view_.pos = pos_;
    view_.scores = with_scores ? std::span<const float>(scores_.data(), size_t(nh) * size_t(n_slot))
                               : std::span<const float>();
    view_.k_pages = std::span<const void* const>(k_tables_.data(), k_tables_.size());
    view_.kv_type = uint32_t(kv.config().kv_type);
    view_.kv_epoch = kv.epoch();
    view_.budget = &budget_;
    view_.v_pages = std::span<const void* const>(v_tables_.data(), v_tables_.size());
    if (tokens_) view_.tokens = std::span<const int32_t>(tokens_->data(), std::min(tokens_->size(), size_t(n_past)));
    view_.n_head = shape_.n_head;
    idx_.resize(size_t(nh) * size_t(std::max(n_slot, 1)));
    n_keep_.assign(size_t(nh), -1);
}

Status PolicyRuntime::after_layer(int32_t il, bool decode, bool prefill_last, int32_t n_past, KvStore& kv,
                                  ThreadPool& pool, const AttnParams& ap, const float* q, const int32_t* qpos,
                                  int32_t n_tok) {
    if (!active_) return Status();
    const auto t0 = std::chrono::steady_clock::now();
    const int32_t nh = shape_.n_head_kv;
    // ---- statistics ----
    std::vector<AttnKvHead>& heads = heads_;
    heads.resize(static_cast<size_t>(nh));
    auto views = [&] {
        for (int32_t ih = 0; ih < nh; ++ih) heads[size_t(ih)] = kv.view(il, ih);
    };
    if (needs_.attn_scores && needs_.accumulate) {
        // add every query's attention to the lanes
        views();
        int32_t n_slot = 0;
        for (int32_t ih = 0; ih < nh; ++ih) n_slot = std::max(n_slot, heads[size_t(ih)].n_slot);
        tmp_scores_.assign(size_t(nh) * size_t(n_slot), 0.0f);
        if (lse_ready_) {  // one pass from the attention kernel's log-sum-exp
            attn_colsums(pool, ap, q, qpos, n_tok, 0, lse_.data(), heads.data(), tmp_scores_.data(), n_slot);
        } else {
            attn_scores(pool, ap, q, qpos, n_tok, 0, heads.data(), tmp_scores_.data(), n_slot, false);
        }
        for (int32_t ih = 0; ih < nh; ++ih) {
            float* lane = kv.scores(il, ih);
            const float* add = tmp_scores_.data() + size_t(ih) * size_t(n_slot);
            for (int32_t s = 0; s < heads[size_t(ih)].n_slot; ++s) lane[s] += add[s];
        }
    }
    // ---- should the policy run? ----
    bool call = false;
    if (!decode) {
        call = true;
    } else {
        for (int32_t ih = 0; ih < nh; ++ih) {
            const int32_t b = budget_.at(il, ih);
            if (b > 0 && int64_t(kv.n_slot(il, ih)) > int64_t(b) + needs_.decode_slack) call = true;
        }
        if (needs_.decode_every_step) call = true;
    }
    const bool lse_used = lse_ready_;
    lse_ready_ = false;
    if (!call) {
        stats_.ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        return Status();
    }
    const bool want_window = needs_.attn_scores && !needs_.accumulate &&
                             (decode || prefill_last || needs_.prefill_every_chunk);
    const bool with_scores = needs_.attn_scores && (needs_.accumulate || want_window);
    build_view(il, n_past, prefill_last, kv, with_scores, !(decode && needs_.decode_no_positions && !with_scores));
    if (want_window) {
        views();
        const int32_t t_begin = needs_.n_obs > 0 ? std::max(0, n_tok - needs_.n_obs) : 0;
        scores_.assign(size_t(nh) * size_t(view_.n_slot), 0.0f);
        attn_scores(pool, ap, q, qpos, n_tok, t_begin, heads.data(), scores_.data(), view_.n_slot, false);
        view_.scores = std::span<const float>(scores_.data(), scores_.size());
    }
    if (needs_.attn_scores && needs_.accumulate && needs_.n_local > 0) {  // recent queries' attention
        views();
        const int32_t t_begin = std::max(0, n_tok - needs_.n_local);
        local_.assign(size_t(nh) * size_t(view_.n_slot), 0.0f);
        if (lse_used) {
            attn_colsums(pool, ap, q, qpos, n_tok, t_begin, lse_.data(), heads.data(), local_.data(), view_.n_slot);
        } else {
            attn_scores(pool, ap, q, qpos, n_tok, t_begin, heads.data(), local_.data(), view_.n_slot, false);
        }
        view_.local_scores = std::span<const float>(local_.data(), local_.size());
    }
    if (needs_.band > 0 && !decode) {  // DD-Select statistics over this chunk's queries
        views();
        band_recent_.assign(size_t(nh) * size_t(view_.n_slot), 0.0f);
        band_count_.assign(size_t(nh) * size_t(view_.n_slot), 0.0f);
        attn_band_recent(pool, ap, q, qpos, n_tok, 0, needs_.band_stride, needs_.band, needs_.band_full_norm,
                         heads.data(), band_recent_.data(), band_count_.data(), view_.n_slot);
        view_.band_recent = band_recent_;
        view_.band_count = band_count_;
    }
    view_.n_q = n_tok;
    view_.pool = &pool;
    view_.q = std::span<const float>(q, size_t(n_tok) * size_t(shape_.n_head) * size_t(shape_.head_dim));
    KeepPlan plan;
    plan.n_slot = std::max(view_.n_slot, 1);
    plan.idx = idx_;
    plan.n_keep = n_keep_;
    HKV_TRY(decode ? policy_->on_decode(view_, plan) : policy_->on_prefill(view_, plan));
    HKV_TRY(apply_writes(il, kv, plan));
    Status st = apply(il, kv, decode);
    stats_.ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return st;
}

float* PolicyRuntime::lse_buffer(int32_t n_tok) {
    lse_ready_ = false;
    if (!active_ || !needs_.lse_scores || !needs_.attn_scores || !needs_.accumulate) return nullptr;
    lse_.resize(size_t(n_tok) * size_t(shape_.n_head));
    lse_ready_ = true;
    return lse_.data();
}

Status PolicyRuntime::apply_writes(int32_t il, KvStore& kv, const KeepPlan& plan) {
    for (const SlotWrite& w : plan.writes) {
        if (w.head < 0 || w.head >= shape_.n_head_kv || !w.k || !w.v) {
            return Status::internal("policy %.*s wrote a row to head %d of %d (or without data)",
                                    int(policy_->name().size()), policy_->name().data(), w.head, shape_.n_head_kv);
        }
        HKV_TRY(kv.write_row(il, w.head, w.slot, w.k, w.v).with_context("policy " + std::string(policy_->name())));
        if (kv.config().score_lane && !std::isnan(w.score)) kv.scores(il, w.head)[w.slot] = w.score;
    }
    return Status();
}

Status PolicyRuntime::apply(int32_t il, KvStore& kv, bool decode) {
    const int32_t nh = shape_.n_head_kv;
    bool any = false;
    for (int32_t ih = 0; ih < nh; ++ih) {
        const int32_t k = n_keep_[size_t(ih)];
        const int32_t n = n_live_[size_t(ih)];
        if (k < 0 || k == n) continue;
        const int32_t b = budget_.at(il, ih);
        if (k > n || (b > 0 && k > b)) {
            return Status::internal("policy %.*s kept %d of %d slots in layer %d head %d (budget %d)",
                                    int(policy_->name().size()), policy_->name().data(), k, n, il, ih, b);
        }
        HKV_TRY(kv.compact(il, ih, idx_.data() + size_t(ih) * size_t(std::max(view_.n_slot, 1)), k)
                    .with_context("policy " + std::string(policy_->name())));
        stats_.slots_evicted += n - k;
        any = true;
    }
    if (any) ++(decode ? stats_.decode_calls : stats_.prefill_calls);
    return Status();
}

Status PolicyRuntime::refresh(int32_t il, KvStore& kv) {
    if (!active_ || !needs_.refresh) return Status();
    const auto t0 = std::chrono::steady_clock::now();
    refresh_.clear();
    HKV_TRY(policy_->take_refresh(il, refresh_));
    for (const SlotRefresh& r : refresh_) {
        if (r.ih < 0 || r.ih >= shape_.n_head_kv) {
            return Status::internal("policy %.*s refreshed KV head %d of %d", int(policy_->name().size()),
                                    policy_->name().data(), r.ih, shape_.n_head_kv);
        }
        HKV_TRY(kv.overwrite_slots(il, r.ih, r.slot0, r.n, r.k, r.v, r.pos)
                    .with_context("policy " + std::string(policy_->name())));
    }
    stats_.ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return Status();
}

Status PolicyRuntime::select_pages(int32_t il, int32_t n_past, KvStore& kv, const float* q, AttnKvHead* heads) {
    if (!active_ || !needs_.select) return Status();
    const int32_t nh = shape_.n_head_kv;
    build_view(il, n_past, false, kv, false);
    const int32_t ps = kv.config().page_size;
    int32_t max_pages = 0;
    for (int32_t ih = 0; ih < nh; ++ih) max_pages = std::max(max_pages, (n_live_[size_t(ih)] + ps - 1) / ps);
    sel_pages_.assign(size_t(nh) * size_t(std::max(max_pages, 1)), 0);
    sel_n_.assign(size_t(nh), -1);
    PageSelection sel;
    sel.max_pages = std::max(max_pages, 1);
    sel.pages = sel_pages_;
    sel.n_pages = sel_n_;
    HKV_TRY(policy_->select(view_, std::span<const float>(q, size_t(shape_.n_head) * size_t(shape_.head_dim)), sel));
    sel_k_.resize(size_t(nh));
    sel_v_.resize(size_t(nh));
    sel_pos_.resize(size_t(nh));
    for (int32_t ih = 0; ih < nh; ++ih) {
        const int32_t np = sel_n_[size_t(ih)];
        if (np < 0) continue;  // all pages
        const AttnKvHead full = heads[ih];
        const int32_t n_pages_head = (full.n_slot + ps - 1) / ps;
        auto& kp = sel_k_[size_t(ih)];
        auto& vp = sel_v_[size_t(ih)];
        auto& pp = sel_pos_[size_t(ih)];
        kp.clear();
        vp.clear();
        pp.clear();
        int32_t prev = -1;
        for (int32_t i = 0; i < np; ++i) {
            const int32_t pg = sel_pages_[size_t(ih) * size_t(sel.max_pages) + size_t(i)];
            if (pg <= prev || pg >= n_pages_head) {
                return Status::internal("policy %.*s selected page %d (of %d) out of order in layer %d head %d",
                                        int(policy_->name().size()), policy_->name().data(), pg, n_pages_head, il, ih);
            }
            prev = pg;
            kp.push_back(full.k_pages[pg]);
            vp.push_back(full.v_pages[pg]);
            const int32_t s_end = std::min(full.n_slot, (pg + 1) * ps);
            for (int32_t s = pg * ps; s < s_end; ++s) pp.push_back(full.pos[s]);
            if (s_end - pg * ps < ps && i + 1 < np) {
                return Status::internal("policy selected a partial page before the last");
            }
        }
        heads[ih].k_pages = kp.data();
        heads[ih].v_pages = vp.data();
        heads[ih].pos = pp.data();
        heads[ih].n_slot = int32_t(pp.size());
    }
    return Status();
}

}  // namespace hkv
