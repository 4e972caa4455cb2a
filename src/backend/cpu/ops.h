// backend/cpu/ops.h — the CPU ops of a transformer layer (everything except matmul, see matmul.h).
//
// Conventions: f32 activations, row-major, shapes in comments as [outer, ..., inner]. Every op has
// a scalar reference in namespace hkv::ref (ops_ref.cpp, never optimized) used by the tests, and a
// fast version here (SIMD with runtime dispatch: AVX2 floor, AVX-512 where present) whose results
// equal the reference up to float summation order. Functions taking a ThreadPool split their work
// across it; the others are single-threaded and meant to be called per row from a parallel region.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"
#include "core/thread_pool.h"
#include "heterokv/types.h"

namespace hkv {

// ---- elementwise / row ops (single row, single thread) ----
// y[n] = x[n] / sqrt(mean(x^2) + eps) * w[n]   (w may be nullptr: no scale). y may alias x.
void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps);
// In place softmax over x[n] (max-subtracted).
void softmax(float* x, int64_t n);
// gate[n] = silu(gate[n]) * up[n]
void swiglu(float* gate, const float* up, int64_t n);
// gate[n] = gelu(gate[n]) * up[n] with GELU's tanh approximation,
//   gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) = x / (1 + e^(-2 sqrt(2/pi) (x + 0.044715 x^3)))
void geglu(float* gate, const float* up, int64_t n);
// The activation of a gated FFN and the op applying it: gate[n] = act(gate[n]) * up[n].
enum class GluAct { kSilu, kGeluTanh };
inline void glu(GluAct act, float* gate, const float* up, int64_t n) {
    if (act == GluAct::kSilu) swiglu(gate, up, n); else geglu(gate, up, n);
}
// y[n] += x[n]
void add_inplace(float* y, const float* x, int64_t n);

// ---- RoPE ----
enum class RopeStyle {
    kNorm,  // llama: rotate pairs (x[2i], x[2i+1])
    kNeox,  // qwen2 / NEOX: rotate pairs (x[i], x[i + n_rot/2])
};
struct RopeParams {
    RopeStyle style = RopeStyle::kNorm;
    int32_t n_rot = 0;                 // rotated dims per head (== head_dim for the models here)
    float freq_base = 10000.0f;
    float freq_scale = 1.0f;           // linear scaling: theta *= freq_scale
    const float* freq_factors = nullptr;  // [n_rot/2] or nullptr: theta_i /= freq_factors[i] (Llama-3 rope_freqs)
    float attn_factor = 1.0f;          // cos and sin multiplied by it (LongRoPE's magnitude correction)
};
// x: [n_tok, n_head, head_dim], rotated in place; pos: [n_tok] token positions.
void rope(const RopeParams& p, float* x, const int32_t* pos, int64_t n_tok, int64_t n_head,
          int64_t head_dim);

// ---- attention over a paged KV store ----
// One (layer, KV head): its slots live in pages of page_size slots; slot s is row (s % page_size)
// of page (s / page_size). Each K row is head_dim elements of k_type, each V row of v_type (f32, f16,
// bf16, or q8_0 / q4_0: head_dim / 32 blocks of llama.cpp's layout, read in place by the kernels;
// or hq4, kv_hq4.h: iq4_nl blocks of the rotated row, read in place in the rotated domain). The
// types are the head's own: the heads of one call may differ (per-head precision, issue 19 item 5).
struct AttnKvHead {
    const void* const* k_pages = nullptr;  // [n_pages] -> [page_size, head_dim] k_type
    const void* const* v_pages = nullptr;  // [n_pages] -> [page_size, head_dim] v_type
    PosLane pos;                           // [n_slot] original token position of each slot (16-bit
                                           // or int32, heterokv/types.h)
    int32_t n_slot = 0;
    DType k_type = DType::kF16;            // K rows (block types need head_dim % 32 == 0, hq4 hq4_dim_ok)
    DType v_type = DType::kF16;            // V rows
};
struct AttnParams {
    int32_t n_head = 0;      // query heads
    int32_t n_head_kv = 0;   // KV heads; query head h reads KV head h / (n_head / n_head_kv)
    int32_t head_dim = 0;
    int32_t page_size = 0;   // the element types are each head's (AttnKvHead)
    float scale = 0.0f;      // usually 1/sqrt(head_dim)
    int32_t window = 0;      // > 0: sliding window, a slot is visible iff qpos - window < pos <= qpos
    float softcap = 0.0f;    // > 0: each scaled score s becomes softcap * tanh(s / softcap) (Gemma 2)
};
// The two rules of attention() for statistics computed outside it (backend/cpu/scores.h): the logit
// of a dot product q·k (scale, then soft-capping) and whether a slot at position pos is visible to
// a query at qpos (causal, within the window).
inline float attn_logit(const AttnParams& p, float dot) {
    const float s = p.scale * dot;
    return p.softcap > 0.0f ? p.softcap * std::tanh(s / p.softcap) : s;
}
inline bool attn_visible(const AttnParams& p, int32_t pos, int32_t qpos) {
    return pos <= qpos && (p.window <= 0 || int64_t(qpos) - pos < p.window);
}

// out[t, h, :] = sum_s softmax_s(scale * q[t,h,:]·K[s,:]) V[s,:] over the slots s of KV head
//   h / group with pos[s] <= qpos[t] (causal by position, so it serves prefill, prefill
//   continuation and decode alike) and, with a window, qpos[t] - pos[s] < window. Soft-capping,
//   when set, applies to the scaled score before the softmax. A query with no visible slot gets zeros.
// q: [n_tok, n_head, head_dim]; qpos: [n_tok]; heads: [n_head_kv]; out: [n_tok, n_head, head_dim].
// Memory: O(n_tok * n_head * head_dim) beyond the inputs — no [n_tok, n_slot] buffer (online
// softmax over tiles of slots); long decodes are split over slots across threads (split-K).
// Against q8_0, q4_0 and hq4 keys the dot is llama.cpp's quantized one: the scaled query scale * q
// (for hq4 rotated first, R scale q) is quantized per block of 32 values (d_q = max|x| / 127, x ->
// nearbyint(x * 127 / max|x|)) and each block's integer dot with the key's int8 (q8_0), nibble - 8
// (q4_0) or iq4_nl level (hq4) values is exact, times d_q * d_k; so integer dot-product instructions
// (AVX512-VNNI, AVX2 maddubs) do the work. Every other key type, and every V type, is read as exact
// f32 values.
void attention(ThreadPool& pool, const AttnParams& p, const float* q, const int32_t* qpos,
               int64_t n_tok, const AttnKvHead* heads, float* out);
// The same, also writing each query row's log-sum-exp of its scaled scores,
//   lse[t, h] = log sum_{s visible} exp(scale * q[t,h,:]·K[s,:])   (-inf when nothing is visible),
// so softmax probabilities can be recomputed later in one pass as exp(scale*q·k - lse) (EMS's
// column sums, backend/cpu/scores.h attn_colsums). lse: [n_tok, n_head]; nullptr = not wanted.
void attention(ThreadPool& pool, const AttnParams& p, const float* q, const int32_t* qpos,
               int64_t n_tok, const AttnKvHead* heads, float* out, float* lse);

// Column sums of the softmax probabilities that attention() itself computes (EMS's global scores,
// the statistic of backend/cpu/scores.h attn_colsums), taken inside the kernel instead of by a
// second q·k pass:
//   sums[ih * stride + s] = sum_{t in [t_begin, n_tok), h in group(ih)} P[t, h, s],
//   P[t, h, s] = exp(l[t, h, s] - lse[t, h]) with l the kernel's own (scaled, soft-capped) logits.
// Each unit keeps its tiles' e^(l - m_tile) and running maxima until its rows' final max and sum are
// known (scratch per thread: 16 * group rows x the head's slots, 4 bytes each: 2 MiB for a group of
// 4 at 8K slots), then adds e^(m_tile - m) / sum times them over its rows in order, rounds the
// per-slot totals to a fixed-point grid of 2^-(61 - bit_width(n_tok * group)) and adds them to the
// thread's int64 accumulators, so the sums are the same bits whatever the thread count or order.
// The kernel takes a head's sums only when its keys are f32 / f16 / bf16 (against q8_0 / q4_0 / hq4
// it dots a quantized query, a statistic that differs from attn_colsums' by more than rounding) and
// its slots are not split across units (split-K: short steps over long heads); done[ih] says which.
struct AttnColSums {
    float* sums = nullptr;    // [n_head_kv, stride]: written for the heads with done[ih] = 1
    int64_t stride = 0;       // >= every head's n_slot
    int64_t t_begin = 0;      // the first query row summed
    uint8_t* done = nullptr;  // [n_head_kv] out: 1 = sums holds head ih's column sums, 0 = not taken
};
// attention() with lse (may be null) and, when cs is not null, the column sums above.
void attention(ThreadPool& pool, const AttnParams& p, const float* q, const int32_t* qpos,
               int64_t n_tok, const AttnKvHead* heads, float* out, float* lse, AttnColSums* cs);

// x[i] = e^(x[i] - sub) for n values (-inf gives 0), vectorised (max relative error ~2e-7).
void exp_shifted(float* x, int64_t n, float sub);

// Converts n f32 values to kv_type (f32/f16/bf16, or quantizes to q8_0/q4_0 blocks as llama.cpp
// does, n a multiple of 32 then; or to an hq4 row, kv_hq4.h, n = head_dim a power of two) at dst
// (KV writes).
void kv_convert_row(DType kv_type, const float* src, void* dst, int64_t n);

namespace ref {
void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps);
void softmax(float* x, int64_t n);
void swiglu(float* gate, const float* up, int64_t n);
void geglu(float* gate, const float* up, int64_t n);
void rope(const RopeParams& p, float* x, const int32_t* pos, int64_t n_tok, int64_t n_head,
          int64_t head_dim);
// Materializes the scores row by row; double accumulation. lse as in hkv::attention (may be null).
void attention(const AttnParams& p, const float* q, const int32_t* qpos, int64_t n_tok,
               const AttnKvHead* heads, float* out, float* lse = nullptr);
}  // namespace ref

}  // namespace hkv
