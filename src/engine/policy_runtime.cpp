// engine/policy_runtime.cpp — see policy_runtime.h.
#include "engine/policy_runtime.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "engine/policy_check.h"
#include "engine/policy_stats.h"
#include "model/model.h"
#include "policy/spec.h"
#include "tokenizer/delimiters.h"

namespace hkv {

ModelShape policy_shape(const Model& model, int32_t n_ctx, std::vector<uint8_t>* token_flags) {
    const ModelConfig& c = model.config();
    ModelShape shape{c.n_layer, c.n_head, c.n_head_kv, c.head_dim, n_ctx > 0 ? n_ctx : c.n_ctx_train};
    *token_flags = tokenizer_delimiter_mask(model.tokenizer());  // 1 = kTokenSeparator
    shape.token_flags = *token_flags;
    return shape;
}

std::vector<uint8_t> model_local_layers(const Model& model, int32_t n_ctx) {
    const ModelConfig& c = model.config();
    if (n_ctx <= 0) n_ctx = c.n_ctx_train;
    std::vector<uint8_t> local(size_t(c.n_layer), 0);
    bool any_global = false, any_local = false;
    for (int32_t il = 0; il < c.n_layer; ++il) {
        local[size_t(il)] = c.layer_swa(il) && c.n_swa < n_ctx;
        (c.layer_swa(il) ? any_local : any_global) = true;
    }
    if (!any_global || !any_local || c.n_swa >= n_ctx) local.clear();
    return local;
}

Status policy_page_check(const PolicyInfo& info, int32_t kv_page_size) {
    const int32_t unit = info.select_page;
    if (kv_page_size > 0 && info.select_pages && unit > 0 && (unit > kv_page_size || kv_page_size % unit != 0)) {
        return Status::invalid("%.*s: pages of %d tokens must divide the KV cache's pages of %d (--kv-page-size)",
                               int(info.name.size()), info.name.data(), unit, kv_page_size);
    }
    return Status();
}

Status policy_validate(std::string_view spec, const Model& model, int32_t n_ctx, int32_t kv_page_size) {
    if (n_ctx < 0) return Status::invalid("policy: context of %d tokens", n_ctx);
    std::vector<uint8_t> flags;
    HKV_TRY(policy_validate(spec, policy_shape(model, n_ctx, &flags)));
    if (kv_page_size <= 0) return Status();
    HKV_ASSIGN_OR_RETURN(std::unique_ptr<Policy> p, policy_create(spec));
    return policy_page_check(p->info(), kv_page_size);
}

PolicyRuntime::PolicyRuntime(std::unique_ptr<Policy> policy, const ModelShape& shape)
    : policy_(std::move(policy)), info_(policy_->info()), shape_(shape) {
    active_ = info_.calls != 0 || info_.decode != DecodeKv::kAppends || info_.select_pages || !info_.stats.empty();
    for (size_t i = 0; i < info_.stats.size(); ++i) {
        const StatRequest& r = info_.stats[i];
        if (stat_entry(r.kind).lane) lane_ = int32_t(i);
        if (r.kind == StatKind::kAttention && r.segment_tail && (r.steps & kStepSegmentEnd)) {
            tail_min_ = std::max(tail_min_, r.n_query);
        }
    }
}

Expected<std::unique_ptr<PolicyRuntime>> PolicyRuntime::create(std::unique_ptr<Policy> policy,
                                                               const ModelShape& shape, int32_t kv_page_size) {
    const PolicyInfo info = policy->info();
    HKV_TRY(policy_page_check(info, kv_page_size));
    int32_t lanes = 0;
    for (const StatRequest& r : info.stats) lanes += stat_entry(r.kind).lane ? 1 : 0;
    if (lanes > 1) {
        return Status::internal("policy %.*s asks for %d accumulated statistics; the store keeps one lane",
                                int(info.name.size()), info.name.data(), lanes);
    }
    return std::unique_ptr<PolicyRuntime>(new PolicyRuntime(std::move(policy), shape));
}

Status PolicyRuntime::plan(const Segment& seg, KvBudget& budget) {
    HKV_TRY(policy_plan(*policy_, shape_, seg, budget));
    for (int32_t il = 0; il < budget.n_layer; ++il) {
        if (!layer_local(il)) continue;
        for (int32_t ih = 0; ih < budget.n_head_kv; ++ih) budget.at(il, ih) = -1;
    }
    return Status();
}

Status PolicyRuntime::begin_segment(const Segment& seg) {
    if (seg.index == 0) {
        stats_ = PolicyStats();
        HKV_TRY(plan(seg, budget_));
        prompt_ = seg;
    }
    segment_ = seg;
    return Status();
}

Status PolicyRuntime::restore(const Segment& prompt, const Segment& seg, const KvBudget& budget,
                              std::string_view state, int64_t decode_steps) {
    HKV_TRY(begin_segment(prompt));
    if (budget_.n_keep != budget.n_keep) {
        return Status::invalid("policy %.*s: the saved budgets differ from the ones this policy plans for the same "
                               "prompt of %d tokens (another taxonomy or version?)",
                               int(info_.name.size()), info_.name.data(), prompt.n_tokens);
    }
    PolicyStateIO io;
    io.in = state;
    HKV_TRY(policy_->state(io));
    segment_ = seg;
    stats_.decode_steps = decode_steps;
    return Status();
}

void PolicyRuntime::begin_eval() {
    touched_ = false;
    stats_saved_ = stats_;
    lane_saved_.assign(lane_ >= 0 ? size_t(shape_.n_layer) : 0, 0);
}

bool PolicyRuntime::rollback(KvStore& kv) {
    stats_ = stats_saved_;
    if (touched_) return false;
    const int32_t nh = shape_.n_head_kv;
    for (int32_t il = 0; il < int32_t(lane_saved_.size()); ++il) {
        if (!lane_saved_[size_t(il)]) continue;
        for (int32_t ih = 0; ih < nh; ++ih) {  // no hook ran: the old slots are the heads' first ones
            const std::vector<float>& saved = lane_save_[size_t(il) * size_t(nh) + size_t(ih)];
            const size_t n = std::min(saved.size(), size_t(kv.n_slot(il, ih)));
            std::copy_n(saved.begin(), n, kv.scores(il, ih));
        }
    }
    return true;
}

void PolicyRuntime::load_heads(int32_t il, const KvStore& kv) {
    heads_.resize(size_t(shape_.n_head_kv));
    for (int32_t ih = 0; ih < shape_.n_head_kv; ++ih) heads_[size_t(ih)] = kv.view(il, ih);
}

void PolicyRuntime::build_view(int32_t il, PolicyStep step, int32_t n_past, const KvStore& kv, ThreadPool* pool) {
    const int32_t nh = shape_.n_head_kv;
    n_live_.resize(size_t(nh));
    pos_rows_.resize(size_t(nh));
    int32_t n_slot = 0;
    for (int32_t ih = 0; ih < nh; ++ih) {
        n_live_[size_t(ih)] = kv.n_slot(il, ih);
        pos_rows_[size_t(ih)] = kv.positions(il, ih);
        n_slot = std::max(n_slot, n_live_[size_t(ih)]);
    }
    view_ = LayerView();
    view_.il = il;
    view_.n_layer = shape_.n_layer;
    view_.n_head = shape_.n_head;
    view_.n_head_kv = nh;
    view_.head_dim = shape_.head_dim;
    view_.step = step;
    view_.segment = segment_;
    view_.n_past = n_past;
    view_.n_live = n_live_;
    view_.pos = pos_rows_;
    view_.budget = &budget_;
    if (tokens_) view_.tokens = std::span<const int32_t>(tokens_->data(), std::min(tokens_->size(), size_t(n_past)));
    view_.kv = KvLayerView(&kv, il, pool);
    const size_t stride = size_t(std::max(n_slot, 1));
    keep_.resize(size_t(nh) * stride);
    n_keep_.assign(size_t(nh), -1);
}

Status PolicyRuntime::before_attention(int32_t il, PolicyStep step, int32_t n_past, KvStore& kv, ThreadPool& pool,
                                       const float* q, AttnKvHead* heads, int32_t* page_size) {
    if (!active_ || layer_local(il)) return Status();
    if (info_.cold_tier) HKV_TRY(kv.apply_pending(il, &pool));
    if (step != kStepDecode || !info_.select_pages) return Status();
    const int32_t nh = shape_.n_head_kv;
    const int32_t ps = kv.config().page_size;
    const int32_t unit = info_.select_page > 0 ? info_.select_page : ps;  // slots per selected page
    if (unit > ps || ps % unit != 0) {  // create() refused such a policy for this cache
        return Status::internal("policy %.*s selects pages of %d slots on cache pages of %d",
                                int(info_.name.size()), info_.name.data(), unit, ps);
    }
    const int32_t split = ps / unit;  // selected pages per cache page
    build_view(il, step, n_past, kv, &pool);
    view_.n_q = 1;
    view_.q = std::span<const float>(q, size_t(shape_.n_head) * size_t(shape_.head_dim));
    int32_t max_pages = 0;
    for (int32_t ih = 0; ih < nh; ++ih) max_pages = std::max(max_pages, (n_live_[size_t(ih)] + unit - 1) / unit);
    sel_pages_.assign(size_t(nh) * size_t(std::max(max_pages, 1)), 0);
    sel_n_.assign(size_t(nh), -1);
    PageSelection sel;
    sel.page_size = unit;
    sel.max_pages = std::max(max_pages, 1);
    sel.pages = sel_pages_;
    sel.n_pages = sel_n_;
    view_.step = kStepSelect;
    LayerPlan plan;
    plan.select = &sel;
    HKV_TRY(policy_->on_layer(view_, plan));
    sel_k_.resize(size_t(nh));
    sel_v_.resize(size_t(nh));
    sel_pos_.resize(size_t(nh));
    for (int32_t ih = 0; ih < nh; ++ih) {
        const size_t k_unit_bytes = size_t(unit) * kv.k_row_bytes(il, ih);
        const size_t v_unit_bytes = size_t(unit) * kv.v_row_bytes(il, ih);
        const int32_t np = sel_n_[size_t(ih)];
        if (np < 0 && split == 1) continue;  // all pages: the cache's own table
        const AttnKvHead full = heads[ih];
        const int32_t n_units = (full.n_slot + unit - 1) / unit;
        auto& kp = sel_k_[size_t(ih)];
        auto& vp = sel_v_[size_t(ih)];
        auto& pp = sel_pos_[size_t(ih)];
        kp.clear();
        vp.clear();
        pp.clear();
        // selected page u: the unit-slot run starting at row (u % split) * unit of cache page u / split
        auto add = [&](int32_t u) {
            kp.push_back(static_cast<const uint8_t*>(full.k_pages[u / split]) + size_t(u % split) * k_unit_bytes);
            vp.push_back(static_cast<const uint8_t*>(full.v_pages[u / split]) + size_t(u % split) * v_unit_bytes);
        };
        if (np < 0) {  // all pages, in selection-sized pages (the slots and positions are unchanged)
            for (int32_t u = 0; u < n_units; ++u) add(u);
            heads[ih].k_pages = kp.data();
            heads[ih].v_pages = vp.data();
            continue;
        }
        int32_t prev = -1;
        for (int32_t i = 0; i < np; ++i) {
            const int32_t u = sel_pages_[size_t(ih) * size_t(sel.max_pages) + size_t(i)];
            if (u <= prev || u >= n_units) {
                return Status::internal("policy %.*s selected page %d (of %d) out of order in layer %d head %d",
                                        int(info_.name.size()), info_.name.data(), u, n_units, il, ih);
            }
            prev = u;
            add(u);
            const int32_t s_end = std::min(full.n_slot, (u + 1) * unit);
            for (int32_t s = u * unit; s < s_end; ++s) pp.push_back(full.pos[s]);
            if (s_end - u * unit < unit && i + 1 < np) {
                return Status::internal("policy selected a partial page before the last");
            }
        }
        heads[ih].k_pages = kp.data();
        heads[ih].v_pages = vp.data();
        heads[ih].pos = PosLane(pp.data(), pp.size());
        heads[ih].n_slot = int32_t(pp.size());
    }
    *page_size = unit;
    return Status();
}

float* PolicyRuntime::lse_buffer(PolicyStep step, int32_t n_tok) {
    lse_ready_ = false;
    if (!active_) return nullptr;
    // a decode step over selected pages attends to those only: its lse is not the whole row's
    if (step == kStepDecode && info_.select_pages) return nullptr;
    for (const StatRequest& r : info_.stats) lse_ready_ = lse_ready_ || stat_wants_lse(r, step);
    if (!lse_ready_) return nullptr;
    lse_.resize(size_t(n_tok) * size_t(shape_.n_head));
    return lse_.data();
}

AttnColSums* PolicyRuntime::colsum_buffer(int32_t il, PolicyStep step, int32_t n_tok, const AttnKvHead* heads) {
    colsums_ready_ = false;
    // the lane's request reads the lse at this step, and the heads are the store's own slots
    if (!lse_ready_ || lane_ < 0 || layer_local(il) || info_.select_pages) return nullptr;
    const StatRequest& r = info_.stats[size_t(lane_)];
    if (!r.from_lse || !(r.steps & step)) return nullptr;
    const int32_t nh = shape_.n_head_kv;
    colsum_n_slot_.resize(size_t(nh));
    int32_t stride = 0;
    for (int32_t ih = 0; ih < nh; ++ih) {
        colsum_n_slot_[size_t(ih)] = heads[ih].n_slot;
        stride = std::max(stride, heads[ih].n_slot);
    }
    colsum_values_.resize(size_t(nh) * size_t(stride));
    colsum_done_.assign(size_t(nh), 0);
    colsums_.sums = colsum_values_.data();
    colsums_.stride = stride;
    colsums_.t_begin = stat_first_query(r, n_tok);
    colsums_.done = colsum_done_.data();
    colsums_ready_ = true;
    return &colsums_;
}

Status PolicyRuntime::check_plan(int32_t il, const LayerPlan& plan) const {
    const int32_t nh = shape_.n_head_kv;
    for (const RowWrite& w : plan.writes) {
        if (w.head < 0 || w.head >= nh || !w.k || !w.v) {
            return Status::internal("policy %.*s wrote a row to head %d of %d (or without data)", int(info_.name.size()),
                                    info_.name.data(), w.head, nh);
        }
    }
    for (const ColdOp& op : plan.cold) {
        if (!info_.cold_tier || op.head < 0 || op.head >= nh) {
            return Status::internal("policy %.*s planned a cold-tier operation on head %d of %d%s",
                                    int(info_.name.size()), info_.name.data(), op.head, nh,
                                    info_.cold_tier ? "" : " without declaring a cold tier");
        }
    }
    for (int32_t ih = 0; ih < nh; ++ih) {
        const int32_t k = n_keep_[size_t(ih)];
        const int32_t n = n_live_[size_t(ih)];
        if (k < 0 || k == n) continue;
        const int32_t b = budget_.at(il, ih);
        if (k > n || (b > 0 && k > b)) {
            return Status::internal("policy %.*s kept %d of %d slots in layer %d head %d (budget %d)",
                                    int(info_.name.size()), info_.name.data(), k, n, il, ih, b);
        }
    }
    return Status();
}

Status PolicyRuntime::after_layer(int32_t il, PolicyStep step, int32_t n_past, KvStore& kv, ThreadPool& pool,
                                  const AttnParams& ap, const float* q, const int32_t* qpos, int32_t n_tok) {
    if (!active_ || layer_local(il)) return Status();
    const auto t0 = std::chrono::steady_clock::now();
    const int32_t nh = shape_.n_head_kv;
    if (step == kStepDecode && il == 0) ++stats_.decode_steps;
    StatStep in;
    in.pool = &pool;
    in.ap = &ap;
    in.q = q;
    in.qpos = qpos;
    in.n_tok = n_tok;
    in.lse = lse_ready_ ? lse_.data() : nullptr;
    lse_ready_ = false;
    const bool colsums_ready = colsums_ready_;
    colsums_ready_ = false;
    // ---- the lane: every step the request names, whether or not the policy runs ----
    if (lane_ >= 0 && (info_.stats[size_t(lane_)].steps & step)) {
        load_heads(il, kv);
        int32_t n_slot = 0;
        for (int32_t ih = 0; ih < nh; ++ih) n_slot = std::max(n_slot, heads_[size_t(ih)].n_slot);
        lane_add_.assign(size_t(nh) * size_t(n_slot), 0.0f);
        in.heads = heads_.data();
        in.stride = n_slot;
        // the kernel's column sums, when it took them over these very slots
        bool same_heads = colsums_ready && in.lse;
        for (int32_t ih = 0; ih < nh && same_heads; ++ih) {
            same_heads = heads_[size_t(ih)].n_slot == colsum_n_slot_[size_t(ih)];
        }
        in.colsums = same_heads ? &colsums_ : nullptr;
        stat_entry(info_.stats[size_t(lane_)].kind).compute(info_.stats[size_t(lane_)], in, lane_add_.data(), nullptr);
        in.colsums = nullptr;
        if (size_t(il) < lane_saved_.size() && !lane_saved_[size_t(il)]) {  // the lanes before this eval (rollback)
            lane_save_.resize(size_t(shape_.n_layer) * size_t(nh));
            for (int32_t ih = 0; ih < nh; ++ih) {
                const float* lane = kv.scores(il, ih);
                lane_save_[size_t(il) * size_t(nh) + size_t(ih)].assign(lane, lane + heads_[size_t(ih)].n_slot);
            }
            lane_saved_[size_t(il)] = 1;
        }
        for (int32_t ih = 0; ih < nh; ++ih) {
            float* lane = kv.scores(il, ih);
            const float* add = lane_add_.data() + size_t(ih) * size_t(n_slot);
            for (int32_t s = 0; s < heads_[size_t(ih)].n_slot; ++s) lane[s] += add[s];
        }
    }
    // ---- does the policy run at this step? ----
    bool call = (info_.calls & step) != 0;
    if (!call && step == kStepDecode && info_.decode == DecodeKv::kEvicts) {
        for (int32_t ih = 0; ih < nh && !call; ++ih) {
            const int32_t b = budget_.at(il, ih);
            call = b > 0 && int64_t(kv.n_slot(il, ih)) > int64_t(b) + info_.decode_slack;
        }
    }
    if (!call) {
        stats_.ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        return Status();
    }
    touched_ = true;
    build_view(il, step, n_past, kv, &pool);
    const int32_t n_slot = int32_t(keep_.size() / size_t(nh));
    // ---- the statistics of this step, in the order of the requests ----
    const size_t n_req = info_.stats.size();
    stat_views_.assign(n_req, StatValues());
    stat_values_.resize(n_req);
    stat_counts_.resize(n_req);
    if (n_req > 0) load_heads(il, kv);
    in.heads = heads_.data();
    in.stride = n_slot;
    for (size_t i = 0; i < n_req; ++i) {
        const StatRequest& r = info_.stats[i];
        const StatEntry& e = stat_entry(r.kind);
        std::vector<float>& values = stat_values_[i];
        values.assign(size_t(nh) * size_t(n_slot), 0.0f);
        if (e.lane) {  // the store's lanes are the values
            for (int32_t ih = 0; ih < nh; ++ih) {
                const float* lane = kv.scores(il, ih);
                std::copy(lane, lane + n_live_[size_t(ih)], values.begin() + long(ih) * n_slot);
            }
        } else if (r.steps & step) {
            if (e.counts) stat_counts_[i].assign(size_t(nh) * size_t(n_slot), 0.0f);
            e.compute(r, in, values.data(), e.counts ? stat_counts_[i].data() : nullptr);
        } else {
            continue;
        }
        stat_views_[i].stride = n_slot;
        stat_views_[i].values = values;
        if (e.counts) stat_views_[i].counts = stat_counts_[i];
    }
    view_.stats = stat_views_;
    view_.n_q = n_tok;
    view_.q = std::span<const float>(q, size_t(n_tok) * size_t(shape_.n_head) * size_t(shape_.head_dim));
    LayerPlan plan;
    plan.stride = n_slot;
    plan.keep = keep_;
    plan.n_keep = n_keep_;
    HKV_TRY(policy_->on_layer(view_, plan));
    HKV_TRY(check_plan(il, plan));
    bool compacted = false;
    for (int32_t ih = 0; ih < nh; ++ih) {
        const int32_t k = n_keep_[size_t(ih)];
        if (k < 0 || k == n_live_[size_t(ih)]) continue;
        stats_.slots_evicted += n_live_[size_t(ih)] - k;
        compacted = true;
    }
    const Status st = kv.apply(il, plan).with_context("policy " + std::string(info_.name));
    if (st.ok() && compacted) ++(step == kStepDecode ? stats_.decode_calls : stats_.prefill_calls);
    stats_.ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return st;
}

std::string PolicyRuntime::report(const KvStore& kv) const {
    std::string r = policy_->report();
    const ColdStats c = kv.cold_stats();
    if (!c.exists) return r;
    char line[384];
    std::snprintf(line, sizeof line,
                  "%scold tier %s %.2f MiB; %lld gathers applied, %.2f MiB = %.1f KiB/token over %lld decode tokens; "
                  "I/O %.2f ms, exposed wait %.2f ms, hidden %.2f ms",
                  r.empty() ? "" : "; ", c.on_disk ? "file" : "RAM", double(c.bytes_stored) / 1048576.0,
                  (long long)c.refreshes, double(c.bytes_gathered) / 1048576.0,
                  stats_.decode_steps ? double(c.bytes_gathered) / 1024.0 / double(stats_.decode_steps) : 0.0,
                  (long long)stats_.decode_steps, c.io_ms, c.wait_ms, std::max(0.0, c.io_ms - c.wait_ms));
    return r + line;
}

}  // namespace hkv
