// Microbenchmarks of EMS's costs (docs/accuracy.md, EMS section):
//  - BM_EmsMerge: the evict-then-merge step of one layer at prefill (similarity to the centres,
//    thresholds, classes, scatter, merged rows), zero-class batched pass vs the per-head loop, at
//    the shapes of retrieval-1.4M (2 KV heads x 32) and SmolLM2-135M (3 KV heads x 64);
//  - BM_PrefillScores: prefill attention plus the global column sums EMS needs, either
//    attn_scores' own two passes (plain) or the attention kernel's row log-sum-exp + attn_colsums'
//    single pass (lse).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/cpu/scores.h"
#include "policy/ems_merge.h"

namespace hkv {
namespace {

// A layer as EMS's prefill sees it: per head, 4 sinks and a 32-token window fixed, n_center
// retained centres chosen at random among the candidates, the rest to be merged or dropped.
EmsBatch ems_layer(int32_t H, int32_t S, int32_t D, int32_t n_center) {
    std::mt19937 rng(3);
    std::normal_distribution<float> g;
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    EmsBatch b;
    b.resize(H, S, D, n_center);
    for (int32_t h = 0; h < H; ++h) {
        std::vector<int32_t> cand(size_t(S - 36));
        std::iota(cand.begin(), cand.end(), 4);
        std::shuffle(cand.begin(), cand.end(), rng);
        for (int32_t s = 0; s < S; ++s) {
            const size_t hs = size_t(h) * size_t(S) + size_t(s);
            float nn = 0.0f;
            for (int32_t d = 0; d < D; ++d) {
                const float x = g(rng);
                b.khat[hs * size_t(D) + size_t(d)] = x, b.v[hs * size_t(D) + size_t(d)] = g(rng), nn += x * x;
            }
            for (int32_t d = 0; d < D; ++d) b.khat[hs * size_t(D) + size_t(d)] /= std::sqrt(nn);
            b.knorm[hs] = std::sqrt(nn), b.w[hs] = u(rng), b.lane[hs] = u(rng);
            b.role[hs] = s >= 4 && s < S - 32 ? kEmsTbm : kEmsFixed;
        }
        for (int32_t c = 0; c < n_center; ++c) {
            b.role[size_t(h) * size_t(S) + size_t(cand[size_t(c)])] = c + 1;
            b.center_slot[size_t(h) * size_t(n_center + 1) + size_t(c) + 1] = cand[size_t(c)];
        }
    }
    return b;
}

// Args: n_head_kv, n_slot (prompt), head_dim, budget (centres = budget - 36), per_head (0/1).
void BM_EmsMerge(benchmark::State& st) {
    const int32_t H = int32_t(st.range(0)), S = int32_t(st.range(1)), D = int32_t(st.range(2));
    const int32_t C = int32_t(st.range(3)) - 36;
    const bool per_head = st.range(4) != 0;
    EmsBatch b = ems_layer(H, S, D, C);
    for (auto _ : st) {
        if (per_head) ems_merge_per_head(b);
        else ems_merge_batched(b);
        benchmark::DoNotOptimize(b.out_k.data());
    }
    st.SetLabel(per_head ? "per-head loop" : "zero-class batched");
}
BENCHMARK(BM_EmsMerge)
    ->ArgNames({"hkv", "n", "d", "budget", "per_head"})
    ->Args({2, 2048, 32, 256, 0})->Args({2, 2048, 32, 256, 1})
    ->Args({2, 2048, 32, 1024, 0})->Args({2, 2048, 32, 1024, 1})
    ->Args({3, 4096, 64, 256, 0})->Args({3, 4096, 64, 256, 1})
    ->Unit(benchmark::kMillisecond);

// Args: n_tok (a whole prompt, one chunk), n_head_kv, group, head_dim, lse (0 = attn_scores' two
// passes, 1 = attention's lse + attn_colsums), scores_only (1 = time the score pass alone). One
// thread.
void BM_PrefillScores(benchmark::State& st) {
    const int32_t n = int32_t(st.range(0)), hkv = int32_t(st.range(1)), group = int32_t(st.range(2));
    const int32_t D = int32_t(st.range(3));
    const bool lse = st.range(4) != 0;
    const int32_t ps = 64, n_pages = (n + ps - 1) / ps;
    const size_t row_bytes = dtype_row_size(DType::kF16, D);
    std::mt19937 rng(4);
    std::normal_distribution<float> g;
    std::vector<float> row(static_cast<size_t>(D));
    std::vector<std::unique_ptr<uint8_t[]>> storage;
    std::vector<std::vector<const void*>> pages(size_t(2 * hkv));  // [K heads..., V heads...]
    for (auto& table : pages) {
        for (int32_t pg = 0; pg < n_pages; ++pg) {
            storage.emplace_back(new uint8_t[row_bytes * size_t(ps)]);
            for (int32_t r = 0; r < ps; ++r) {
                for (float& x : row) x = g(rng);
                kv_convert_row(DType::kF16, row.data(), storage.back().get() + size_t(r) * row_bytes, D);
            }
            table.push_back(storage.back().get());
        }
    }
    std::vector<int32_t> pos(static_cast<size_t>(n));
    std::iota(pos.begin(), pos.end(), 0);
    std::vector<AttnKvHead> heads;
    for (int32_t ih = 0; ih < hkv; ++ih) heads.push_back({pages[size_t(ih)].data(), pages[size_t(hkv + ih)].data(), PosLane(pos.data(), pos.size()), n, DType::kF16, DType::kF16});
    AttnParams p;
    p.n_head = hkv * group, p.n_head_kv = hkv, p.head_dim = D, p.page_size = ps;
    p.scale = 1.0f / std::sqrt(float(D));
    std::vector<float> q(size_t(n) * size_t(p.n_head) * size_t(D));
    for (float& x : q) x = g(rng);
    std::vector<float> out(q.size()), lse_buf(size_t(n) * size_t(p.n_head)), cols(size_t(hkv) * size_t(n));
    ThreadPool pool(1);
    const bool scores_only = st.range(5) != 0;  // the score pass alone (lse precomputed)
    if (scores_only) attention(pool, p, q.data(), pos.data(), n, heads.data(), out.data(), lse_buf.data());
    for (auto _ : st) {
        if (scores_only && lse) {
            std::fill(cols.begin(), cols.end(), 0.0f);
            attn_colsums(pool, p, q.data(), pos.data(), n, 0, lse_buf.data(), heads.data(), cols.data(), n);
        } else if (scores_only) {
            attn_scores(pool, p, q.data(), pos.data(), n, 0, heads.data(), cols.data(), n, false);
        } else if (lse) {
            attention(pool, p, q.data(), pos.data(), n, heads.data(), out.data(), lse_buf.data());
            std::fill(cols.begin(), cols.end(), 0.0f);
            attn_colsums(pool, p, q.data(), pos.data(), n, 0, lse_buf.data(), heads.data(), cols.data(), n);
        } else {
            attention(pool, p, q.data(), pos.data(), n, heads.data(), out.data());
            attn_scores(pool, p, q.data(), pos.data(), n, 0, heads.data(), cols.data(), n, false);
        }
        benchmark::DoNotOptimize(cols.data());
    }
    st.SetLabel(scores_only ? (lse ? "attn_colsums only" : "attn_scores only")
                            : (lse ? "attention+lse, attn_colsums" : "attention, attn_scores"));
}
BENCHMARK(BM_PrefillScores)
    ->ArgNames({"n", "hkv", "group", "d", "lse", "scores_only"})
    ->Args({1024, 2, 2, 32, 0, 0})->Args({1024, 2, 2, 32, 1, 0})
    ->Args({2048, 2, 2, 32, 0, 0})->Args({2048, 2, 2, 32, 1, 0})
    ->Args({2048, 2, 2, 32, 0, 1})->Args({2048, 2, 2, 32, 1, 1})
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace hkv
