// policy/head_budgets.cpp — see head_budgets.h.
#include "policy/head_budgets.h"

#include "policy/select.h"

namespace hkv {

std::vector<int32_t> adaptive_head_budgets(std::span<const float> flat, std::span<const int32_t> offset, int32_t sel,
                                           double floor, std::vector<int32_t>& picks, std::vector<int32_t>& scratch) {
    const size_t nh = offset.size() - 1;
    const int32_t total = int32_t(nh) * sel;
    picks.resize(size_t(total));
    top_k_indices(flat.data(), int32_t(flat.size()), total, picks.data(), scratch);  // ascending
    std::vector<double> want(nh);
    for (size_t j = 0, p = 0; j < nh; ++j) {
        int32_t c = 0;
        while (p < picks.size() && picks[p] < offset[j + 1]) ++c, ++p;
        want[j] = double(c) * (1.0 - floor) + floor * double(sel);
    }
    return round_to_total(want, total);
}

}  // namespace hkv
