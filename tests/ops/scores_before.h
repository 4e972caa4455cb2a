// The per-slot loops of backend/cpu/scores.h's attn_scores, attn_colsums and attn_band_recent as
// they were before the slot-blocked, row-tiled passes (issue 22 item 5), one KV head after another:
// one dot_f32 per (query row, slot) over f32 copies of all keys. The tiled passes must give these
// bits exactly (tests/ops/test_ops.cpp, ScoresExact), so a policy selects the same slots. Compiled
// at the library's optimisation level (tests/ops/CMakeLists.txt), not the test programs' -O1: GCC
// fuses "o += p * inv" into an FMA at -O2 and above only, so the reference must round as the library.
#pragma once

#include <cstdint>

#include "backend/cpu/ops.h"

namespace hkv::before {

void attn_scores(const AttnParams& p, const float* q, const int32_t* qpos, int64_t n_tok, int64_t t_begin,
                 const AttnKvHead* heads, float* out, int64_t stride);
void attn_colsums(const AttnParams& p, const float* q, const int32_t* qpos, int64_t n_tok, int64_t t_begin,
                  const float* lse, const AttnKvHead* heads, float* out, int64_t stride);
void attn_band_recent(const AttnParams& p, const float* q, const int32_t* qpos, int64_t n_tok, int64_t t_begin,
                      int32_t t_stride, int32_t band, bool full_norm, const AttnKvHead* heads, float* recent,
                      float* count, int64_t stride);

}  // namespace hkv::before
