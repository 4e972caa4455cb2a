// policy/tova.cpp — TOVA, Token Omission Via Attention (Oren et al. 2024, "Transformers are
// Multi-State RNNs"; NVIDIA kvpress's TOVAPress). A token's score is the attention the LATEST query
// gives it, averaged over all heads of the layer (the paper found the head average better than
// per-head scores), so a layer's KV heads all keep the same tokens: the latest one plus the
// budget - 1 best scored. Applied at the end of a prompt segment (its last query, as kvpress does)
// and, during decoding, when the heads hold more than budget + slack slots, with that step's
// query (slack=0 evicts at every step, as the paper; the default 64 batches the compaction).
#include <algorithm>
#include <vector>

#include "policy/select.h"

namespace hkv {
namespace {

class TovaPolicy final : public Policy {
public:
    TovaPolicy(int32_t budget, int32_t slack) : budget_(budget), slack_(slack) {}
    PolicyInfo info() const override {
        PolicyInfo i;
        i.name = "tova";
        i.calls = kStepSegmentEnd;
        i.decode = DecodeKv::kEvicts;
        i.decode_slack = slack_;
        i.stats = {StatRequest{StatKind::kAttention, kStepSegmentEnd | kStepDecode, 1}};  // the latest query
        return i;
    }
    Status begin(const ModelShape& shape, const Segment&, KvBudget& budget) override {
        budget.init(shape.n_layer, shape.n_head_kv, budget_);
        return Status();
    }
    // Every head of a layer holds the same positions (they are always compacted alike), so the
    // head-summed attention row ranks the layer's tokens once.
    Status on_layer(const LayerView& v, LayerPlan& plan) override {
        const int32_t n = v.n_live[0];
        if (n <= budget_) return Status();
        for (int32_t ih = 1; ih < v.n_head_kv; ++ih) {
            if (v.n_live[size_t(ih)] != n) return Status::internal("tova: the heads of layer %d hold different slots", v.il);
        }
        const StatValues& att = v.stats[0];
        sum_.assign(size_t(n), 0.0f);  // [n] the latest query's attention summed over every query head
        for (int32_t ih = 0; ih < v.n_head_kv; ++ih) {
            const float* a = att.head(ih);
            for (int32_t s = 0; s < n; ++s) sum_[size_t(s)] += a[s];
        }
        keep_.resize(size_t(budget_));
        top_k_indices(sum_.data(), n - 1, budget_ - 1, keep_.data());
        keep_[size_t(budget_ - 1)] = n - 1;  // the latest token stays
        for (int32_t ih = 0; ih < v.n_head_kv; ++ih) {
            std::copy(keep_.begin(), keep_.end(), plan.head(ih));
            plan.n_keep[size_t(ih)] = budget_;
        }
        return Status();
    }

private:
    int32_t budget_, slack_;
    std::vector<float> sum_;
    std::vector<int32_t> keep_;
};

}  // namespace

Expected<std::unique_ptr<Policy>> tova_create(PolicySpec& spec) {
    if (!spec.has("budget")) return Status::invalid("tova: option budget=N (slots per KV head) is required, or ratio=F (the fraction of the prompt kept)");
    HKV_ASSIGN_OR_RETURN(int64_t budget, spec.get_int("budget", 0, 1, int64_t(1) << 30));
    HKV_ASSIGN_OR_RETURN(int64_t slack, spec.get_int("slack", 64, 0, int64_t(1) << 30));
    return std::unique_ptr<Policy>(new TovaPolicy(int32_t(budget), int32_t(slack)));
}

}  // namespace hkv
