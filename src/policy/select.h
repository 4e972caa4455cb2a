// policy/select.h — pieces shared by the score-based baselines (h2o, snapkv, pyramidkv, adakv,
// chunkkv): the SnapKV options, 1-D pooling of slot scores, deterministic top-k, the
// "sinks + top-k + recent window" keep rule, and a base class for the prefill-only SnapKV family.
//
// Conventions: a head's live slots are in position order (appends go to the end and compaction
// keeps order), so "the last `window` slots" are the most recent tokens. Ties between equal
// scores always go to the lower index, so every selection is deterministic.
#pragma once

#include <climits>
#include <vector>

#include "policy/spec.h"

namespace hkv {

enum class PoolKind { kMax, kAvg };

// SnapKV scoring options (Li et al. 2024, LongBench configs c*_w32_k7_maxpool).
struct SnapOptions {
    EvictOptions evict;              // budget (required), window (32), sinks (0)
    int32_t kernel = 7;              // pooling kernel, odd; 1 = no pooling; kKernelAuto: snap_kernel
    PoolKind pool = PoolKind::kMax;  // pool=max|avg
};
// Reads budget, window (default 32, >= 1: it is also the observation window), sinks (default 0),
// kernel (default 7, or auto with kernel_auto; odd, in [1, 255], or auto) and pool (default max).
Status read_snap_options(PolicySpec& spec, SnapOptions* out, bool kernel_auto = false);

// kernel=auto (EMS and DynSplit-KV, issue 18): the pooling width follows the number of scored
// slots, one unit per kKernelPerSlots of them, odd, never below SnapKV's 7 (and at most 255):
// 7 up to 511 slots (stories260K's 256-token contexts: the baselines' kernel, bit for bit), 15 at
// ~1000 (retrieval-1.4M's 1024-token contexts), 31 at ~2000 (its 2048-token needle prompts).
inline constexpr int32_t kKernelAuto = 0;
inline constexpr int32_t kKernelPerSlots = 64;
// The kernel to pool n scored slots with: `kernel` itself, or the automatic width for kKernelAuto.
int32_t snap_kernel(int32_t kernel, int32_t n);
// Reads kernel=auto|K (odd K in [1, 255]) into *kernel; `auto_default`: kernel=auto without the option.
Status read_kernel_option(PolicySpec& spec, bool auto_default, int32_t* kernel);

// out[i] = pool of in[i - kernel/2 .. i + kernel/2] clipped to [0, n) (stride 1, output length n).
// kMax ignores the padding; kAvg counts it as zeros (divides by kernel), like PyTorch's avg_pool1d
// with padding = kernel/2. in, out: [n]; kernel odd; in and out must not overlap.
void pool1d(const float* in, int32_t n, int32_t kernel, PoolKind kind, float* out);
// The outputs i0 <= i < i1 of pool1d (the same bits) at out[i - i0]: [i1 - i0].
void pool1d_range(const float* in, int32_t n, int32_t kernel, PoolKind kind, int32_t i0, int32_t i1, float* out);

// Writes the indices of the k largest of score[0..n) to out[0..k), ascending. Ties go to the lower
// index; NaN ranks below every number. 0 <= k <= n. O(n): a selection over a thread-local copy of
// the values, then one scan; for n >= 4096 and k <= n / 4, over the slots that pass a threshold
// taken from every 8th slot (about 1.25 k of them; the same result).
void top_k_indices(const float* score, int32_t n, int32_t k, int32_t* out);

// Scratch for keep_scored (reused across heads and calls to avoid allocation per head).
struct SelectScratch {
    std::vector<float> pooled;   // [n_slot]
    std::vector<int32_t> top;    // [n_slot]
};

// The keep rule of H2O and SnapKV for one head holding n slots (position order), keeping `keep`:
//   sinks [0, s) ∪ top_{keep - s - w}(pool(score[0, n - w)) restricted to [s, n - w)) ∪ window [n - w, n)
// with s = o.sinks, w = o.window (the pooled sequence is the non-window prefix, as in SnapKV).
// Writes the kept slot indices ascending to out and returns their count; returns n with out
// = 0..n-1 when n <= keep. Requires keep >= s + w. scores: [n].
int32_t keep_scored(const float* scores, int32_t n, int32_t keep, const SnapOptions& o, int32_t* out,
                    SelectScratch& scratch);

// Integer parts of non-negative reals `want` whose sum is exactly `total` (largest remainder,
// ties to the lower index). Requires sum(floor(want)) <= total <= sum(ceil(want)).
std::vector<int32_t> round_to_total(const std::vector<double>& want, int64_t total);

// Quest-style key bounds, shared by quest and dynsplit (mode=select).
// out[d] = sum over the GQA group of KV head ih of q[h, d]; q: [n_head, head_dim], out: [head_dim].
void gqa_query_sum(std::span<const float> q, int32_t ih, int32_t group, int32_t head_dim, float* out);
// out[p] = sum_d max(qsum[d] * mx[p, d], qsum[d] * mn[p, d]) for p in [0, n): the upper bound of
// qsum·k over keys k within the elementwise extremes mn, mx: [n, head_dim].
void quest_bounds(const float* qsum, const float* mn, const float* mx, int32_t n, int32_t head_dim, float* out);
// Base of the prompt-time SnapKV family: scores = attention of the last `window` queries of the
// segment (summed over the GQA group), compression at every prompt segment's end, none during
// decoding (as in the papers: generated tokens are appended, so a head holds at most its budget
// plus the tokens generated since). At a later segment (a question, a chat turn) the whole cache —
// the survivors and the segment — is compressed back to the budgets by the segment's last
// `window` queries. Subclasses set budgets in begin and may replace on_layer.
class SnapFamilyPolicy : public Policy {
public:
    SnapFamilyPolicy(std::string_view name, const SnapOptions& o) : name_(name), opt_(o) {}
    PolicyInfo info() const override;
    // Per head: keep_scored with the head's budget (snapkv, pyramidkv).
    Status on_layer(const LayerView& v, LayerPlan& plan) override;

protected:
    std::string_view name_;
    SnapOptions opt_;
    SelectScratch scratch_;
};

}  // namespace hkv
