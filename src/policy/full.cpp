// policy/full.cpp — `full`: no compression. Every head is unbounded; the engine never calls the
// hooks with anything to do. Logits are bit-identical to running without a policy.
#include "policy/spec.h"

namespace hkv {
namespace {

class FullPolicy final : public Policy {
public:
    std::string_view name() const override { return "full"; }
    PolicyNeeds needs() const override { return PolicyNeeds{}; }
    Status plan_budget(const ModelShape& shape, int32_t, KvBudget& budget) override {
        budget.init(shape.n_layer, shape.n_head_kv, -1);
        return Status();
    }
    Status on_prefill(const LayerView&, KeepPlan&) override { return Status(); }
    Status on_decode(const LayerView&, KeepPlan&) override { return Status(); }
};

}  // namespace

Expected<std::unique_ptr<Policy>> full_create(PolicySpec&) { return std::unique_ptr<Policy>(new FullPolicy()); }

}  // namespace hkv
