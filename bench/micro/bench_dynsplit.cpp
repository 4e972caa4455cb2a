// DynSplit-KV block selection overhead (issue 7): the per-compression work of mode=evict after the
// split — block scores from token scores, budgeted whole-block selection, gather of the kept slot
// indices — with the uniform page mapping (policy/blocks.h: map onto P-slot pages, padded [n_pages,
// P] tile, fixed-shape page reductions, segmented combine, page-wise gather; what the policy runs)
// against a ragged implementation (a loop over each block's variable-length slot range). Both give
// the same kept slots (checked before timing; the benchmark fails otherwise).
// Args: slots n, mean block length (blocks are 4 .. 2*mean-4 slots, random), page P; budget n/8.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "policy/blocks.h"

namespace hkv {
namespace {

struct Problem {
    std::vector<float> token;      // [n] token scores
    std::vector<int32_t> bounds;   // [M + 1]
    int32_t room = 0;
    Problem(int32_t n, int32_t mean_len) {
        std::mt19937 rng(9);
        std::uniform_real_distribution<float> u(0.0f, 1.0f);
        token.resize(size_t(n));
        for (float& t : token) t = u(rng) * u(rng);
        bounds = {0};
        while (bounds.back() < n) bounds.push_back(std::min(n, bounds.back() + 4 + int32_t(rng() % uint32_t(2 * mean_len - 7))));
        room = n / 8;
    }
};

// The policy's path: page mapping.
void select_paged(const Problem& pr, int32_t page, BlockPages& bp, PagedScratch& sc, std::vector<float>& score,
                  std::vector<int32_t>& order, std::vector<uint8_t>& taken, std::vector<int32_t>& keep) {
    block_pages_build(pr.bounds, page, bp);
    block_scores_paged(bp, pr.token.data(), BlockScoreKind::kMean, sc, score);
    blocks_select(score, bp.bounds, pr.room, order, taken);
    keep.clear();
    for (int32_t p = 0; p < bp.n_pages(); ++p) {
        if (!taken[size_t(bp.page_block[size_t(p)])]) continue;
        for (int32_t i = 0; i < bp.page_valid[size_t(p)]; ++i) keep.push_back(bp.page_start[size_t(p)] + i);
    }
}

// Ragged blocks: loops over each block's own range.
void select_ragged(const Problem& pr, std::vector<float>& score, std::vector<int32_t>& order,
                   std::vector<uint8_t>& taken, std::vector<int32_t>& keep) {
    block_scores_ragged(pr.bounds, pr.token.data(), BlockScoreKind::kMean, score);
    blocks_select(score, pr.bounds, pr.room, order, taken);
    keep.clear();
    for (size_t j = 0; j + 1 < pr.bounds.size(); ++j) {
        if (!taken[j]) continue;
        for (int32_t i = pr.bounds[j]; i < pr.bounds[j + 1]; ++i) keep.push_back(i);
    }
}

void BM_DynSplitSelectPaged(benchmark::State& state) {
    const Problem pr(int32_t(state.range(0)), int32_t(state.range(1)));
    const int32_t page = int32_t(state.range(2));
    BlockPages bp;
    PagedScratch sc;
    std::vector<float> score, score_r;
    std::vector<int32_t> order, keep, keep_r;
    std::vector<uint8_t> taken;
    select_paged(pr, page, bp, sc, score, order, taken, keep);
    select_ragged(pr, score_r, order, taken, keep_r);
    if (keep != keep_r) {
        state.SkipWithError("paged and ragged selections differ");
        return;
    }
    for (auto _ : state) {
        select_paged(pr, page, bp, sc, score, order, taken, keep);
        benchmark::DoNotOptimize(keep.data());
    }
    state.counters["blocks"] = double(pr.bounds.size() - 1);
    state.counters["kept"] = double(keep.size());
}

void BM_DynSplitSelectRagged(benchmark::State& state) {
    const Problem pr(int32_t(state.range(0)), int32_t(state.range(1)));
    std::vector<float> score;
    std::vector<int32_t> order, keep;
    std::vector<uint8_t> taken;
    for (auto _ : state) {
        select_ragged(pr, score, order, taken, keep);
        benchmark::DoNotOptimize(keep.data());
    }
    state.counters["blocks"] = double(pr.bounds.size() - 1);
    state.counters["kept"] = double(keep.size());
}

BENCHMARK(BM_DynSplitSelectPaged)->Args({32768, 16, 16})->Args({32768, 32, 16})->Args({32768, 16, 8})->Args({4096, 16, 16});
BENCHMARK(BM_DynSplitSelectRagged)->Args({32768, 16, 0})->Args({32768, 32, 0})->Args({4096, 16, 0});

}  // namespace
}  // namespace hkv
