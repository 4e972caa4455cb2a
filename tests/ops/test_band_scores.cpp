// backend/cpu/scores.h attn_band_recent (DynSplit-KV's DD-Select statistics) against a plain
// double-precision reference: full-row and band-only normalisation, query stride, GQA groups,
// gapped positions (as left by eviction), several page sizes and thread counts.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "backend/cpu/scores.h"
#include "core/fp16.h"
#include "core/thread_pool.h"

namespace hkv {
namespace {

struct Case {
    int32_t n_slot, n_tok, band, stride, group, page_size;
    bool full_norm;
};

TEST(BandScores, MatchesTheReference) {
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    ThreadPool pool(2);
    const int32_t nh_kv = 2, hd = 16;
    for (const Case c : {Case{40, 8, 16, 1, 1, 16, true}, Case{97, 17, 32, 4, 3, 16, true},
                         Case{97, 17, 32, 4, 3, 64, false}, Case{300, 64, 8, 2, 2, 32, true},
                         Case{5, 5, 64, 1, 4, 16, false}}) {
        SCOPED_TRACE(testing::Message() << "n_slot=" << c.n_slot << " band=" << c.band << " stride=" << c.stride
                                        << " full_norm=" << c.full_norm);
        // positions with gaps; the chunk's queries are the last n_tok slots' positions
        std::vector<int32_t> pos(size_t(c.n_slot));
        for (int32_t s = 0, p = 0; s < c.n_slot; ++s, p += 1 + int32_t(rng() % 2)) pos[size_t(s)] = p;
        std::vector<int32_t> qpos(pos.end() - c.n_tok, pos.end());
        // f32 paged keys: [n_head_kv][n_pages][page_size, hd]
        const int32_t n_pages = (c.n_slot + c.page_size - 1) / c.page_size;
        std::vector<std::vector<float>> keys(static_cast<size_t>(nh_kv), std::vector<float>(size_t(n_pages * c.page_size * hd)));
        std::vector<std::vector<const void*>> tables(static_cast<size_t>(nh_kv));
        std::vector<AttnKvHead> heads;
        for (int32_t ih = 0; ih < nh_kv; ++ih) {
            for (float& x : keys[size_t(ih)]) x = nd(rng);
            for (int32_t pg = 0; pg < n_pages; ++pg) tables[size_t(ih)].push_back(keys[size_t(ih)].data() + pg * c.page_size * hd);
            heads.push_back({tables[size_t(ih)].data(), tables[size_t(ih)].data(), PosLane(pos.data(), pos.size()), c.n_slot, DType::kF32,
                             DType::kF32});
        }
        const int32_t n_head = nh_kv * c.group;
        std::vector<float> q(size_t(c.n_tok) * size_t(n_head) * size_t(hd));
        for (float& x : q) x = 2.0f * nd(rng);
        AttnParams ap;
        ap.n_head = n_head;
        ap.n_head_kv = nh_kv;
        ap.head_dim = hd;
        ap.page_size = c.page_size;
        ap.scale = 1.0f / std::sqrt(float(hd));
        std::vector<float> rec(size_t(nh_kv) * size_t(c.n_slot), 0.0f), cnt(rec.size(), 0.0f);
        attn_band_recent(pool, ap, q.data(), qpos.data(), c.n_tok, 0, c.stride, c.band, c.full_norm, heads.data(),
                         rec.data(), cnt.data(), c.n_slot);
        // the same from the attention kernel's row log-sum-exp (the whole row's normaliser; only the
        // band's dots): must match the same reference (ignored when normalising over the band)
        std::vector<float> out(q.size()), lse(size_t(c.n_tok) * size_t(n_head));
        attention(pool, ap, q.data(), qpos.data(), c.n_tok, heads.data(), out.data(), lse.data());
        std::vector<float> rec_l(rec.size(), 0.0f), cnt_l(rec.size(), 0.0f);
        attn_band_recent(pool, ap, q.data(), qpos.data(), c.n_tok, 0, c.stride, c.band, c.full_norm, heads.data(),
                         rec_l.data(), cnt_l.data(), c.n_slot, lse.data());
        // reference
        std::vector<double> rrec(rec.size(), 0.0), rcnt(rec.size(), 0.0);
        for (int32_t ih = 0; ih < nh_kv; ++ih) {
            for (int32_t t = c.n_tok - 1; t >= 0; t -= c.stride) {
                for (int32_t g = 0; g < c.group; ++g) {
                    const float* qr = q.data() + (size_t(t) * n_head + size_t(ih * c.group + g)) * hd;
                    std::vector<double> a(size_t(c.n_slot), 0.0);
                    double z = 0.0;
                    for (int32_t s = 0; s < c.n_slot; ++s) {
                        const bool vis = pos[size_t(s)] <= qpos[size_t(t)];
                        const bool in_band = vis && pos[size_t(s)] >= qpos[size_t(t)] - c.band;
                        if (!(c.full_norm ? vis : in_band)) continue;
                        double d = 0.0;
                        for (int32_t k = 0; k < hd; ++k) d += double(qr[k]) * keys[size_t(ih)][size_t(s) * hd + size_t(k)];
                        a[size_t(s)] = std::exp(d * ap.scale);
                        z += a[size_t(s)];
                    }
                    for (int32_t s = 0; s < c.n_slot; ++s) {
                        const int32_t p = pos[size_t(s)];
                        if (p >= qpos[size_t(t)] || p < qpos[size_t(t)] - c.band) continue;
                        double r = 0.0;
                        for (int32_t s2 = s; s2 < c.n_slot; ++s2) r += a[size_t(s2)];
                        rrec[size_t(ih) * c.n_slot + size_t(s)] += r / z;
                        rcnt[size_t(ih) * c.n_slot + size_t(s)] += 1.0;
                    }
                }
            }
        }
        for (size_t i = 0; i < rec.size(); ++i) {
            ASSERT_EQ(double(cnt[i]), rcnt[i]) << "slot " << i;
            ASSERT_NEAR(rec[i], rrec[i], 1e-5 * (1.0 + rrec[i])) << "slot " << i;
            ASSERT_EQ(double(cnt_l[i]), rcnt[i]) << "slot " << i << " (lse)";
            ASSERT_NEAR(rec_l[i], rrec[i], 1e-5 * (1.0 + rrec[i])) << "slot " << i << " (lse)";
        }
    }
}

// qk_dots (HeteroCache's monitor and prefill scoring) against double dot products of the stored
// (rounded) keys: f16 / bf16 / f32 rows, head_dim 64 (the AVX-512 tile path for f16) and 24 (the
// row-by-row path), row counts that are and are not multiples of 4, slot counts across tile and
// page boundaries.
TEST(QkDots, MatchesTheReference) {
    std::mt19937 rng(11);
    ThreadPool pool(2);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (DType t : {DType::kF16, DType::kBF16, DType::kF32}) {
        for (int32_t hd : {64, 24}) {
            for (int32_t n_row : {1, 4, 7, 20}) {
                for (int32_t n : {1, 63, 130, 2100}) {
                    SCOPED_TRACE(testing::Message() << "type=" << uint32_t(t) << " hd=" << hd << " rows=" << n_row
                                                    << " n=" << n);
                    const int32_t page = 32, n_pages = (n + page - 1) / page;
                    const size_t elt = t == DType::kF32 ? 4 : 2;
                    std::vector<uint8_t> store(size_t(n_pages) * page * size_t(hd) * elt);
                    std::vector<double> kref(size_t(n) * size_t(hd));
                    for (int32_t s = 0; s < n; ++s) {
                        for (int32_t d = 0; d < hd; ++d) {
                            const float x = nd(rng);
                            uint8_t* at = store.data() + (size_t(s) * size_t(hd) + size_t(d)) * elt;
                            double back = x;
                            if (t == DType::kF32) {
                                std::memcpy(at, &x, 4);
                            } else {
                                const uint16_t h = t == DType::kF16 ? fp32_to_fp16(x) : fp32_to_bf16(x);
                                std::memcpy(at, &h, 2);
                                back = t == DType::kF16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
                            }
                            kref[size_t(s) * size_t(hd) + size_t(d)] = back;
                        }
                    }
                    std::vector<const void*> pages;
                    for (int32_t pg = 0; pg < n_pages; ++pg) pages.push_back(store.data() + size_t(pg) * page * size_t(hd) * elt);
                    std::vector<float> q(size_t(n_row) * size_t(hd));
                    for (float& x : q) x = nd(rng);
                    const int64_t stride = n + 3;
                    std::vector<float> out(size_t(n_row) * size_t(stride), -7.0f);
                    qk_dots(t, pages.data(), page, hd, q.data(), n_row, n, out.data(), stride);
                    for (int32_t r = 0; r < n_row; ++r) {
                        for (int32_t s = 0; s < n; ++s) {
                            double ref = 0.0;
                            for (int32_t d = 0; d < hd; ++d) ref += double(q[size_t(r) * hd + d]) * kref[size_t(s) * hd + d];
                            ASSERT_NEAR(out[size_t(r) * stride + s], ref, 1e-4 * (1.0 + std::fabs(ref))) << r << "," << s;
                        }
                        for (int64_t s = n; s < stride; ++s) ASSERT_EQ(out[size_t(r) * stride + size_t(s)], -7.0f);
                    }
                    std::vector<float> par(out.size(), -7.0f);  // the pool's split gives the same numbers
                    qk_dots(pool, t, pages.data(), page, hd, q.data(), n_row, n, par.data(), stride);
                    ASSERT_EQ(par, out);
                }
            }
        }
    }
}

}  // namespace
}  // namespace hkv
