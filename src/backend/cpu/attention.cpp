// backend/cpu/attention.cpp — paged attention over the KV store (ops.h attention), AVX2 with the
// AVX-512 inner loops of attn_avx512.cpp when the CPU has them.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <climits>
#include <cmath>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "backend/cpu/attn_kernels.h"
#include "backend/cpu/kv_hq4.h"
#include "backend/cpu/quant_blocks.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/simd_avx2.h"
#include "core/assert.h"
#include "core/cpu.h"
#include "core/fp16.h"

namespace hkv {

// ---- paged attention ----
//
// Work unit = (KV head, tile of up to kQTok query tokens, slot range). Its rows are every query
// head of the KV head's group for every token of the tile (row r = token * group + g), so each K/V
// row is read from memory once per group. Slots go by tiles of kTile: the tile's K and V rows are
// read in place from their pages and converted to f32 in registers inside the dot and axpy loops
// (head_dim not a multiple of 8 goes through zero-padded f32 side buffers instead), scores [rows, kTile]
// are masked by position, and an online softmax (running max m, sum l, unnormalized acc) folds
// the tile in. With few units and long caches (decode) each KV head's slots are split into ranges
// of about equal length (flash-decoding): a head with more slots gets more ranges, so a few long
// heads, or uneven per-head budgets (a compressed cache where two of eight heads keep every slot),
// still give every thread work. The partial (m, l, acc) of a head's ranges are merged with a
// log-sum-exp by whichever unit finishes that head last.
namespace {

constexpr int kTile = 64;          // slots per KV tile
constexpr int kQTok = 16;          // query tokens per work unit
constexpr int32_t kMinSplit = 256; // fewest slots per split range

struct AttnScratch {               // per thread, grow only
    std::vector<float> qs;         // [n_row, Dp] queries * scale
    std::vector<float> acc;        // [n_row, Dp]
    std::vector<float> sc;         // [n_row, kTile] scores, then probabilities
    std::vector<float> kf, vf;     // [kTile, Dp]
    std::vector<float> m, l, alpha;  // [n_row]
    std::vector<int32_t> qp;       // [n_row] query position of each row
    std::vector<int8_t> qi;        // [n_row, Dp] queries quantized per block (q8_0 / q4_0 keys)
    std::vector<float> qd;         // [n_row, Dp / 32] their scales
    std::vector<int32_t> qc;       // [n_row, Dp / 32] -off * block sums (attn512::qk_i8)
    std::vector<float> cs_p;       // fused column sums (AttnColSums): [n_tiles, n_row, kTile] each
                                   // tile's e^(score - cs_m), kept until the rows' final max and sum
    std::vector<float> cs_m;       // [n_tiles, n_row] the running max each tile was shifted by
    std::vector<float> cs_w;       // [n_row] a tile's weights e^(cs_m - m) / l
    std::vector<uint8_t> cs_tile;  // [n_tiles] 1 = the tile was computed (0: no row sees it)
    void reserve(int64_t n_row, int64_t Dp) {
        auto grow = [](auto& v, int64_t n) { if (int64_t(v.size()) < n) v.resize(size_t(n)); };
        grow(qs, n_row * Dp), grow(acc, n_row * Dp), grow(sc, n_row * kTile);
        grow(qi, n_row * Dp), grow(qd, n_row * Dp / 32 + 1), grow(qc, n_row * Dp / 32 + 1);
        grow(kf, kTile * Dp), grow(vf, kTile * Dp);
        grow(m, n_row), grow(l, n_row), grow(alpha, n_row), grow(qp, n_row);
    }
};

// Rows s0 .. s0+n-1 of one KV head converted to f32 into dst [n, Dp]; padding columns zeroed.
void kv_rows_to_f32(DType t, const void* const* pages, int32_t page_size, int64_t D, int64_t Dp,
                    int32_t s0, int n, float* dst) {
    const size_t row_bytes = dtype_row_size(t, D);
    int32_t pg = s0 / page_size, off = s0 % page_size;  // advanced per row: no division in the loop
    for (int j = 0; j < n; ++j, ++off) {
        if (off == page_size) ++pg, off = 0;
        const char* src = static_cast<const char*>(pages[pg]) + size_t(off) * row_bytes;
        float* o = dst + j * Dp;
        int64_t d = 0;
        if (t == DType::kF16) {
            const uint16_t* h = reinterpret_cast<const uint16_t*>(src);
            for (; d + 8 <= D; d += 8)
                _mm256_storeu_ps(o + d, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + d))));
            for (; d < D; ++d) o[d] = fp16_to_fp32(h[d]);
        } else if (t == DType::kBF16) {
            const uint16_t* h = reinterpret_cast<const uint16_t*>(src);
            for (; d + 8 <= D; d += 8) {
                const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + d)));
                _mm256_storeu_ps(o + d, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
            }
            for (; d < D; ++d) o[d] = bf16_to_fp32(h[d]);
        } else {
            std::memcpy(o, src, size_t(D) * sizeof(float));
            d = D;
        }
        for (; d < Dp; ++d) o[d] = 0.0f;
    }
}

// Prefetches rows s0 .. s0+n-1 (the next tile) so DRAM latency overlaps the current tile's math.
void kv_rows_prefetch(DType t, const void* const* pages, int32_t page_size, int64_t D, int32_t s0,
                      int n) {
    const size_t row_bytes = dtype_row_size(t, D);
    int32_t pg = s0 / page_size, off = s0 % page_size;
    for (int j = 0; j < n; ++j, ++off) {
        if (off == page_size) ++pg, off = 0;
        const char* src = static_cast<const char*>(pages[pg]) + size_t(off) * row_bytes;
        for (size_t b = 0; b < row_bytes; b += 64) _mm_prefetch(src + b, _MM_HINT_T0);
    }
}

// Pointers to rows s0 .. s0+n-1 of one KV head (rows[j] -> [head_dim] t, whole blocks for q8_0 / q4_0 / hq4).
void kv_row_ptrs(DType t, const void* const* pages, int32_t page_size, int64_t D, int32_t s0, int n,
                 const void** rows) {
    const size_t row_bytes = dtype_row_size(t, D);
    int32_t pg = s0 / page_size, off = s0 % page_size;
    for (int j = 0; j < n; ++j, ++off) {
        if (off == page_size) ++pg, off = 0;
        rows[j] = static_cast<const char*>(pages[pg]) + size_t(off) * row_bytes;
    }
}

// Eight elements d .. d+7 (d a multiple of 8) of a KV row of kind 0 (f32), 1 (f16), 2 (bf16),
// 3 (q8_0), 4 (q4_0) or 5 (hq4, rotated domain), as f32: the conversion (for the block types: the
// block's int8, nibbles or nibbles' iq4_nl levels times its f16 scale) happens in registers inside
// the dot / axpy loops, with no side buffer.
template <int kKind>
inline __m256 kv_load8(const void* row, int64_t d) {
    if constexpr (kKind == 0) return _mm256_loadu_ps(static_cast<const float*>(row) + d);
    if constexpr (kKind == 3) {  // q8_0: [D / 32] x (f16 d, int8 qs[32])
        const uint8_t* b = static_cast<const uint8_t*>(row) + (d >> 5) * 34;
        uint16_t h;
        std::memcpy(&h, b, 2);
        const __m128i x = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 2 + (d & 31)));
        return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(x)), _mm256_set1_ps(_cvtsh_ss(h)));
    }
    if constexpr (kKind == 4) {  // q4_0: [D / 32] x (f16 d, qs[16]); element j < 16: low nibble of qs[j], else high of qs[j-16]
        const uint8_t* b = static_cast<const uint8_t*>(row) + (d >> 5) * 18;
        uint16_t h;
        std::memcpy(&h, b, 2);
        const int j = int(d & 31);
        __m256i w = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 2 + (j & 15))));
        w = j < 16 ? _mm256_and_si256(w, _mm256_set1_epi32(15)) : _mm256_srli_epi32(w, 4);
        const __m256 f = _mm256_cvtepi32_ps(_mm256_sub_epi32(w, _mm256_set1_epi32(8)));
        return _mm256_mul_ps(f, _mm256_set1_ps(_cvtsh_ss(h)));
    }
    if constexpr (kKind == 5) {  // hq4: as q4_0, each nibble indexing the iq4_nl levels (int8)
        const uint8_t* b = static_cast<const uint8_t*>(row) + (d >> 5) * 18;
        uint16_t h;
        std::memcpy(&h, b, 2);
        const int j = int(d & 31);
        __m128i w = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 2 + (j & 15)));
        w = _mm_and_si128(j < 16 ? w : _mm_srli_epi16(w, 4), _mm_set1_epi8(15));
        const __m128i lv = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)), w);
        return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lv)), _mm256_set1_ps(_cvtsh_ss(h)));
    }
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(row) + d));
    if constexpr (kKind == 1) return _mm256_cvtph_ps(h);
    else return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// [sum a0, ..., sum a7] of eight vectors.
inline __m256 reduce8(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 a4, __m256 a5,
                      __m256 a6, __m256 a7) {
    const __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    const __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(a4, a5), _mm256_hadd_ps(a6, a7));
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// s[r, c] = q[r, :] · k[c][:] for R query rows and C keys; rows of length Dp (multiple of 8).
template <int R, int C, int kKind>
inline void qk_block(const float* q, const void* const* k, int64_t Dp, float* s) {
    __m256 a[R][C];
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) a[r][c] = _mm256_setzero_ps();
    for (int64_t d = 0; d < Dp; d += 8) {
        __m256 kv[C];
        for (int c = 0; c < C; ++c) kv[c] = kv_load8<kKind>(k[c], d);
        for (int r = 0; r < R; ++r) {
            const __m256 qv = _mm256_loadu_ps(q + r * Dp + d);
            for (int c = 0; c < C; ++c) a[r][c] = _mm256_fmadd_ps(qv, kv[c], a[r][c]);
        }
    }
    if constexpr (R == 4 && C == 2) {
        alignas(32) float t[8];
        _mm256_store_ps(t, reduce8(a[0][0], a[0][1], a[1][0], a[1][1], a[2][0], a[2][1], a[3][0], a[3][1]));
        for (int r = 0; r < 4; ++r) s[r * kTile] = t[2 * r], s[r * kTile + 1] = t[2 * r + 1];
    } else {
        for (int r = 0; r < R; ++r)
            for (int c = 0; c < C; ++c) s[r * kTile + c] = simd::hsum(a[r][c]);
    }
}

template <int R, int kKind>
inline void qk_rows(const float* q, const void* const* krows, int n, int64_t Dp, float* sc) {
    int j = 0;
    for (; j + 2 <= n; j += 2) qk_block<R, 2, kKind>(q, krows + j, Dp, sc + j);
    if (j < n) qk_block<R, 1, kKind>(q, krows + j, Dp, sc + j);
}

// ---- integer QK against q8_0 / q4_0 / hq4 keys ----
// The query row x [Dp] (scaled) quantized per block of 32 as the keys are (ops.h): d = max|x| / 127,
// qi = nearbyint(x * (127 / max|x|)) (all zero when max|x| = 0), and qc = -off * sum(qi) per block
// for attn512::qk_i8 (off = 8 for q4_0, 128 for q8_0 and hq4). qi: [Dp], qd, qc: [Dp / 32].
void quantize_query(const float* x, int64_t Dp, int kind, int8_t* qi, float* qd, int32_t* qc) {
    const int32_t off = kind == 4 ? 8 : 128;
    for (int64_t b = 0; b < Dp / 32; ++b) {
        const float* xb = x + 32 * b;
        float amax = 0.0f;
        for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(xb[i]));
        const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
        int32_t sum = 0;
        for (int i = 0; i < 32; ++i) {
            const int v = int(std::nearbyint(xb[i] * id));
            qi[32 * b + i] = int8_t(v);
            sum += v;
        }
        qd[b] = amax / 127.0f;
        qc[b] = -off * sum;
    }
}

// The 32 values of block b of a q8_0 (kKind 3), q4_0 (4) or hq4 (5) key row as int8 (q4_0: nibble
// - 8; hq4: the nibble's iq4_nl level), and its scale.
template <int kKind>
inline __m256i key_block_i8(const void* row, int64_t b, float* d) {
    const uint8_t* blk = static_cast<const uint8_t*>(row) + b * (kKind == 3 ? 34 : 18);
    uint16_t h;
    std::memcpy(&h, blk, 2);
    *d = _cvtsh_ss(h);
    if constexpr (kKind == 3) return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
    const __m256i t = _mm256_inserti128_si256(_mm256_castsi128_si256(x), _mm_srli_epi16(x, 4), 1);
    const __m256i nib = _mm256_and_si256(t, _mm256_set1_epi8(15));
    if constexpr (kKind == 4) return _mm256_sub_epi8(nib, _mm256_set1_epi8(8));
    return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues))), nib);
}

// s[r, c] for R query rows and C keys as attn512::qk_i8 computes them (AVX2: |k| times q with k's
// sign, pairs summed in int16 without overflow as |k| <= 128 and |q| <= 127, then in int32).
template <int R, int C, int kKind>
inline void qk_block_i8(const int8_t* qi, const float* qd, const void* const* k, int64_t Dp, float* s) {
    const int64_t nb = Dp / 32;
    __m256 a[R][C];
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) a[r][c] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nb; ++b) {
        __m256i kv[C], ka[C];
        float dk[C];
        for (int c = 0; c < C; ++c) kv[c] = key_block_i8<kKind>(k[c], b, &dk[c]), ka[c] = _mm256_abs_epi8(kv[c]);
        for (int r = 0; r < R; ++r) {
            const __m256i qv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qi + r * Dp + 32 * b));
            for (int c = 0; c < C; ++c) {
                const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(ka[c], _mm256_sign_epi8(qv, kv[c])), ones);
                a[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dk[c] * qd[r * nb + b]), a[r][c]);
            }
        }
    }
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) s[r * kTile + c] = simd::hsum(a[r][c]);
}

template <int R, int kKind>
inline void qk_rows_i8(const int8_t* qi, const float* qd, const void* const* krows, int n, int64_t Dp, float* sc) {
    int j = 0;
    for (; j + 2 <= n; j += 2) qk_block_i8<R, 2, kKind>(qi, qd, krows + j, Dp, sc + j);
    if (j < n) qk_block_i8<R, 1, kKind>(qi, qd, krows + j, Dp, sc + j);
}

// acc[r, :] = alpha[r] * acc[r, :] + sum_j p[r, j] * v[j, :] for R rows, n slots.
template <int R, int kKind>
inline void pv_rows(const float* p, const float* alpha, const void* const* v, int n, int64_t Dp,
                    float* acc) {
    int64_t d = 0;
    for (; d + 16 <= Dp; d += 16) {
        __m256 a[R][2];
        for (int r = 0; r < R; ++r) {
            const __m256 al = _mm256_set1_ps(alpha[r]);
            a[r][0] = _mm256_mul_ps(_mm256_loadu_ps(acc + r * Dp + d), al);
            a[r][1] = _mm256_mul_ps(_mm256_loadu_ps(acc + r * Dp + d + 8), al);
        }
        for (int j = 0; j < n; ++j) {
            const __m256 v0 = kv_load8<kKind>(v[j], d), v1 = kv_load8<kKind>(v[j], d + 8);
            for (int r = 0; r < R; ++r) {
                const __m256 pr = _mm256_broadcast_ss(p + r * kTile + j);
                a[r][0] = _mm256_fmadd_ps(pr, v0, a[r][0]);
                a[r][1] = _mm256_fmadd_ps(pr, v1, a[r][1]);
            }
        }
        for (int r = 0; r < R; ++r) {
            _mm256_storeu_ps(acc + r * Dp + d, a[r][0]);
            _mm256_storeu_ps(acc + r * Dp + d + 8, a[r][1]);
        }
    }
    if (d < Dp) {  // Dp % 16 == 8
        __m256 a[R];
        for (int r = 0; r < R; ++r)
            a[r] = _mm256_mul_ps(_mm256_loadu_ps(acc + r * Dp + d), _mm256_set1_ps(alpha[r]));
        for (int j = 0; j < n; ++j) {
            const __m256 v0 = kv_load8<kKind>(v[j], d);
            for (int r = 0; r < R; ++r)
                a[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(p + r * kTile + j), v0, a[r]);
        }
        for (int r = 0; r < R; ++r) _mm256_storeu_ps(acc + r * Dp + d, a[r]);
    }
}

// s[j] = cap * tanh(s[j] / cap) for j < n; tanh(y) = 2 / (1 + e^(-2y)) - 1.
void softcap_row(float* s, int n, float cap) {
    const __m256 vneg = _mm256_set1_ps(-2.0f / cap), vcap = _mm256_set1_ps(cap), two = _mm256_set1_ps(2.0f);
    const __m256 one = _mm256_set1_ps(1.0f);
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m256 e = simd::exp(_mm256_mul_ps(vneg, _mm256_loadu_ps(s + j)));
        const __m256 t = _mm256_sub_ps(_mm256_div_ps(two, _mm256_add_ps(one, e)), one);
        _mm256_storeu_ps(s + j, _mm256_mul_ps(vcap, t));
    }
    for (; j < n; ++j) s[j] = cap * (2.0f / (1.0f + simd::exp_scalar(-2.0f / cap * s[j])) - 1.0f);
}

struct AttnJob {
    const AttnParams* p;
    const float* q;         // [n_tok, n_head, head_dim]
    const int32_t* qpos;    // [n_tok]
    int64_t n_tok;
    const AttnKvHead* heads;  // [n_head_kv]
    float* out;             // [n_tok, n_head, head_dim]
    int32_t group;
    int64_t D, Dp;
    // Split plan: head h's slots are split_n[h] ranges of split_len[h] slots (the last
    // shorter); its ranges are partial blocks split_off[h] .. split_off[h] + split_n[h] - 1 of each
    // query tile. total_splits = sum of split_n. With no head split, part_* are unused.
    const int32_t* split_n;
    const int32_t* split_len;
    const int32_t* split_off;
    int32_t total_splits;
    bool any_split;
    int64_t part_rows;      // rows per partial block: min(n_tok, kQTok) * group
    float* part_acc;        // [n_qt, total_splits, part_rows, head_dim]
    float* part_ml;         // [n_qt, total_splits, part_rows, 2] running max and sum
    float* lse = nullptr;   // [n_tok, n_head] log-sum-exp of each row's scores, or nullptr
    bool avx512 = false;    // Dp % 16 == 0 and AVX-512: QK / PV of f16, q8_0, q4_0 or hq4 rows through attn512::
    bool vnni = false;      // avx512 and AVX512-VNNI: q8_0 / q4_0 / hq4 QK through attn512::qk_i8
    // fused column sums (ops.h AttnColSums), or cs == nullptr
    const AttnColSums* cs = nullptr;
    const uint8_t* cs_on = nullptr;  // [n_head_kv] 1 = the head's sums are taken in its units
    const int64_t* cs_off = nullptr; // [n_head_kv] the head's first slot in a thread's accumulators
    int64_t cs_total = 0;            // accumulators per thread
    int64_t* cs_acc = nullptr;       // [n_threads, cs_total] fixed point, cs_scale per unit
    double cs_scale = 0.0;           // 2^k: the grid of the fixed-point sums
};

// A unit's share of the fused column sums: each computed tile's e^(score - m_tile) times its row's
// weight e^(m_tile - m) / l (m, l: the row's final max and sum, so the product is the row's
// probability), summed over the unit's rows in order (r ascending, one FMA chain per slot), rounded
// to the fixed-point grid and added to thread ith's accumulators. Integer sums: the totals do not
// depend on which thread ran which unit, or in which order.
void colsum_fold(const AttnJob& jb, AttnScratch& ws, int32_t kvh, int64_t t0, int n_row, int32_t s_begin,
                 int32_t s_end, int ith) {
    int64_t* acc = jb.cs_acc + int64_t(ith) * jb.cs_total + jb.cs_off[kvh];
    float* w = ws.cs_w.data();
    const int n_tiles = (s_end - s_begin + kTile - 1) / kTile;
    for (int i = 0; i < n_tiles; ++i) {
        if (!ws.cs_tile[size_t(i)]) continue;
        const float* pt = ws.cs_p.data() + size_t(i) * size_t(n_row) * kTile;  // [n_row, kTile]
        const float* mt = ws.cs_m.data() + size_t(i) * size_t(n_row);
        bool any = false;
        for (int r = 0; r < n_row; ++r) {
            const float l = ws.l[size_t(r)];
            const bool on = t0 + r / jb.group >= jb.cs->t_begin && l > 0.0f && mt[r] != -INFINITY;
            w[r] = on ? std::exp(mt[r] - ws.m[size_t(r)]) / l : 0.0f;
            any = any || w[r] != 0.0f;
        }
        if (!any) continue;
        const int32_t s0 = s_begin + i * kTile;
        const int n = std::min(kTile, s_end - s0), np = (n + 7) & ~7;
        alignas(32) float u[kTile];
        if (np == kTile) {  // a whole tile: eight chains, the tile read once
            __m256 a[kTile / 8];
            for (int b = 0; b < kTile / 8; ++b) a[b] = _mm256_setzero_ps();
            for (int r = 0; r < n_row; ++r) {
                if (w[r] == 0.0f) continue;
                const __m256 wr = _mm256_set1_ps(w[r]);
                for (int b = 0; b < kTile / 8; ++b) a[b] = _mm256_fmadd_ps(wr, _mm256_loadu_ps(pt + r * kTile + 8 * b), a[b]);
            }
            for (int b = 0; b < kTile / 8; ++b) _mm256_store_ps(u + 8 * b, a[b]);
        } else {  // the same chains over the first np columns (the rest of the tile was not written)
            for (int j = 0; j < np; j += 8) {
                __m256 a = _mm256_setzero_ps();
                for (int r = 0; r < n_row; ++r)
                    if (w[r] != 0.0f) a = _mm256_fmadd_ps(_mm256_set1_ps(w[r]), _mm256_loadu_ps(pt + r * kTile + j), a);
                _mm256_store_ps(u + j, a);
            }
        }
        for (int j = 0; j < n; ++j) acc[s0 + j] += _mm_cvtsd_si64(_mm_set_sd(double(u[j]) * jb.cs_scale));
    }
}

// One work unit: KV head kvh, tokens [t0, t1), split index `split` of the slot range. kK / kV are the
// K / V rows' kinds (kv_load8) read straight from the pages; kSide (head_dim not a multiple of 8,
// float types only) converts each tile into the zero-padded f32 side buffers first and reads those
// as kind 0.
template <int kK, int kV, bool kSide>
void attn_unit(const AttnJob& jb, AttnScratch& ws, int32_t kvh, int64_t t0, int64_t t1, int split, int ith) {
    const AttnParams& p = *jb.p;
    const AttnKvHead& kv = jb.heads[kvh];
    const int64_t D = jb.D, Dp = jb.Dp;
    const int32_t group = jb.group;
    const int n_row = int((t1 - t0) * group);
    ws.reserve(n_row, Dp);
    float* qs = ws.qs.data();
    float* acc = ws.acc.data();
    int32_t qmax = INT32_MIN, qmin = INT32_MAX;
    for (int r = 0; r < n_row; ++r) {
        const int64_t it = t0 + r / group, ih = int64_t(kvh) * group + r % group;
        const float* src = jb.q + (it * p.n_head + ih) * D;
        float* dst = qs + r * Dp;
        for (int64_t d = 0; d < D; ++d) dst[d] = src[d] * p.scale;
        for (int64_t d = D; d < Dp; ++d) dst[d] = 0.0f;
        if constexpr (kK == 5) hq4_rotate(dst, D);  // hq4 keys hold R k: (R q)·(R k) = q·k (Dp == D)
        std::memset(acc + r * Dp, 0, size_t(Dp) * sizeof(float));
        ws.m[size_t(r)] = -INFINITY, ws.l[size_t(r)] = 0.0f;
        ws.qp[size_t(r)] = jb.qpos[it];
        if constexpr (kK >= 3)
            quantize_query(dst, Dp, kK, ws.qi.data() + r * Dp, ws.qd.data() + r * (Dp / 32), ws.qc.data() + r * (Dp / 32));
        qmax = std::max(qmax, jb.qpos[it]);
        qmin = std::min(qmin, jb.qpos[it]);
    }
    const int32_t s_begin = std::min(kv.n_slot, jb.split_len[kvh] * split);
    const int32_t s_end = std::min(kv.n_slot, s_begin + jb.split_len[kvh]);
    const bool fuse = jb.cs_on && jb.cs_on[kvh];  // keep every tile's probabilities (colsum_fold)
    if (fuse) {
        const size_t n_tiles = size_t(s_end - s_begin + kTile - 1) / kTile;
        auto grow = [](auto& v, size_t n) { if (v.size() < n) v.resize(n); };
        grow(ws.cs_p, n_tiles * size_t(n_row) * kTile), grow(ws.cs_m, n_tiles * size_t(n_row));
        grow(ws.cs_w, size_t(n_row)), grow(ws.cs_tile, n_tiles);
        std::fill_n(ws.cs_tile.begin(), n_tiles, uint8_t(0));
    }
    for (int32_t s0 = s_begin; s0 < s_end; s0 += kTile) {
        const int n = std::min(kTile, s_end - s0);
        const size_t tile = size_t(s0 - s_begin) / kTile;
        // scores, then probabilities [n_row, kTile]: the tile's own part of the kept ones when fused
        float* const sc = fuse ? ws.cs_p.data() + tile * size_t(n_row) * kTile : ws.sc.data();
        float* const cm = fuse ? ws.cs_m.data() + tile * size_t(n_row) : nullptr;
        const int np = (n + 7) & ~7;
        int32_t pos_buf[kTile];  // a 16-bit lane's tile widened; an int32 lane is read in place
        const int32_t* pos = kv.pos.rows(size_t(s0), size_t(n), pos_buf);
        int32_t pmin = INT32_MAX, pmax = INT32_MIN;
        for (int j = 0; j < n; ++j) pmin = std::min(pmin, pos[j]), pmax = std::max(pmax, pos[j]);
        if (pmin > qmax) continue;  // no row sees any slot of this tile
        if (p.window > 0 && int64_t(qmin) - pmax >= p.window) continue;  // all behind every row's window
        const void* krows[kTile];  // [n] -> [head_dim]
        const void* vrows[kTile];
        if constexpr (kSide) {
            kv_rows_to_f32(kv.k_type, kv.k_pages, p.page_size, D, Dp, s0, n, ws.kf.data());
            kv_rows_to_f32(kv.v_type, kv.v_pages, p.page_size, D, Dp, s0, n, ws.vf.data());
            for (int j = 0; j < n; ++j) krows[j] = ws.kf.data() + j * Dp, vrows[j] = ws.vf.data() + j * Dp;
        } else {
            kv_row_ptrs(kv.k_type, kv.k_pages, p.page_size, D, s0, n, krows);
            kv_row_ptrs(kv.v_type, kv.v_pages, p.page_size, D, s0, n, vrows);
        }
        if (s0 + kTile < s_end) {
            const int n_next = std::min(kTile, s_end - s0 - kTile);
            kv_rows_prefetch(kv.k_type, kv.k_pages, p.page_size, D, s0 + kTile, n_next);
            kv_rows_prefetch(kv.v_type, kv.v_pages, p.page_size, D, s0 + kTile, n_next);
        }
        int r = 0;
        if constexpr (kK >= 3) {  // quantized queries, integer dots (quantize_query)
            const int8_t* qi = ws.qi.data();
            const float* qd = ws.qd.data();
            const int64_t nb = Dp / 32;
            if (jb.vnni) {
                attn512::qk_i8(kK, qi, qd, ws.qc.data(), n_row, krows, n, Dp, sc, kTile);
                r = n_row;
            }
            for (; r + 4 <= n_row; r += 4) qk_rows_i8<4, kK>(qi + r * Dp, qd + r * nb, krows, n, Dp, sc + r * kTile);
            switch (n_row - r) {
                case 3: qk_rows_i8<3, kK>(qi + r * Dp, qd + r * nb, krows, n, Dp, sc + r * kTile); break;
                case 2: qk_rows_i8<2, kK>(qi + r * Dp, qd + r * nb, krows, n, Dp, sc + r * kTile); break;
                case 1: qk_rows_i8<1, kK>(qi + r * Dp, qd + r * nb, krows, n, Dp, sc + r * kTile); break;
                default: break;
            }
        } else {
            if constexpr (kK == 1 && !kSide) {
                if (jb.avx512)
                    for (; r < n_row; r += 4) attn512::qk(kK, qs + r * Dp, std::min(4, n_row - r), krows, n, Dp, sc + r * kTile, kTile);
            }
            for (; r + 4 <= n_row; r += 4) qk_rows<4, kK>(qs + r * Dp, krows, n, Dp, sc + r * kTile);
            switch (n_row - r) {
                case 3: qk_rows<3, kK>(qs + r * Dp, krows, n, Dp, sc + r * kTile); break;
                case 2: qk_rows<2, kK>(qs + r * Dp, krows, n, Dp, sc + r * kTile); break;
                case 1: qk_rows<1, kK>(qs + r * Dp, krows, n, Dp, sc + r * kTile); break;
                default: break;
            }
        }
        // soft-cap, mask, then online softmax per row
        if (p.softcap > 0.0f)
            for (r = 0; r < n_row; ++r) softcap_row(sc + r * kTile, n, p.softcap);
        for (r = 0; r < n_row; ++r) {
            float* srow = sc + r * kTile;
            const int32_t qp = ws.qp[size_t(r)];
            if (pmax > qp)
                for (int j = 0; j < n; ++j)
                    if (pos[j] > qp) srow[j] = -INFINITY;
            if (p.window > 0 && int64_t(qp) - pmin >= p.window)
                for (int j = 0; j < n; ++j)
                    if (int64_t(qp) - pos[j] >= p.window) srow[j] = -INFINITY;
            for (int j = n; j < np; ++j) srow[j] = -INFINITY;
            const float m_old = ws.m[size_t(r)];
            float m_new;
            if (jb.avx512) {
                m_new = std::max(m_old, attn512::row_max(srow, np));
            } else {
                __m256 vm = _mm256_set1_ps(-INFINITY);
                for (int j = 0; j < np; j += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(srow + j));
                m_new = std::max(m_old, simd::hmax(vm));
            }
            if (cm) cm[r] = m_new;
            if (m_new == -INFINITY) {  // nothing visible yet
                for (int j = 0; j < np; ++j) srow[j] = 0.0f;
                ws.alpha[size_t(r)] = 1.0f;
                continue;
            }
            float tile_sum;
            if (jb.avx512) {
                tile_sum = attn512::exp_shift_sum(srow, np, m_new);
            } else {
                const __m256 vmn = _mm256_set1_ps(m_new);
                __m256 vs = _mm256_setzero_ps();
                for (int j = 0; j < np; j += 8) {
                    const __m256 e = simd::exp(_mm256_sub_ps(_mm256_loadu_ps(srow + j), vmn));
                    _mm256_storeu_ps(srow + j, e);
                    vs = _mm256_add_ps(vs, e);
                }
                tile_sum = simd::hsum(vs);
            }
            const float alpha = m_old == m_new ? 1.0f : simd::exp_scalar(m_old - m_new);
            ws.alpha[size_t(r)] = alpha;
            ws.l[size_t(r)] = ws.l[size_t(r)] * alpha + tile_sum;
            ws.m[size_t(r)] = m_new;
        }
        const float* al = ws.alpha.data();
        r = 0;
        if constexpr ((kV == 1 || kV >= 3) && !kSide) {
            if (jb.avx512)
                for (; r < n_row; r += 4)
                    attn512::pv(kV, sc + r * kTile, kTile, al + r, std::min(4, n_row - r), vrows, n, Dp, acc + r * Dp);
        }
        for (; r + 4 <= n_row; r += 4)
            pv_rows<4, kV>(sc + r * kTile, al + r, vrows, n, Dp, acc + r * Dp);
        switch (n_row - r) {
            case 3: pv_rows<3, kV>(sc + r * kTile, al + r, vrows, n, Dp, acc + r * Dp); break;
            case 2: pv_rows<2, kV>(sc + r * kTile, al + r, vrows, n, Dp, acc + r * Dp); break;
            case 1: pv_rows<1, kV>(sc + r * kTile, al + r, vrows, n, Dp, acc + r * Dp); break;
            default: break;
        }
        if (fuse) ws.cs_tile[tile] = 1;
    }
    if (fuse) colsum_fold(jb, ws, kvh, t0, n_row, s_begin, s_end, ith);
    const int64_t pb = (t0 / kQTok) * jb.total_splits + jb.split_off[kvh] + split;  // partial block
    for (int r = 0; r < n_row; ++r) {
        const int64_t it = t0 + r / group, ih = int64_t(kvh) * group + r % group;
        const int64_t row = it * p.n_head + ih;
        float* a = acc + r * Dp;
        if constexpr (kV == 5) hq4_unrotate(a, D);  // sum p_i (R v_i) = R (sum p_i v_i)
        if (jb.split_n[kvh] == 1) {
            float* o = jb.out + row * D;
            const float l = ws.l[size_t(r)];
            const float inv = l > 0.0f ? 1.0f / l : 0.0f;
            for (int64_t d = 0; d < D; ++d) o[d] = a[d] * inv;
            if (jb.lse) jb.lse[row] = l > 0.0f ? ws.m[size_t(r)] + std::log(l) : -INFINITY;
        } else {
            const int64_t prow = pb * jb.part_rows + r;
            std::memcpy(jb.part_acc + prow * D, a, size_t(D) * sizeof(float));
            jb.part_ml[2 * prow] = ws.m[size_t(r)];
            jb.part_ml[2 * prow + 1] = ws.l[size_t(r)];
        }
    }
}

// The split ranges of KV head kvh for tokens [t0, t1) merged into out (and lse): out row =
// sum_i w_i acc_i / sum_i w_i l_i with w_i = exp(m_i - max m).
void attn_merge(const AttnJob& jb, int32_t kvh, int64_t t0, int64_t t1) {
    const int64_t D = jb.D, group = jb.group;
    const int64_t pb0 = (t0 / kQTok) * jb.total_splits + jb.split_off[kvh];
    const int n_split = jb.split_n[kvh];
    for (int64_t r = 0; r < (t1 - t0) * group; ++r) {
        const int64_t row = (t0 + r / group) * jb.p->n_head + int64_t(kvh) * group + r % group;
        float mx = -INFINITY;
        for (int i = 0; i < n_split; ++i) mx = std::max(mx, jb.part_ml[2 * ((pb0 + i) * jb.part_rows + r)]);
        float* o = jb.out + row * D;
        std::memset(o, 0, size_t(D) * sizeof(float));
        if (jb.lse) jb.lse[row] = -INFINITY;
        if (mx == -INFINITY) continue;
        float l = 0.0f;
        for (int i = 0; i < n_split; ++i) {
            const int64_t prow = (pb0 + i) * jb.part_rows + r;
            const float m_i = jb.part_ml[2 * prow];
            if (m_i == -INFINITY) continue;
            const float w = simd::exp_scalar(m_i - mx);
            l += w * jb.part_ml[2 * prow + 1];
            const float* a = jb.part_acc + prow * D;
            for (int64_t d = 0; d < D; ++d) o[d] += w * a[d];
        }
        const float inv = 1.0f / l;
        for (int64_t d = 0; d < D; ++d) o[d] *= inv;
        if (jb.lse) jb.lse[row] = mx + std::log(l);
    }
}

// The kind (kv_load8) of a KV row type; -1 for a type the cache cannot hold.
int kv_kind(DType t) {
    switch (t) {
        case DType::kF32: return 0;
        case DType::kF16: return 1;
        case DType::kBF16: return 2;
        case DType::kQ8_0: return 3;
        case DType::kQ4_0: return 4;
        case DType::kHQ4: return 5;
        default: return -1;
    }
}

using UnitFn = void (*)(const AttnJob&, AttnScratch&, int32_t, int64_t, int64_t, int, int);

template <int kK, int... kV>
constexpr std::array<UnitFn, sizeof...(kV)> unit_row(std::integer_sequence<int, kV...>) {
    return {attn_unit<kK, kV, false>...};
}
template <int... kK>
constexpr std::array<std::array<UnitFn, 6>, sizeof...(kK)> unit_table(std::integer_sequence<int, kK...>) {
    return {unit_row<kK>(std::make_integer_sequence<int, 6>())...};
}

// attn_unit for K kind kk and V kind kv (both in 0..5), read in place (no side buffers).
UnitFn unit_fn(int kk, int kv) {
    static constexpr auto kTable = unit_table(std::make_integer_sequence<int, 6>());
    return kTable[size_t(kk)][size_t(kv)];
}

}  // namespace

void attention(ThreadPool& pool, const AttnParams& p, const float* q, const int32_t* qpos,
               int64_t n_tok, const AttnKvHead* heads, float* out) {
    attention(pool, p, q, qpos, n_tok, heads, out, nullptr);
}

void attention(ThreadPool& pool, const AttnParams& p, const float* q, const int32_t* qpos,
               int64_t n_tok, const AttnKvHead* heads, float* out, float* lse) {
    attention(pool, p, q, qpos, n_tok, heads, out, lse, nullptr);
}

void attention(ThreadPool& pool, const AttnParams& p, const float* q, const int32_t* qpos,
               int64_t n_tok, const AttnKvHead* heads, float* out, float* lse, AttnColSums* cs) {
    if (cs) std::fill_n(cs->done, p.n_head_kv, uint8_t(0));
    if (n_tok <= 0) return;
    if (cpu_isa() == Isa::kScalar) return ref::attention(p, q, qpos, n_tok, heads, out, lse);
    HKV_ASSERT(p.n_head_kv > 0 && p.n_head % p.n_head_kv == 0 && p.head_dim > 0 && p.page_size > 0,
               "n_head %d, n_head_kv %d, head_dim %d, page_size %d", int(p.n_head),
               int(p.n_head_kv), int(p.head_dim), int(p.page_size));
    // Each KV head has its own K / V types (per-head precision): its units run the kernel of its pair.
    thread_local std::vector<UnitFn> head_unit;  // [n_head_kv]
    head_unit.resize(size_t(p.n_head_kv));
    const bool side = p.head_dim % 8 != 0;
    for (int32_t h = 0; h < p.n_head_kv; ++h) {
        const DType kt = heads[h].k_type, vt = heads[h].v_type;
        const int kk = kv_kind(kt), kvk = kv_kind(vt);
        HKV_ASSERT(kk >= 0 && kvk >= 0, "kv head %d: types %s / %s unsupported", int(h), dtype_name(kt), dtype_name(vt));
        HKV_ASSERT((kk < 3 && kvk < 3) || p.head_dim % 32 == 0, "head_dim %d is not whole blocks of %s / %s",
                   int(p.head_dim), dtype_name(kt), dtype_name(vt));
        HKV_ASSERT((kk != 5 && kvk != 5) || hq4_dim_ok(p.head_dim), "head_dim %d: hq4 rows need a power of two",
                   int(p.head_dim));
        head_unit[size_t(h)] = side ? attn_unit<0, 0, true> : unit_fn(kk, kvk);
    }
    AttnJob jb{};
    jb.p = &p, jb.q = q, jb.qpos = qpos, jb.n_tok = n_tok, jb.heads = heads, jb.out = out;
    jb.lse = lse;
    jb.group = p.n_head / p.n_head_kv;
    jb.D = p.head_dim, jb.Dp = (p.head_dim + 7) & ~int64_t(7);
    const int64_t n_qt = (n_tok + kQTok - 1) / kQTok;
    const int64_t n_base = n_qt * p.n_head_kv;
    const int nth = pool.n_threads();
    // Split plan. Enough units to keep every thread busy (prefill chunks have n_qt * n_head_kv of
    // them): one range per head. Otherwise ranges of about total / (8 * nth) slots, at least
    // kMinSplit and a multiple of kTile, so that the units are about equal whatever the heads'
    // lengths and the atomic counter balances them to within one small range.
    // NOTE: thread_local so the plan and partial buffers of repeated decode calls are not reallocated
    thread_local std::vector<int32_t> split_n, split_len, split_off, order;  // [n_head_kv] x3, [total]
    split_n.assign(size_t(p.n_head_kv), 1), split_len.resize(size_t(p.n_head_kv)), split_off.resize(size_t(p.n_head_kv));
    int64_t total_slots = 0;
    for (int32_t h = 0; h < p.n_head_kv; ++h) total_slots += heads[h].n_slot;
    const bool want_split = nth > 1 && n_base < 4 * nth;
    const int64_t range = std::max<int64_t>(kMinSplit, ((total_slots / (8 * nth) + kTile - 1) / kTile) * kTile);
    int32_t total_splits = 0;
    for (int32_t h = 0; h < p.n_head_kv; ++h) {
        const int32_t n = heads[h].n_slot;
        if (want_split && n >= 2 * kMinSplit) split_n[size_t(h)] = int32_t((n + range - 1) / range);
        const int32_t len = std::max<int32_t>(1, (n + split_n[size_t(h)] - 1) / split_n[size_t(h)]);
        split_len[size_t(h)] = split_n[size_t(h)] > 1 ? (len + kTile - 1) / kTile * kTile : len;
        split_off[size_t(h)] = total_splits;
        total_splits += split_n[size_t(h)];
    }
    jb.split_n = split_n.data(), jb.split_len = split_len.data(), jb.split_off = split_off.data();
    jb.total_splits = total_splits;
    jb.any_split = total_splits > p.n_head_kv;
    jb.part_rows = std::min<int64_t>(n_tok, kQTok) * jb.group;
    // Units of one query tile, longest ranges first (the last units handed out are the short ones).
    order.resize(size_t(total_splits));
    for (int32_t h = 0, u = 0; h < p.n_head_kv; ++h)
        for (int32_t i = 0; i < split_n[size_t(h)]; ++i) order[size_t(u++)] = h << 16 | i;
    if (jb.any_split) {
        std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
            return split_len[size_t(a >> 16)] > split_len[size_t(b >> 16)];
        });
    }
    thread_local std::vector<float> part_acc, part_ml;
    if (jb.any_split) {
        const size_t rows = size_t(n_qt) * size_t(total_splits) * size_t(jb.part_rows);
        if (part_acc.size() < rows * size_t(jb.D)) part_acc.resize(rows * size_t(jb.D));
        if (part_ml.size() < rows * 2) part_ml.resize(rows * 2);
        jb.part_acc = part_acc.data(), jb.part_ml = part_ml.data();
    }
    const int64_t n_units = n_qt * total_splits;
    jb.avx512 = jb.D % 16 == 0 && cpu_isa() == Isa::kAvx512;
    jb.vnni = jb.avx512 && cpu_features().avx512vnni;
    // Split-K: the unit that finishes last among the ranges of one (query tile, KV head) merges
    // their partial rows in the same pool run (no second fork-join per layer). The acq_rel
    // increments order every unit's partial writes before the merge reads them.
    thread_local std::unique_ptr<std::atomic<int32_t>[]> split_done;
    thread_local int64_t split_done_cap = 0;
    if (jb.any_split) {
        if (split_done_cap < n_base) split_done.reset(new std::atomic<int32_t>[size_t(n_base)]), split_done_cap = n_base;
        for (int64_t i = 0; i < n_base; ++i) split_done[size_t(i)].store(0, std::memory_order_relaxed);
    }
    std::atomic<int32_t>* const done = split_done.get();  // the caller's (thread_local) counters
    const UnitFn* unit = head_unit.data();
    const int32_t* ord = order.data();
    // Fused column sums: the heads with float keys and one range each; fixed-point accumulators per
    // thread ([n_threads, cs_total]), summed per slot after the run.
    thread_local std::vector<uint8_t> cs_on;   // [n_head_kv]
    thread_local std::vector<int64_t> cs_off;  // [n_head_kv]
    thread_local std::vector<int64_t> cs_acc;  // [n_threads, cs_total]
    if (cs) {
        cs_on.assign(size_t(p.n_head_kv), 0), cs_off.assign(size_t(p.n_head_kv), 0);
        for (int32_t h = 0; h < p.n_head_kv; ++h) {
            if (kv_kind(heads[h].k_type) > 2 || split_n[size_t(h)] != 1) continue;
            cs_on[size_t(h)] = 1, cs_off[size_t(h)] = jb.cs_total;
            jb.cs_total += heads[h].n_slot;
        }
        cs_acc.assign(size_t(nth) * size_t(jb.cs_total), 0);
        jb.cs = cs, jb.cs_on = cs_on.data(), jb.cs_off = cs_off.data(), jb.cs_acc = cs_acc.data();
        // a slot's total is at most the summed rows (each row's probabilities sum to 1): < 2^61
        jb.cs_scale = std::ldexp(1.0, 61 - int(std::bit_width(uint64_t(n_tok) * uint64_t(jb.group))));
    }
    pool.for_each(n_units, [&](int64_t u, int ith) {
        thread_local AttnScratch ws;
        const int32_t o = ord[u % total_splits];
        const int32_t kvh = o >> 16;
        const int split = o & 0xffff;
        const int64_t qt = n_qt - 1 - u / total_splits;  // later tokens see more: start there
        const int64_t t0 = qt * kQTok, t1 = std::min(n_tok, (qt + 1) * kQTok);
        unit[kvh](jb, ws, kvh, t0, t1, split, ith);
        const int32_t ns = jb.split_n[kvh];
        if (ns > 1 && done[qt * p.n_head_kv + kvh].fetch_add(1, std::memory_order_acq_rel) == ns - 1)
            attn_merge(jb, kvh, t0, t1);
    });
    if (!cs) return;
    for (int32_t h = 0; h < p.n_head_kv; ++h) {
        if (!cs_on[size_t(h)]) continue;
        const int64_t* a = cs_acc.data() + cs_off[size_t(h)];
        float* o = cs->sums + int64_t(h) * cs->stride;
        for (int32_t s = 0; s < heads[h].n_slot; ++s) {
            int64_t v = 0;
            for (int th = 0; th < nth; ++th) v += a[int64_t(th) * jb.cs_total + s];
            o[s] = float(double(v) / jb.cs_scale);
        }
        cs->done[h] = 1;
    }
}

}  // namespace hkv
