// policy/head_budgets.cpp — see head_budgets.h.
#include "policy/head_budgets.h"

#include "policy/select.h"

namespace hkv {

std::vector<int32_t> adaptive_head_budgets(std::span<const float> flat, std::span<const int32_t> offset,
                                           std::span<const int32_t> sel, double floor, std::vector<int32_t>& picks) {
    const size_t nh = offset.size() - 1;
    int64_t total = 0;
    for (size_t j = 0; j < nh; ++j) total += sel[j];
    picks.resize(size_t(total));
    top_k_indices(flat.data(), int32_t(flat.size()), int32_t(total), picks.data());  // ascending
    std::vector<double> want(nh);
    for (size_t j = 0, p = 0; j < nh; ++j) {
        int32_t c = 0;
        while (p < picks.size() && picks[p] < offset[j + 1]) ++c, ++p;
        want[j] = double(c) * (1.0 - floor) + floor * double(sel[j]);
    }
    return round_to_total(want, total);
}

std::vector<int32_t> adaptive_head_budgets(std::span<const float> flat, std::span<const int32_t> offset, int32_t sel,
                                           double floor, std::vector<int32_t>& picks) {
    const std::vector<int32_t> each(offset.size() - 1, sel);
    return adaptive_head_budgets(flat, offset, each, floor, picks);
}

}  // namespace hkv
