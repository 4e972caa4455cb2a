// Attention over quantized KV rows (q8_0, q4_0, hq4; issue 19): the fast kernels (AVX-512 or AVX2,
// and the AVX2 ones again under HKV_ISA=avx2, see CMakeLists.txt) read the blocks in place (hq4 in
// its rotated domain: rotated queries, un-rotated outputs) and must equal the scalar reference, which
// decodes each row (hq4: blocks then the inverse rotation), for every K/V type pair, head size, page
// size, slot count, group and thread count; the policies' key reads (kv_read_row, qk_dots) likewise.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "backend/cpu/kv_hq4.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/quant.h"
#include "backend/cpu/scores.h"

namespace hkv {
namespace {

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b, double* nmse) {
    double num = 0.0, den = 0.0, mx = 0.0;
    for (size_t i = 0; i < a.size(); ++i) {
        const double d = double(a[i]) - double(b[i]);
        num += d * d, den += double(b[i]) * double(b[i]);
        mx = std::max(mx, std::isnan(d) ? INFINITY : std::fabs(d));
    }
    *nmse = den > 0 ? num / den : num;
    return mx;
}

std::vector<float> randn(std::mt19937& rng, size_t n, float sigma = 1.0f) {
    std::normal_distribution<float> dist(0.0f, sigma);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

ThreadPool& pool_of(int n) {
    static ThreadPool p1(1), p2(2), p3(3);
    return n == 1 ? p1 : n == 2 ? p2 : p3;
}

struct TypePair {
    DType k, v;
};

// n_head_kv heads of n slots in pages of ps rows; head ih's K rows of type types[ih].k, V rows of
// types[ih].v (per-head precision; the first constructor: every head tk / tv). Rows past n in the
// last page are poisoned (NaN scales for block types, NaN values otherwise): a kernel that reads
// them fails the comparison.
struct PagedKv {
    std::vector<std::unique_ptr<uint8_t[]>> storage;
    std::vector<std::vector<const void*>> k_ptrs, v_ptrs;  // [n_head_kv][n_pages]
    std::vector<int32_t> pos;                               // [n]
    std::vector<AttnKvHead> heads;                          // [n_head_kv]

    PagedKv(std::mt19937& rng, DType tk, DType tv, int32_t n_head_kv, int32_t ps, int32_t d, int32_t n)
        : PagedKv(rng, std::vector<TypePair>(size_t(n_head_kv), TypePair{tk, tv}), ps, d, n) {}
    PagedKv(std::mt19937& rng, const std::vector<TypePair>& types, int32_t ps, int32_t d, int32_t n) {
        const int32_t n_head_kv = int32_t(types.size());
        int32_t cur = 0;
        for (int32_t i = 0; i < n; ++i) pos.push_back(cur), cur += 1 + int32_t(rng() % 3);  // gaps, as after eviction
        const int32_t n_pages = std::max(1, (n + ps - 1) / ps);
        k_ptrs.resize(size_t(n_head_kv)), v_ptrs.resize(size_t(n_head_kv));
        for (int32_t ih = 0; ih < n_head_kv; ++ih) {
            for (int kv = 0; kv < 2; ++kv) {
                const DType t = kv == 0 ? types[size_t(ih)].k : types[size_t(ih)].v;
                const size_t rb = dtype_row_size(t, d);
                for (int32_t pg = 0; pg < n_pages; ++pg) {
                    storage.emplace_back(new uint8_t[rb * size_t(ps)]);
                    uint8_t* page = storage.back().get();
                    for (int32_t r = 0; r < ps; ++r) {
                        if (pg * ps + r < n) {
                            // per-dimension scales (outlier channels, as real keys have)
                            auto row = randn(rng, size_t(d));
                            for (int32_t j = 0; j < d; j += 7) row[size_t(j)] *= 6.0f;
                            kv_convert_row(t, row.data(), page + size_t(r) * rb, d);
                        } else if (t == DType::kQ8_0 || t == DType::kQ4_0 || t == DType::kHQ4) {
                            std::memset(page + size_t(r) * rb, 0xff, rb);  // f16 scale 0xffff = NaN
                        } else {
                            std::vector<float> nan_row(size_t(d), NAN);
                            kv_convert_row(t, nan_row.data(), page + size_t(r) * rb, d);
                        }
                    }
                    (kv == 0 ? k_ptrs : v_ptrs)[size_t(ih)].push_back(page);
                }
            }
        }
        for (int32_t ih = 0; ih < n_head_kv; ++ih)
            heads.push_back({k_ptrs[size_t(ih)].data(), v_ptrs[size_t(ih)].data(), PosLane(pos.data(), pos.size()), n, types[size_t(ih)].k,
                             types[size_t(ih)].v});
    }
};

// attention() on n_threads threads against ref::attention for queries q at positions qpos over
// heads: outputs within 2e-5 (nmse < 1e-10), log-sum-exps within 1e-4. Returns the reference output.
std::vector<float> expect_reference(int n_threads, const AttnParams& p, const std::vector<float>& q,
                                    const std::vector<int32_t>& qpos, const std::vector<AttnKvHead>& heads) {
    const int64_t n_tok = int64_t(qpos.size());
    std::vector<float> out(q.size(), 1234.0f), ref_out(q.size(), -1.0f);
    std::vector<float> lse(size_t(n_tok) * size_t(p.n_head)), ref_lse(lse.size());
    attention(pool_of(n_threads), p, q.data(), qpos.data(), n_tok, heads.data(), out.data(), lse.data());
    ref::attention(p, q.data(), qpos.data(), n_tok, heads.data(), ref_out.data(), ref_lse.data());
    double nmse = 0.0;
    EXPECT_LT(max_abs_diff(out, ref_out, &nmse), 2e-5);
    EXPECT_LT(nmse, 1e-10);
    EXPECT_LT(max_abs_diff(lse, ref_lse, &nmse), 1e-4);
    return ref_out;
}

const TypePair kPairs[] = {{DType::kQ8_0, DType::kQ8_0}, {DType::kQ4_0, DType::kQ4_0}, {DType::kQ8_0, DType::kF16},
                           {DType::kF16, DType::kQ4_0},  {DType::kQ4_0, DType::kQ8_0}, {DType::kBF16, DType::kQ8_0},
                           {DType::kHQ4, DType::kHQ4},   {DType::kHQ4, DType::kF16},   {DType::kQ8_0, DType::kHQ4}};

// The cache types are llama.cpp's blocks: kv_convert_row writes what ggml's reference quantizer
// writes, head_dim / 32 blocks of 34 (q8_0) or 18 (q4_0) bytes.
TEST(AttnQuant, RowsAreLlamaCppBlocks) {
    std::mt19937 rng(3);
    for (DType t : {DType::kQ8_0, DType::kQ4_0}) {
        for (int32_t d : {32, 64, 128}) {
            const auto row = randn(rng, size_t(d), 2.0f);
            const size_t rb = dtype_row_size(t, d);
            EXPECT_EQ(rb, size_t(d / 32) * (t == DType::kQ8_0 ? 34u : 18u));
            std::vector<uint8_t> got(rb), want(rb);
            kv_convert_row(t, row.data(), got.data(), d);
            quantize_row_ref(t, row.data(), want.data(), d);
            EXPECT_EQ(got, want) << dtype_name(t) << " d=" << d;
            // and the policies' reader gives the block values back
            const void* page = got.data();
            std::vector<float> back(static_cast<size_t>(d)), ref(static_cast<size_t>(d));
            kv_read_row(t, &page, 1, d, 0, back.data());
            dequantize_row_ref(t, got.data(), ref.data(), d);
            EXPECT_EQ(back, ref);
        }
    }
}

TEST(AttnQuant, DecodeAndPrefillMatchReference) {
    std::mt19937 rng(17);
    int idx = 0;
    for (const TypePair tp : kPairs) {
        for (int32_t d : {32, 64, 128}) {
            for (int32_t n_slot : {1, 17, 97, 1500}) {
                const int32_t ps = idx % 2 ? 16 : 256;
                const int32_t group = idx % 3 == 0 ? 1 : 4;
                const int n_threads = 1 + idx % 3;
                ++idx;
                SCOPED_TRACE(testing::Message() << dtype_name(tp.k) << "/" << dtype_name(tp.v) << " d=" << d
                             << " n_slot=" << n_slot << " ps=" << ps << " group=" << group << " threads=" << n_threads);
                const PagedKv kv(rng, tp.k, tp.v, 2, ps, d, n_slot);
                AttnParams p;
                p.n_head = group * 2, p.n_head_kv = 2, p.head_dim = d, p.page_size = ps;
                p.scale = 1.0f / std::sqrt(float(d));
                for (int32_t n_tok : {1, 20}) {
                    if (n_tok > n_slot) continue;
                    // decode sees every slot (or a prefix), prefill the last n_tok slots causally
                    std::vector<int32_t> qpos(kv.pos.end() - n_tok, kv.pos.end());
                    if (n_tok == 1 && n_slot > 2) qpos[0] = kv.pos[size_t(n_slot / 2)];
                    const auto q = randn(rng, size_t(n_tok) * size_t(p.n_head) * size_t(d), 2.0f);
                    SCOPED_TRACE(testing::Message() << "n_tok " << n_tok);
                    const std::vector<float> ref_out = expect_reference(n_threads, p, q, qpos, kv.heads);
                    if (HasFailure()) return;  // the first differing case only
                }
            }
        }
    }
}

// Long decode split over threads (split-K and its log-sum-exp merge) on quantized rows.
TEST(AttnQuant, DecodeSplitK) {
    std::mt19937 rng(19);
    for (const TypePair tp : {kPairs[0], kPairs[1], kPairs[6]}) {
        for (int n_threads : {2, 3}) {
            const int32_t n_slot = 20000, d = 64;
            const PagedKv kv(rng, tp.k, tp.v, 1, 256, d, n_slot);
            AttnParams p;
            p.n_head = 4, p.n_head_kv = 1, p.head_dim = d, p.page_size = 256;
            p.scale = 1.0f / std::sqrt(float(d));
            const auto q = randn(rng, 4 * size_t(d), 3.0f);
            const int32_t qp = kv.pos.back();
            std::vector<float> out(q.size()), ref_out(q.size());
            attention(pool_of(n_threads), p, q.data(), &qp, 1, kv.heads.data(), out.data());
            ref::attention(p, q.data(), &qp, 1, kv.heads.data(), ref_out.data());
            double nmse = 0.0;
            // hq4 sums 20000 rows in the rotated domain, where the outlier channels' rounding is spread
            // over every column, and un-rotates the sum: a larger largest error, the same nmse
            const double tol = tp.v == DType::kHQ4 ? 1e-4 : 2e-5;
            EXPECT_LT(max_abs_diff(out, ref_out, &nmse), tol) << dtype_name(tp.k) << " threads " << n_threads;
            EXPECT_LT(nmse, 1e-10) << dtype_name(tp.k) << " threads " << n_threads;
        }
    }
}

// Per-head precision (issue 19 item 5): the heads of ONE call have different K/V types (HeteroCache's
// classes: f16 full heads next to q8_0 / q4_0 / hq4 compressed ones, and K+V pairs) and different
// lengths; every head's output equals the reference's, in prefill, decode and split-K decode.
TEST(AttnQuant, MixedHeadTypesInOneCall) {
    std::mt19937 rng(29);
    const std::vector<TypePair> types = {{DType::kF16, DType::kF16},   {DType::kQ8_0, DType::kQ8_0},
                                         {DType::kQ4_0, DType::kQ8_0}, {DType::kHQ4, DType::kHQ4},
                                         {DType::kF16, DType::kQ4_0},  {DType::kQ8_0, DType::kF16}};
    for (int32_t d : {32, 64}) {
        for (int32_t n_slot : {17, 700}) {
            for (int n_threads : {1, 3}) {
                SCOPED_TRACE(testing::Message() << "d=" << d << " n_slot=" << n_slot << " threads=" << n_threads);
                PagedKv kv(rng, types, 64, d, n_slot);
                kv.heads[1].n_slot = n_slot / 3;  // uneven lengths, as after compression
                kv.heads[3].n_slot = 1;
                AttnParams p;
                p.n_head = 2 * int32_t(types.size()), p.n_head_kv = int32_t(types.size()), p.head_dim = d;
                p.page_size = 64, p.scale = 1.0f / std::sqrt(float(d));
                for (int32_t n_tok : {1, 16}) {
                    const std::vector<int32_t> qpos(kv.pos.end() - n_tok, kv.pos.end());
                    const auto q = randn(rng, size_t(n_tok) * size_t(p.n_head) * size_t(d), 2.0f);
                    SCOPED_TRACE(testing::Message() << "n_tok " << n_tok);
                    const std::vector<float> ref_out = expect_reference(n_threads, p, q, qpos, kv.heads);
                    if (HasFailure()) return;  // the first differing case only
                    // and a head read with another head's types would not match: the types are used
                    std::vector<AttnKvHead> wrong = kv.heads;
                    wrong[1].k_type = DType::kQ4_0;  // q8_0 rows read as q4_0 (shorter rows: inside the pages)
                    std::vector<float> bad(q.size());
                    ref::attention(p, q.data(), qpos.data(), n_tok, wrong.data(), bad.data());
                    double nmse = 0.0;
                    EXPECT_GT(max_abs_diff(bad, ref_out, &nmse), 1e-2);
                }
            }
        }
    }
}

// Policies' raw dot products over quantized keys (qk_dots, single and multi-threaded) equal q·k of
// the dequantized rows.
TEST(AttnQuant, KeyDotsMatchDequantizedKeys) {
    std::mt19937 rng(23);
    for (DType t : {DType::kQ8_0, DType::kQ4_0, DType::kHQ4}) {
        for (int32_t d : {32, 128}) {
            const int32_t n = 300, ps = 64, n_row = 5;
            const PagedKv kv(rng, t, t, 1, ps, d, n);
            const auto q = randn(rng, size_t(n_row) * size_t(d));
            std::vector<float> out(size_t(n_row) * size_t(n)), out_mt(out.size()), want(out.size());
            const void* const* pages = kv.heads[0].k_pages;
            qk_dots(t, pages, ps, d, q.data(), n_row, n, out.data(), n);
            qk_dots(pool_of(3), t, pages, ps, d, q.data(), n_row, n, out_mt.data(), n);
            std::vector<float> key(static_cast<size_t>(d));
            for (int32_t s = 0; s < n; ++s) {
                const uint8_t* row = static_cast<const uint8_t*>(pages[s / ps]) + size_t(s % ps) * dtype_row_size(t, d);
                if (t == DType::kHQ4) hq4_dequantize_row(row, key.data(), d);
                else dequantize_row_ref(t, row, key.data(), d);
                for (int32_t r = 0; r < n_row; ++r) {
                    double dot = 0.0;
                    for (int32_t j = 0; j < d; ++j) dot += double(q[size_t(r * d + j)]) * key[size_t(j)];
                    want[size_t(r) * size_t(n) + size_t(s)] = float(dot);
                }
            }
            double nmse = 0.0;
            EXPECT_LT(max_abs_diff(out, want, &nmse), 1e-3) << dtype_name(t) << " d=" << d;
            EXPECT_LT(nmse, 1e-10);
            EXPECT_LT(max_abs_diff(out_mt, out, &nmse), 1e-6);
        }
    }
}

}  // namespace
}  // namespace hkv
