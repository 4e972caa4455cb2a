// backend/cpu/scores.h — attention statistics for compression policies.
//
// Every function here applies attention()'s rules (ops.h attn_logit / attn_visible): "scale * q·k"
// below is the soft-capped logit when p.softcap is set, and "visible" includes p.window.
//
// attn_scores: for the query rows t in [t_begin, n_tok) and every query head h of KV head ih's GQA
// group, the softmax over the slots of ih visible to t (pos[s] <= qpos[t]) of scale * q[t,h]·K[s],
// summed over those rows and heads:
//   out[ih * stride + s] (+)= sum_{t, h in group(ih)} softmax_s(scale * q[t,h,:]·K[s,:])
// (= SnapKV's window attention when [t_begin, n_tok) is the observation window; = H2O's column sums
// when it is every query). With accumulate the sums are added to out, else out is overwritten.
// Shapes: q [n_tok, n_head, head_dim]; qpos [n_tok]; heads [n_head_kv]; out [n_head_kv, stride],
// stride >= every head's n_slot. Work and memory: O((n_tok - t_begin) * n_head * n_slot * head_dim)
// time, O(n_slot) scratch per thread. Parallel over KV heads.
#pragma once

#include <cstdint>

#include "backend/cpu/ops.h"

namespace hkv {

void attn_scores(ThreadPool& pool, const AttnParams& p, const float* q, const int32_t* qpos, int64_t n_tok,
                 int64_t t_begin, const AttnKvHead* heads, float* out, int64_t stride, bool accumulate);

// attn_colsums: the same column sums as attn_scores (accumulate = true), from the row log-sum-exp
// that the attention kernel already produced (hkv::attention's lse output): one pass over q·k per
// (row, slot) with no max / normalisation pass of its own,
//   out[ih * stride + s] += sum_{t in [t_begin, n_tok), h in group(ih), pos[s] <= qpos[t]}
//                            exp(scale * q[t,h,:]·K[s,:] - lse[t, h])
// lse: [n_tok, n_head] (rows with lse = -inf see nothing and add nothing). Other shapes as
// attn_scores. Half the dot products of attn_scores (which recomputes the max first). attention()
// takes the same sums from its own probabilities with no second q·k pass (ops.h AttnColSums, the
// engine's score lane); this pass serves the heads the kernel leaves (quantized keys, split-K).
void attn_colsums(ThreadPool& pool, const AttnParams& p, const float* q, const int32_t* qpos, int64_t n_tok,
                  int64_t t_begin, const float* lse, const AttnKvHead* heads, float* out, int64_t stride);

// attn_band_recent (DynSplit-KV's DD-Select statistics; a separate pass, the flash attention kernel
// is untouched): for each sampled query row t in [t_begin, n_tok) (every t_stride-th, counted from
// the last row backwards so the chunk's last query is always in) and each query head h of KV head
// ih's group, with A = softmax of scale * q[t,h]·K over the slots visible to t (normalised over the
// whole visible row when full_norm, else over the band slots only, pos in [qpos[t] - band, qpos[t]])
// and for every band slot s with pos[s] < qpos[t]:
//   recent[ih * stride + s] += sum_{s' >= s, pos[s'] <= qpos[t]} A[s']    (suffix sum in the band)
//   count [ih * stride + s] += 1
// i.e. how much of the later query's attention stays on the span starting at s (the rest goes to
// the distant context before s). Always accumulates. Shapes as attn_scores; recent, count:
// [n_head_kv, stride]. Slots must be in position order. Work: O(rows * n_head * (band, or n_slot
// when full_norm) * head_dim); parallel over KV heads.
// lse (full_norm only; null = none): the attention kernel's row log-sum-exp over the same slots
// ([n_tok, n_head], hkv::attention's lse output). The whole-row normaliser is then taken from it,
// A[s'] = exp(scale * q·K[s'] - lse[t, h]), so only the band's dots and exps are computed
// (O(rows * n_head * band * head_dim)); the same values as without it up to rounding (the lse is
// float and its dots round in the kernel's order). Heads with q8_0 / q4_0 / hq4 keys ignore it
// (the kernel dots a quantized query with those) and take the whole row's dots.
void attn_band_recent(ThreadPool& pool, const AttnParams& p, const float* q, const int32_t* qpos, int64_t n_tok,
                      int64_t t_begin, int32_t t_stride, int32_t band, bool full_norm, const AttnKvHead* heads,
                      float* recent, float* count, int64_t stride, const float* lse = nullptr);

// qk_dots: raw dot products of n_row query rows with the slots [0, n) of one KV head, read in place
// from its pages (no f32 copy of the keys):
//   out[r * stride + s] = q[r, :] · K[s, :]
// q: [n_row, head_dim] f32; k_pages: [n_pages] -> [page_size, head_dim] kv_type; out: [n_row, stride],
// stride >= n. f16, q8_0, q4_0 and hq4 (with q rotated) rows with head_dim % 16 == 0 on an AVX-512 CPU go through the
// attention kernel's 4-row x 4-key tiles (attn512::qk_rows, reading the blocks in registers); every
// other case converts a key row at a time and uses dot_f32. Work: O(n_row * n * head_dim).
void qk_dots(DType kv_type, const void* const* k_pages, int32_t page_size, int32_t head_dim, const float* q,
             int32_t n_row, int32_t n, float* out, int64_t stride);
// The same split over the pool's threads in blocks of slots (same results as the single-threaded one).
void qk_dots(ThreadPool& pool, DType kv_type, const void* const* k_pages, int32_t page_size, int32_t head_dim,
             const float* q, int32_t n_row, int32_t n, float* out, int64_t stride);

// Converts row s of a paged K or V (kv_type f32/f16/bf16, or q8_0/q4_0 blocks, head_dim wide) to f32;
// an hq4 row is decoded and un-rotated (its values in the model's domain).
void kv_read_row(DType kv_type, const void* const* pages, int32_t page_size, int32_t head_dim, int64_t s,
                 float* out);

}  // namespace hkv
