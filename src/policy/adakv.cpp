// policy/adakv.cpp — Ada-KV (Feng et al. 2024): head-adaptive budgets with a floor, on SnapKV scores.
// At the end of the prompt, per layer, with B' = budget - window - sinks (the selected part per
// head) and H = n_head_kv:
//   1. per head, SnapKV scores of the non-window slots (window 32, kernel 7 maxpool; GQA: the
//      engine's scores are already summed over the group, i.e. the group mean up to a factor);
//   2. the global top H*B' of those scores across the layer's heads; c_h = picks of head h;
//   3. head h selects b_h = round(c_h*(1 - alpha) + alpha*B') slots (rounded so that sum b_h = H*B'
//      exactly), its own top b_h, plus its sinks and window.
// So the layer keeps exactly H*budget slots, as a uniform budget would, but heads whose scores
// dominate get more and every head keeps at least the floor alpha*B'. Default alpha = 0.2 (the
// paper's LongBench setting; its library default is 0.5).
//
// Budgets: KvBudget is a per-head cap fixed before the scores exist, so begin sets every
// head's cap to the most allocation 3 can give one head, sinks + window + ceil((1-alpha)*H*B' +
// alpha*B'), and the per-head b_h (and the per-layer total H*budget) are enforced here.
// No compression during decoding; a later segment is compressed at its end the same way, over the
// survivors and the new tokens.
#include <algorithm>
#include <cmath>

#include "policy/head_budgets.h"
#include "policy/select.h"

namespace hkv {
namespace {

class AdaKvPolicy final : public SnapFamilyPolicy {
public:
    AdaKvPolicy(const SnapOptions& o, double alpha) : SnapFamilyPolicy("adakv", o), alpha_(alpha) {}

    Status begin(const ModelShape& shape, const Segment&, KvBudget& budget) override {
        const double bsel = double(selected_per_head());
        const int32_t cap = fixed() + int32_t(std::ceil((1.0 - alpha_) * double(shape.n_head_kv) * bsel + alpha_ * bsel - 1e-9));
        budget.init(shape.n_layer, shape.n_head_kv, cap);
        return Status();
    }

    Status on_layer(const LayerView& v, LayerPlan& plan) override {
        const int32_t nh = v.n_head_kv, bsel = selected_per_head(), s = opt_.evict.sinks;
        const StatValues& scores = v.stats[0];
        // Heads that hold no more than the uniform budget keep everything and take no part.
        std::vector<int32_t> heads;
        for (int32_t ih = 0; ih < nh; ++ih) {
            if (v.n_live[size_t(ih)] > opt_.evict.budget) heads.push_back(ih);
        }
        if (heads.empty()) return Status();
        // 1. pooled scores of each head's candidates [sinks, n - window), flattened head after head
        flat_.clear();
        offset_.assign(heads.size() + 1, 0);
        for (size_t j = 0; j < heads.size(); ++j) {
            const int32_t ih = heads[j];
            const int32_t prefix = v.n_live[size_t(ih)] - opt_.evict.window;
            const float* sc = scores.head(ih);
            pooled_.resize(size_t(prefix));
            pool1d(sc, prefix, snap_kernel(opt_.kernel, prefix), opt_.pool, pooled_.data());
            flat_.insert(flat_.end(), pooled_.begin() + s, pooled_.end());
            offset_[j + 1] = int32_t(flat_.size());
        }
        // 2. global top H*B', the picks per head, and 3. per-head budgets summing to H*B'
        const std::vector<int32_t> b = adaptive_head_budgets(flat_, offset_, bsel, alpha_, picks_);
        // each head's own SnapKV selection
        for (size_t j = 0; j < heads.size(); ++j) {
            const int32_t ih = heads[j];
            plan.n_keep[size_t(ih)] =
                keep_scored(scores.head(ih), v.n_live[size_t(ih)], fixed() + b[j], opt_, plan.head(ih), scratch_);
        }
        return Status();
    }

private:
    int32_t fixed() const { return opt_.evict.window + opt_.evict.sinks; }
    int32_t selected_per_head() const { return opt_.evict.budget - fixed(); }

    double alpha_;
    std::vector<float> flat_, pooled_;      // [sum of candidates], [n_slot]
    std::vector<int32_t> offset_, picks_;   // [heads + 1], [H*B']
};

}  // namespace

Expected<std::unique_ptr<Policy>> adakv_create(PolicySpec& spec) {
    SnapOptions o;
    HKV_TRY(read_snap_options(spec, &o));
    HKV_ASSIGN_OR_RETURN(double alpha, spec.get_float("alpha", 0.2, 0.0, 1.0));
    return std::unique_ptr<Policy>(new AdaKvPolicy(o, alpha));
}

}  // namespace hkv
