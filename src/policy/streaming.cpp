// policy/streaming.cpp — StreamingLLM (Xiao et al. 2023): keep `sinks` initial tokens (attention
// sinks, default 4) and the most recent budget - sinks tokens. No scores needed. Applied at the end
// of every prompt segment (a later segment: the sinks and the most recent tokens of everything) and,
// during decoding, whenever a head exceeds budget + slack (slack = 64 slots, evicted in one batch so
// compaction is amortized).
#include "policy/spec.h"

namespace hkv {
namespace {

class StreamingPolicy final : public Policy {
public:
    explicit StreamingPolicy(int32_t budget, int32_t sinks) : budget_(budget), sinks_(sinks) {}
    PolicyInfo info() const override {
        PolicyInfo i;
        i.name = "streaming";
        i.calls = kStepSegmentEnd;  // TODO(#4): stream within the prompt when memory-capped
        i.decode = DecodeKv::kEvicts;
        i.decode_slack = 64;
        return i;
    }
    Status begin(const ModelShape& shape, const Segment&, KvBudget& budget) override {
        budget.init(shape.n_layer, shape.n_head_kv, budget_);
        return Status();
    }
    // Per head: slots [0, sinks) and the last budget - sinks slots (slots are in position order).
    Status on_layer(const LayerView& v, LayerPlan& plan) override {
        for (int32_t ih = 0; ih < v.n_head_kv; ++ih) {
            const int32_t n = v.n_live[size_t(ih)];
            if (n <= budget_) continue;
            int32_t* idx = plan.head(ih);
            int32_t k = 0;
            for (int32_t s = 0; s < sinks_; ++s) idx[k++] = s;
            for (int32_t s = n - (budget_ - sinks_); s < n; ++s) idx[k++] = s;
            plan.n_keep[size_t(ih)] = k;
        }
        return Status();
    }

private:
    int32_t budget_, sinks_;
};

}  // namespace

Expected<std::unique_ptr<Policy>> streaming_create(PolicySpec& spec) {
    if (!spec.has("budget")) return Status::invalid("streaming: option budget=N (slots per KV head) is required, or ratio=F (the fraction of the prompt kept)");
    HKV_ASSIGN_OR_RETURN(int64_t budget, spec.get_int("budget", 0, 1, int64_t(1) << 30));
    const bool sinks_given = spec.has("sinks");
    HKV_ASSIGN_OR_RETURN(int64_t sinks, spec.get_int("sinks", 4, 0, budget - 1));
    if (!sinks_given && sinks >= budget) {  // the default 4 sinks must leave room for a recent token
        return Status::invalid("streaming: budget=%lld leaves no room for a recent token after the default 4 sinks; "
                               "use budget >= 5 or give sinks=N with N < budget", (long long)budget);
    }
    return std::unique_ptr<Policy>(new StreamingPolicy(int32_t(budget), int32_t(sinks)));
}

}  // namespace hkv
