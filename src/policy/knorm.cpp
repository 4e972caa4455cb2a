// policy/knorm.cpp — Knorm (Devoto et al. 2024, "A Simple and Effective L2 Norm-Based Strategy for
// KV Cache Compression"; NVIDIA kvpress's KnormPress): keys with a low L2 norm tend to receive high
// attention, so at the end of a prompt segment each KV head keeps the `budget` slots whose keys
// have the smallest L2 norm (RoPE does not change a norm; ties go to the lower position), plus
// optional `sinks` first and `window` most recent slots (both 0 by default, as in kvpress). No
// attention statistics are needed. No compression during decoding: generated tokens are appended;
// a later segment compresses the survivors and its tokens back to the budget.
#include <cmath>
#include <vector>

#include "policy/select.h"

namespace hkv {
namespace {

class KnormPolicy final : public Policy {
public:
    explicit KnormPolicy(const EvictOptions& o) {
        opt_.evict = o;
        opt_.kernel = 1;  // the norms are ranked as they are
    }
    PolicyInfo info() const override {
        PolicyInfo i;
        i.name = "knorm";
        i.calls = kStepSegmentEnd;
        return i;
    }
    Status begin(const ModelShape& shape, const Segment&, KvBudget& budget) override {
        budget.init(shape.n_layer, shape.n_head_kv, opt_.evict.budget);
        return Status();
    }
    Status on_layer(const LayerView& v, LayerPlan& plan) override {
        const int32_t hd = v.head_dim;
        for (int32_t ih = 0; ih < v.n_head_kv; ++ih) {
            const int32_t n = v.n_live[size_t(ih)];
            const int32_t b = v.budget->at(v.il, ih);
            if (b < 0 || n <= b) continue;
            keys_.resize(size_t(n) * size_t(hd));  // [n, head_dim]
            v.kv.keys(ih, 0, n, keys_.data());
            score_.resize(size_t(n));  // [n] -|k|: the highest score is the smallest norm
            for (int32_t s = 0; s < n; ++s) {
                const float* k = keys_.data() + size_t(s) * size_t(hd);
                double sq = 0.0;
                for (int32_t d = 0; d < hd; ++d) sq += double(k[d]) * double(k[d]);
                score_[size_t(s)] = -float(std::sqrt(sq));
            }
            plan.n_keep[size_t(ih)] = keep_scored(score_.data(), n, b, opt_, plan.head(ih), scratch_);
        }
        return Status();
    }

private:
    SnapOptions opt_;
    SelectScratch scratch_;
    std::vector<float> keys_, score_;
};

}  // namespace

Expected<std::unique_ptr<Policy>> knorm_create(PolicySpec& spec) {
    EvictOptions o;
    HKV_TRY(read_evict_options(spec, 0, 0, &o));
    return std::unique_ptr<Policy>(new KnormPolicy(o));
}

}  // namespace hkv
