// policy/snapkv.cpp — SnapKV (Li et al. 2024). At the end of the prompt, per KV head: the attention
// of the last `window` prompt queries (the observation window, summed over the queries and the GQA
// group) is max-pooled with kernel 7 over the non-window slots, and the head keeps the top
// budget - window pooled slots plus the window itself. Defaults are the paper's LongBench configs
// (window 32, kernel 7, maxpool); pool=avg and kernel=5 give the library's defaults. No compression
// during decoding: generated tokens are appended. A later segment (a question, a chat turn) ends
// like a prompt: the whole cache is compressed back to budget by its last `window` queries.
#include "policy/select.h"

namespace hkv {
namespace {

class SnapKvPolicy final : public SnapFamilyPolicy {
public:
    explicit SnapKvPolicy(const SnapOptions& o) : SnapFamilyPolicy("snapkv", o) {}
    Status begin(const ModelShape& shape, const Segment&, KvBudget& budget) override {
        budget.init(shape.n_layer, shape.n_head_kv, opt_.evict.budget);
        return Status();
    }
};

}  // namespace

Expected<std::unique_ptr<Policy>> snapkv_create(PolicySpec& spec) {
    SnapOptions o;
    HKV_TRY(read_snap_options(spec, &o));
    return std::unique_ptr<Policy>(new SnapKvPolicy(o));
}

}  // namespace hkv
