// policy/head_budgets.h — Ada-KV's head-adaptive budgets (Feng et al. 2024), shared by adakv, ems
// (adaptive=1) and dynsplit (heads=adaptive): the layer's H * sel selected slots are shared among
// its H heads in proportion to each head's picks in the global top H * sel of their scores, with a
// floor of `floor` * sel per head.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace hkv {

// flat: the candidates' scores of every head, head after head; offset: [H + 1], head j's candidates
// are flat[offset[j], offset[j + 1]). With c_j head j's picks in the global top H * sel (ties to the
// lower index), returns b_j = c_j (1 - floor) + floor * sel rounded so that sum b_j = H * sel
// exactly (round_to_total). Requires H * sel <= flat.size(). picks: a reused buffer.
std::vector<int32_t> adaptive_head_budgets(std::span<const float> flat, std::span<const int32_t> offset, int32_t sel,
                                           double floor, std::vector<int32_t>& picks);
// The same with a share of its own per head, sel: [H] (b_j = c_j (1 - floor) + floor * sel_j, summing
// to sum sel_j; picks in the global top sum sel_j).
std::vector<int32_t> adaptive_head_budgets(std::span<const float> flat, std::span<const int32_t> offset,
                                           std::span<const int32_t> sel, double floor, std::vector<int32_t>& picks);

}  // namespace hkv
