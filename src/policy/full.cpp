// policy/full.cpp — `full`: no compression. Its info asks for nothing, so the runtime stays
// inactive and never calls it: logits are bit-identical to running without a policy. Every head
// is unbounded; a later segment is appended like the first.
#include "policy/spec.h"

namespace hkv {
namespace {

class FullPolicy final : public Policy {
public:
    PolicyInfo info() const override {
        PolicyInfo i;
        i.name = "full";
        return i;
    }
    Status begin(const ModelShape& shape, const Segment&, KvBudget& budget) override {
        budget.init(shape.n_layer, shape.n_head_kv, -1);
        return Status();
    }
    Status on_layer(const LayerView&, LayerPlan&) override { return Status(); }
};

}  // namespace

Expected<std::unique_ptr<Policy>> full_create(PolicySpec&) { return std::unique_ptr<Policy>(new FullPolicy()); }

}  // namespace hkv
