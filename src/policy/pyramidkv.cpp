// policy/pyramidkv.cpp — PyramidKV (Cai et al. 2024): SnapKV scoring and selection with per-layer
// budgets that form an arithmetic sequence, lower layers keeping more. With C = budget (the mean
// per head), w = window, s = sinks, V = C - w - s (the selected part), L = prompt length, N = layers:
//   min = V / beta,  max = 2V - min,  step = (max - min) / (N - 1),  cap_l = max - l * step
// and layer l keeps s + w + cap_l slots per head. If max > L - w - s it is clipped there and min
// recomputed as 2V - max, so the mean stays V. Caps are rounded by largest remainder, so the
// budgets never increase with depth and average exactly to C.
// Default beta = 20 (the paper's); window 32, kernel 7, maxpool as SnapKV. The budgets are planned
// from the first segment (the prompt) and kept for later segments, which compress to them.
#include <algorithm>
#include <vector>

#include "policy/select.h"

namespace hkv {
namespace {

class PyramidKvPolicy final : public SnapFamilyPolicy {
public:
    PyramidKvPolicy(const SnapOptions& o, double beta) : SnapFamilyPolicy("pyramidkv", o), beta_(beta) {}
    Status begin(const ModelShape& shape, const Segment& prompt, KvBudget& budget) override {
        const int32_t n_prompt = prompt.n_tokens;
        const int32_t fixed = opt_.evict.window + opt_.evict.sinks;
        const int32_t nl = shape.n_layer;
        budget.init(nl, shape.n_head_kv, opt_.evict.budget);
        if (n_prompt <= opt_.evict.budget || nl < 2) return Status();  // nothing to shape
        const double v = double(opt_.evict.budget - fixed);
        double lo = v / beta_, hi = 2.0 * v - lo;
        if (hi > double(n_prompt - fixed)) {
            hi = double(n_prompt - fixed);
            lo = 2.0 * v - hi;
        }
        const double step = (hi - lo) / double(nl - 1);
        std::vector<double> want(static_cast<size_t>(nl));
        for (int32_t il = 0; il < nl; ++il) want[size_t(il)] = hi - double(il) * step;
        // integer caps with the exact total (largest remainder keeps the sequence non-increasing)
        const std::vector<int32_t> cap = round_to_total(want, int64_t(nl) * int64_t(opt_.evict.budget - fixed));
        for (int32_t il = 0; il < nl; ++il) {
            for (int32_t ih = 0; ih < shape.n_head_kv; ++ih) budget.at(il, ih) = std::max(1, fixed + cap[size_t(il)]);
        }
        return Status();
    }

private:
    double beta_;
};

}  // namespace

Expected<std::unique_ptr<Policy>> pyramidkv_create(PolicySpec& spec) {
    SnapOptions o;
    HKV_TRY(read_snap_options(spec, &o));
    HKV_ASSIGN_OR_RETURN(double beta, spec.get_float("beta", 20.0, 1.0, 1e6));
    return std::unique_ptr<Policy>(new PyramidKvPolicy(o, beta));
}

}  // namespace hkv
