// The column sums attention() takes from its own probabilities (ops.h AttnColSums, EMS's global
// scores) against a double-precision reference and against the separate pass from the kernel's lse
// (scores.h attn_colsums): f32 / f16 / bf16 keys, head sizes that take the f32 side buffers (12, 20)
// and the AVX-512 tiles (64, 128), GQA groups 1-4, sliding window and soft cap, 1-3 threads, a chunk
// of queries after older slots (chunked prefill) and t_begin > 0. Also: the same bits for every
// thread count, the attention's output and lse unchanged by asking for the sums, and the heads the
// kernel leaves to the separate pass (quantized keys, split-K) marked and left untouched.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/cpu/scores.h"
#include "core/thread_pool.h"

namespace hkv {
namespace {

ThreadPool& pool_of(int n) {
    static ThreadPool p1(1), p2(2), p3(3);
    return n == 1 ? p1 : n == 2 ? p2 : p3;
}

// n_head_kv heads of n_slot random rows of type t in pages of page_size (K and V), positions
// ascending with gaps from 0 (as left by eviction).
struct Cache {
    std::vector<std::unique_ptr<uint8_t[]>> pages;
    std::vector<std::vector<const void*>> k_tab, v_tab;  // [n_head_kv][n_pages]
    std::vector<int32_t> pos;                            // [n_slot]
    std::vector<AttnKvHead> heads;                       // [n_head_kv]

    Cache(std::mt19937& rng, const std::vector<DType>& types, int32_t page_size, int32_t hd, int32_t n_slot) {
        std::normal_distribution<float> nd(0.0f, 1.0f);
        pos.resize(size_t(n_slot));
        for (int32_t s = 0, p = 0; s < n_slot; ++s, p += 1 + int32_t(rng() % 3)) pos[size_t(s)] = p;
        const int32_t n_pages = std::max(1, (n_slot + page_size - 1) / page_size);
        const size_t n_kv = types.size();
        k_tab.resize(n_kv), v_tab.resize(n_kv);
        std::vector<float> row(static_cast<size_t>(hd));
        for (size_t ih = 0; ih < n_kv; ++ih) {
            const size_t row_bytes = dtype_row_size(types[ih], hd);
            for (auto* tab : {&k_tab[ih], &v_tab[ih]}) {
                for (int32_t pg = 0; pg < n_pages; ++pg) {
                    pages.emplace_back(new uint8_t[row_bytes * size_t(page_size)]);
                    for (int32_t r = 0; r < page_size; ++r) {
                        for (float& x : row) x = nd(rng);
                        kv_convert_row(types[ih], row.data(), pages.back().get() + size_t(r) * row_bytes, hd);
                    }
                    tab->push_back(pages.back().get());
                }
            }
            heads.push_back({k_tab[ih].data(), v_tab[ih].data(), PosLane(pos.data(), pos.size()), n_slot, types[ih],
                             types[ih]});
        }
    }
};

// sum over t in [t_begin, n_tok) and the group's query heads of softmax(attn_logit(q·K)) over the
// visible slots, in double from the keys' f32 values: [n_head_kv, n_slot].
std::vector<double> reference(const AttnParams& p, const std::vector<float>& q, const std::vector<int32_t>& qpos,
                              int64_t t_begin, const Cache& c) {
    const int32_t group = p.n_head / p.n_head_kv, hd = p.head_dim;
    const int32_t n_slot = c.heads[0].n_slot;
    std::vector<double> out(size_t(p.n_head_kv) * size_t(n_slot), 0.0);
    std::vector<float> keys(size_t(n_slot) * size_t(hd));
    std::vector<double> lg(static_cast<size_t>(n_slot));
    for (int32_t ih = 0; ih < p.n_head_kv; ++ih) {
        const AttnKvHead& h = c.heads[size_t(ih)];
        for (int32_t s = 0; s < n_slot; ++s) kv_read_row(h.k_type, h.k_pages, p.page_size, hd, s, keys.data() + size_t(s) * hd);
        for (int64_t t = t_begin; t < int64_t(qpos.size()); ++t) {
            for (int32_t g = 0; g < group; ++g) {
                const float* qr = q.data() + (size_t(t) * size_t(p.n_head) + size_t(ih * group + g)) * size_t(hd);
                double mx = -INFINITY;
                for (int32_t s = 0; s < n_slot; ++s) {
                    lg[size_t(s)] = -INFINITY;
                    if (!attn_visible(p, c.pos[size_t(s)], qpos[size_t(t)])) continue;
                    double d = 0.0;
                    for (int32_t k = 0; k < hd; ++k) d += double(qr[k]) * double(keys[size_t(s) * hd + size_t(k)]);
                    d *= double(p.scale);
                    if (p.softcap > 0.0f) d = double(p.softcap) * std::tanh(d / double(p.softcap));
                    lg[size_t(s)] = d;
                    mx = std::max(mx, d);
                }
                if (mx == -INFINITY) continue;
                double z = 0.0;
                for (int32_t s = 0; s < n_slot; ++s) z += std::exp(lg[size_t(s)] - mx);
                for (int32_t s = 0; s < n_slot; ++s) out[size_t(ih) * n_slot + size_t(s)] += std::exp(lg[size_t(s)] - mx) / z;
            }
        }
    }
    return out;
}

struct Case {
    DType type;
    int32_t head_dim, group, n_head_kv, n_prev, n_tok, page_size;
    bool gemma;  // window 24 and soft cap 3
};

TEST(FusedColSums, MatchTheReferenceAndTheSeparatePass) {
    std::mt19937 rng(41);
    const Case cases[] = {
        {DType::kF32, 12, 1, 2, 0, 40, 16, false},   {DType::kF16, 20, 3, 2, 17, 33, 16, true},
        {DType::kBF16, 32, 2, 3, 100, 50, 32, false}, {DType::kF16, 64, 4, 2, 130, 70, 64, false},
        {DType::kF16, 64, 4, 2, 130, 70, 64, true},  {DType::kBF16, 64, 1, 1, 0, 129, 16, true},
        {DType::kF32, 128, 2, 2, 200, 64, 256, false}, {DType::kF16, 128, 3, 2, 5, 300, 16, false},
    };
    for (const Case& c : cases) {
        const int32_t n_slot = c.n_prev + c.n_tok;
        Cache cache(rng, std::vector<DType>(size_t(c.n_head_kv), c.type), c.page_size, c.head_dim, n_slot);
        AttnParams p;
        p.n_head = c.group * c.n_head_kv, p.n_head_kv = c.n_head_kv, p.head_dim = c.head_dim;
        p.page_size = c.page_size, p.scale = 1.0f / std::sqrt(float(c.head_dim));
        if (c.gemma) p.window = 24, p.softcap = 3.0f;
        // the chunk: the last n_tok slots' positions (older slots before them, as after earlier chunks)
        const std::vector<int32_t> qpos(cache.pos.end() - c.n_tok, cache.pos.end());
        std::normal_distribution<float> nd(0.0f, 2.0f);
        std::vector<float> q(size_t(c.n_tok) * size_t(p.n_head) * size_t(c.head_dim));
        for (float& x : q) x = nd(rng);
        std::vector<float> out_plain(q.size()), lse_plain(size_t(c.n_tok) * size_t(p.n_head));
        attention(pool_of(1), p, q.data(), qpos.data(), c.n_tok, cache.heads.data(), out_plain.data(), lse_plain.data());
        for (int64_t t_begin : {int64_t(0), int64_t(c.n_tok / 2)}) {
            const std::vector<double> want = reference(p, q, qpos, t_begin, cache);
            std::vector<float> first;  // the 1-thread sums: every thread count gives the same bits
            for (int nth = 1; nth <= 3; ++nth) {
                SCOPED_TRACE(testing::Message() << dtype_name(c.type) << " hd=" << c.head_dim << " group=" << c.group
                                                << " n_prev=" << c.n_prev << " n_tok=" << c.n_tok << " gemma=" << c.gemma
                                                << " t_begin=" << t_begin << " threads=" << nth);
                std::vector<float> out(q.size()), lse(lse_plain.size());
                std::vector<float> sums(size_t(c.n_head_kv) * size_t(n_slot), NAN);
                std::vector<uint8_t> done(size_t(c.n_head_kv), 7);
                AttnColSums cs{sums.data(), n_slot, t_begin, done.data()};
                attention(pool_of(nth), p, q.data(), qpos.data(), c.n_tok, cache.heads.data(), out.data(), lse.data(), &cs);
                // the attention itself is unchanged by the sums
                ASSERT_EQ(0, std::memcmp(out.data(), out_plain.data(), out.size() * sizeof(float)));
                ASSERT_EQ(0, std::memcmp(lse.data(), lse_plain.data(), lse.size() * sizeof(float)));
                for (uint8_t d : done) ASSERT_EQ(d, 1);  // float keys, prefill: no split
                std::vector<float> sep(sums.size(), 0.0f);
                attn_colsums(pool_of(nth), p, q.data(), qpos.data(), c.n_tok, t_begin, lse.data(), cache.heads.data(),
                             sep.data(), n_slot);
                double total = 0.0;
                for (size_t i = 0; i < sums.size(); ++i) {
                    ASSERT_NEAR(sums[i], want[i], 1e-5 * want[i] + 1e-9) << "slot " << i;
                    ASSERT_NEAR(sums[i], sep[i], 1e-5 * sep[i] + 1e-9) << "slot " << i;
                    total += sums[i];
                }
                // every summed row's probabilities add up to 1
                EXPECT_NEAR(total, double(c.n_tok - t_begin) * p.n_head, 1e-5 * double(c.n_tok - t_begin) * p.n_head);
                if (nth == 1) first = sums;
                ASSERT_EQ(0, std::memcmp(sums.data(), first.data(), sums.size() * sizeof(float)));
            }
        }
    }
}

// A query tile may see none of a head's slots (positions after every query): zero sums.
TEST(FusedColSums, SlotsInEveryQuerysFutureSumToZero) {
    std::mt19937 rng(42);
    Cache cache(rng, {DType::kF16, DType::kF16}, 16, 64, 90);
    AttnParams p;
    p.n_head = 4, p.n_head_kv = 2, p.head_dim = 64, p.page_size = 16, p.scale = 0.125f;
    const std::vector<int32_t> qpos = {cache.pos[0], cache.pos[3], cache.pos[40]};  // the rest is in the future
    std::vector<float> q(size_t(3) * 4 * 64);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (float& x : q) x = nd(rng);
    std::vector<float> out(q.size()), lse(12), sums(180, NAN);
    std::vector<uint8_t> done(2, 0);
    AttnColSums cs{sums.data(), 90, 0, done.data()};
    attention(pool_of(2), p, q.data(), qpos.data(), 3, cache.heads.data(), out.data(), lse.data(), &cs);
    const std::vector<double> want = reference(p, q, qpos, 0, cache);
    for (int32_t ih = 0; ih < 2; ++ih) {
        ASSERT_EQ(done[size_t(ih)], 1);
        for (int32_t s = 0; s < 90; ++s) {
            const float v = sums[size_t(ih) * 90 + size_t(s)];
            if (s > 40) {
                ASSERT_EQ(v, 0.0f) << s;
            }
            ASSERT_NEAR(v, want[size_t(ih) * 90 + size_t(s)], 1e-5 * want[size_t(ih) * 90 + size_t(s)] + 1e-9) << s;
        }
    }
}

// The heads the kernel does not take: q8_0 / q4_0 keys (it dots a quantized query there) beside a
// float head in one call, and a long head split across units (split-K, a decode step on 2 threads).
// Their done is 0 and their sums are not written; the float head's are taken.
TEST(FusedColSums, QuantizedAndSplitHeadsAreLeftToTheSeparatePass) {
    std::mt19937 rng(43);
    {
        Cache cache(rng, {DType::kF16, DType::kQ8_0, DType::kQ4_0}, 16, 64, 120);
        AttnParams p;
        p.n_head = 6, p.n_head_kv = 3, p.head_dim = 64, p.page_size = 16, p.scale = 0.125f;
        const std::vector<int32_t> qpos(cache.pos.end() - 30, cache.pos.end());
        std::vector<float> q(size_t(30) * 6 * 64);
        std::normal_distribution<float> nd(0.0f, 2.0f);
        for (float& x : q) x = nd(rng);
        std::vector<float> out(q.size()), lse(size_t(30) * 6), sums(size_t(3) * 120, -5.0f);
        std::vector<uint8_t> done(3, 9);
        AttnColSums cs{sums.data(), 120, 0, done.data()};
        attention(pool_of(2), p, q.data(), qpos.data(), 30, cache.heads.data(), out.data(), lse.data(), &cs);
        EXPECT_EQ(done[0], 1);
        EXPECT_EQ(done[1], 0);
        EXPECT_EQ(done[2], 0);
        const std::vector<double> want = reference(p, q, qpos, 0, cache);
        for (int32_t s = 0; s < 120; ++s) {
            ASSERT_NEAR(sums[size_t(s)], want[size_t(s)], 1e-5 * want[size_t(s)] + 1e-9) << s;
            ASSERT_EQ(sums[size_t(120 + s)], -5.0f);
            ASSERT_EQ(sums[size_t(240 + s)], -5.0f);
        }
    }
    {
        Cache cache(rng, {DType::kF16}, 64, 64, 4096);
        AttnParams p;
        p.n_head = 2, p.n_head_kv = 1, p.head_dim = 64, p.page_size = 64, p.scale = 0.125f;
        const std::vector<int32_t> qpos = {cache.pos.back()};
        std::vector<float> q(128, 0.5f), out(128), lse(2), sums(4096, -5.0f);
        for (int nth : {1, 2}) {
            std::vector<uint8_t> done(1, 9);
            AttnColSums cs{sums.data(), 4096, 0, done.data()};
            attention(pool_of(nth), p, q.data(), qpos.data(), 1, cache.heads.data(), out.data(), lse.data(), &cs);
            if (nth == 1) {  // one range: taken; every slot sees the same query, all positive
                ASSERT_EQ(done[0], 1);
                double total = 0.0;
                for (float v : sums) total += v;
                EXPECT_NEAR(total, 2.0, 1e-5);
                std::fill(sums.begin(), sums.end(), -5.0f);
            } else {  // split over the two threads' units: left to the separate pass
                ASSERT_EQ(done[0], 0);
                for (float v : sums) ASSERT_EQ(v, -5.0f);
            }
        }
    }
}

}  // namespace
}  // namespace hkv
