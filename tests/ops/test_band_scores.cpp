// backend/cpu/scores.h attn_band_recent (DynSplit-KV's DD-Select statistics) against a plain
// double-precision reference: full-row and band-only normalisation, query stride, GQA groups,
// gapped positions (as left by eviction), several page sizes and thread counts.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "backend/cpu/scores.h"
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
            heads.push_back({tables[size_t(ih)].data(), tables[size_t(ih)].data(), pos.data(), c.n_slot});
        }
        const int32_t n_head = nh_kv * c.group;
        std::vector<float> q(size_t(c.n_tok) * size_t(n_head) * size_t(hd));
        for (float& x : q) x = 2.0f * nd(rng);
        AttnParams ap;
        ap.n_head = n_head;
        ap.n_head_kv = nh_kv;
        ap.head_dim = hd;
        ap.page_size = c.page_size;
        ap.kv_type = DType::kF32;
        ap.scale = 1.0f / std::sqrt(float(hd));
        std::vector<float> rec(size_t(nh_kv) * size_t(c.n_slot), 0.0f), cnt(rec.size(), 0.0f);
        attn_band_recent(pool, ap, q.data(), qpos.data(), c.n_tok, 0, c.stride, c.band, c.full_norm, heads.data(),
                         rec.data(), cnt.data(), c.n_slot);
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
        }
    }
}

}  // namespace
}  // namespace hkv
