// The selections HeteroCache's drift monitor runs per check and layer (issue 22): top_k_indices of
// base slots among a pivot's n prompt slots, and pool1d (avg, kernel 5) over each query row.
// (A radix selection over the scores' uint32 images and a bit-mask output pass were tried against
// std::nth_element here and lost at n = 4K-64K. The sampled threshold that filters the slots before
// the selection won: 242 -> 52 us at 32768/2184, 448 -> 152 at 65536/4369, 14.4 -> 6.2 at 4096/512.)
// Scores: pooled softmax-like probabilities (exp of Gaussian logits, normalised).
// Args: n slots, k.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "policy/select.h"

namespace hkv {
namespace {

std::vector<float> probs(int32_t n) {
    std::mt19937 rng(3);
    std::normal_distribution<float> g(0.0f, 2.0f);
    std::vector<float> p(static_cast<size_t>(n)), out(static_cast<size_t>(n));
    double z = 0.0;
    for (float& x : p) z += (x = std::exp(g(rng)));
    for (float& x : p) x = float(double(x) / z);
    pool1d(p.data(), n, 5, PoolKind::kAvg, out.data());
    return out;
}

void BM_TopK(benchmark::State& state) {
    const int32_t n = int32_t(state.range(0)), k = int32_t(state.range(1));
    const std::vector<float> s = probs(n);
    std::vector<int32_t> got(static_cast<size_t>(k));
    for (auto _ : state) {
        top_k_indices(s.data(), n, k, got.data());
        benchmark::DoNotOptimize(got.data());
    }
}

void BM_Pool1dAvg(benchmark::State& state) {
    const int32_t n = int32_t(state.range(0));
    const std::vector<float> s = probs(n);
    std::vector<float> out(static_cast<size_t>(n));
    for (auto _ : state) {
        pool1d(s.data(), n, 5, PoolKind::kAvg, out.data());
        benchmark::DoNotOptimize(out.data());
    }
}

}  // namespace

BENCHMARK(BM_TopK)->Args({32768, 2184})->Args({65536, 4369})->Args({4096, 512})->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Pool1dAvg)->Arg(32768)->Unit(benchmark::kMicrosecond);

}  // namespace hkv
