// policy/h2o.cpp — H2O, Heavy-Hitter Oracle (Zhang et al. 2023). A slot's score is the attention it
// has received from every query so far (prefill: column sums of the causal attention; decode: each
// new row added), summed over the GQA group; the engine keeps these sums in per-slot lanes of the
// KV store that move with compaction. A head keeps its most recent `window` slots (and `sinks`
// first slots, 0 by default) plus the heavy hitters: the highest accumulated scores among the
// rest, budget slots in all. Eviction runs at the end of every prompt segment (a later segment: over
// the survivors and the new tokens, by their accumulated scores) and, during decoding, when a
// head holds more than budget + slack slots (slack=64 batches the compaction; slack=0 evicts
// every step as the paper does). Default window = budget / 2 (the paper's equal heavy/recent split).
#include "policy/select.h"

namespace hkv {
namespace {

class H2oPolicy final : public Policy {
public:
    H2oPolicy(const EvictOptions& o, int32_t slack) : slack_(slack) {
        opt_.evict = o;
        opt_.kernel = 1;  // H2O ranks the raw accumulated scores
    }
    PolicyInfo info() const override {
        PolicyInfo i;
        i.name = "h2o";
        i.calls = kStepSegmentEnd;
        i.decode = DecodeKv::kEvicts;
        i.decode_slack = slack_;
        i.stats = {StatRequest{StatKind::kAttentionSum, kStepAll}};  // every query's attention
        return i;
    }
    Status begin(const ModelShape& shape, const Segment&, KvBudget& budget) override {
        budget.init(shape.n_layer, shape.n_head_kv, opt_.evict.budget);
        return Status();
    }
    // At a prompt segment's end and at a decode step over budget + slack: every head above budget
    // keeps its window, sinks and heavy hitters.
    Status on_layer(const LayerView& v, LayerPlan& plan) override {
        const StatValues& acc = v.stats[0];
        for (int32_t ih = 0; ih < v.n_head_kv; ++ih) {
            const int32_t n = v.n_live[size_t(ih)];
            if (n <= opt_.evict.budget) continue;
            plan.n_keep[size_t(ih)] = keep_scored(acc.head(ih), n, opt_.evict.budget, opt_, plan.head(ih), scratch_);
        }
        return Status();
    }

private:
    SnapOptions opt_;
    int32_t slack_;
    SelectScratch scratch_;
};

}  // namespace

Expected<std::unique_ptr<Policy>> h2o_create(PolicySpec& spec) {
    int32_t def_window = 0;
    if (spec.has("budget")) {
        HKV_ASSIGN_OR_RETURN(int64_t budget, spec.get_int("budget", 0, 1, int64_t(1) << 30));
        def_window = int32_t(budget / 2);
    }
    EvictOptions o;
    HKV_TRY(read_evict_options(spec, def_window, 0, &o));
    HKV_ASSIGN_OR_RETURN(int64_t slack, spec.get_int("slack", 64, 0, int64_t(1) << 30));
    return std::unique_ptr<Policy>(new H2oPolicy(o, int32_t(slack)));
}

}  // namespace hkv
