// Microbenchmarks of backend/cpu/quant.h and matmul.h: vec_dot per weight type (one 4096-element row,
// L1-resident: kernel throughput) and matmul at 4096 x 4096 for m = 1 (decode matvec: weight
// streaming, bytes/s = weight bytes read per second) and m = 64 (prefill tile reuse; bytes/s is
// weight bytes per second, GFLOPS as a counter); bm_decode_fused: separate vs fused decode matvecs.
// Threads: all hardware threads.
#include <benchmark/benchmark.h>

#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "backend/cpu/matmul.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/quant.h"
#include "backend/cpu/repack.h"

namespace hkv {
namespace {

const DType kTypes[] = {DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ4_0, DType::kQ4_1,
                        DType::kQ5_0, DType::kQ5_1, DType::kQ8_0, DType::kQ2_K, DType::kQ3_K,
                        DType::kQ4_K, DType::kQ5_K, DType::kQ6_K, DType::kIQ4_NL, DType::kIQ4_XS};

std::vector<float> randn(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd;
    std::vector<float> v(n);
    for (float& f : v) f = nd(rng);
    return v;
}

// [n_out, n_in] weights of type t: 64 distinct quantized rows tiled (quantizing 16M elements with the
// K-quant search would dominate start-up; memory traffic is the same).
const std::vector<uint8_t>& weights(DType t, int64_t n_in, int64_t n_out) {
    static std::map<std::pair<int, int64_t>, std::vector<uint8_t>> cache;
    auto& w = cache[{int(t), n_in * 100000 + n_out}];
    if (!w.empty()) return w;
    const size_t rb = dtype_row_size(t, n_in);
    const int64_t n_distinct = std::min<int64_t>(64, n_out);
    const std::vector<float> f = randn(size_t(n_in * n_distinct), 1);
    w.resize(rb * size_t(n_out));
    for (int64_t r = 0; r < n_distinct; ++r) quantize_row_ref(t, f.data() + r * n_in, w.data() + size_t(r) * rb, n_in);
    for (int64_t r = n_distinct; r < n_out; ++r) std::memcpy(w.data() + size_t(r) * rb, w.data() + size_t(r % n_distinct) * rb, rb);
    return w;
}

void bm_vec_dot(benchmark::State& state) {
    const DType t = kTypes[state.range(0)];
    const int64_t n = 4096;
    const std::vector<uint8_t>& w = weights(t, n, 1);
    const DType vt = vec_dot_type(t);
    const std::vector<float> x = randn(size_t(n), 2);
    std::vector<uint8_t> xq(dtype_row_size(vt, n));
    const QuantKernels& k = quant_kernels();
    k.quantize_row(vt, x.data(), xq.data(), n);
    for (auto _ : state) benchmark::DoNotOptimize(k.vec_dot(t, n, w.data(), xq.data()));
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(w.size()));
    state.SetLabel(std::string(dtype_name(t)) + " " + isa_name(k.isa));
}

// weights() repacked into the x16 layout (repack.h), or empty when the type has none
const std::vector<uint8_t>& weights_x16(DType t, int64_t n_in, int64_t n_out) {
    static std::map<std::pair<int, int64_t>, std::vector<uint8_t>> cache;
    auto& w = cache[{int(t), n_in * 100000 + n_out}];
    if (!w.empty() || !x16_supported(t) || !x16_kernels()) return w;
    const std::vector<uint8_t>& rows = weights(t, n_in, n_out);
    const size_t gb = dtype_row_size(t, n_in) * kX16Rows;
    w.resize(rows.size());
    for (int64_t g = 0; g < n_out / kX16Rows; ++g)
        x16_pack_group(t, n_in, rows.data() + size_t(g) * gb, gb / kX16Rows, w.data() + size_t(g) * gb);
    return w;
}

// range(2) = 1: the x16 layout (q4_K, q6_K, q8_0 only; others skip)
void bm_matmul(benchmark::State& state) {
    const DType t = kTypes[state.range(0)];
    const int64_t m = state.range(1), n_in = 4096, n_out = 4096;
    const bool x16 = state.range(2) != 0;
    const std::vector<uint8_t>& wq = x16 ? weights_x16(t, n_in, n_out) : weights(t, n_in, n_out);
    if (wq.empty()) {
        state.SkipWithError("no x16 layout for this type");
        return;
    }
    const WeightView w{wq.data(), t, n_in, n_out, x16 ? WeightLayout::kX16 : WeightLayout::kRows};
    const std::vector<float> x = randn(size_t(m * n_in), 3);
    std::vector<float> y(size_t(m * n_out));
    std::vector<uint8_t> scratch;
    static ThreadPool pool(0);
    matmul(pool, w, x.data(), m, y.data(), scratch);  // warm scratch
    for (auto _ : state) {
        matmul(pool, w, x.data(), m, y.data(), scratch);
        benchmark::DoNotOptimize(y.data());
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(wq.size()));
    state.counters["GFLOPS"] = benchmark::Counter(double(state.iterations()) * 2.0 * double(m * n_in * n_out) * 1e-9,
                                                  benchmark::Counter::kIsRate);
    state.SetLabel(std::string(dtype_name(t)) + (x16 ? " x16" : "") + " threads=" + std::to_string(pool.n_threads()));
}

// The prefill kernels alone, one thread, weights and activations cache-resident (a 64-row tile of a
// 2048-wide matrix, m activation rows): CPU time per call is the kernel's compute rate, which a
// loaded machine does not distort much. range(1) = 1: x16 kernel (x16_kernels()->gemm), 0: the
// GGUF-row kernel (quant_kernels().gemm).
void bm_gemm_kernel(benchmark::State& state) {
    const DType t = kTypes[state.range(0)];
    const bool x16 = state.range(1) != 0;
    const int64_t n_in = 2048, n_out = 64, m = state.range(2);
    const std::vector<uint8_t>& w = x16 ? weights_x16(t, n_in, n_out) : weights(t, n_in, n_out);
    if (w.empty()) {
        state.SkipWithError("no x16 layout for this type");
        return;
    }
    const DType vt = vec_dot_type(t);
    const size_t xs = dtype_row_size(vt, n_in);
    const std::vector<float> x = randn(size_t(m * n_in), 5);
    std::vector<uint8_t> xq(xs * size_t(m));
    for (int64_t i = 0; i < m; ++i) quantize_row_ref(vt, x.data() + i * n_in, xq.data() + size_t(i) * xs, n_in);
    std::vector<float> y(size_t(m * n_out));
    for (auto _ : state) {
        if (x16) x16_kernels()->gemm(t, n_in, w.data(), n_out / kX16Rows, xq.data(), xs, m, y.data(), size_t(n_out));
        else quant_kernels().gemm(t, n_in, w.data(), dtype_row_size(t, n_in), n_out, xq.data(), xs, m, y.data(), size_t(n_out));
        benchmark::DoNotOptimize(y.data());
    }
    state.counters["GMAC/s"] = benchmark::Counter(double(state.iterations()) * double(m * n_in * n_out) * 1e-9,
                                                  benchmark::Counter::kIsRate);
    state.SetLabel(std::string(dtype_name(t)) + (x16 ? " x16" : " rows"));
}

// One decode layer's Q/K/V and gate/up matvecs at llama-3.2-1b shapes (q4_K, n_embd 2048, KV 512,
// n_ff 8192): fused = 0 runs them as separate matmul() calls (+ swiglu), fused = 1 as matvec_multi
// and matvec_swiglu (one pool run each). The difference is the fork-join cost of 3 pool runs.
void bm_decode_fused(benchmark::State& state) {
    const bool fused = state.range(0) != 0;
    const DType t = DType::kQ4_K;
    const int64_t d = 2048, d_kv = 512, n_ff = 8192;
    const std::vector<uint8_t>& wq_q = weights(t, d, d);
    const std::vector<uint8_t>& wq_kv = weights(t, d, d_kv);  // K and V share their (synthetic) rows
    const std::vector<uint8_t>& wq_ff = weights(t, d, n_ff);   // gate and up likewise
    const WeightView wq{wq_q.data(), t, d, d}, wk{wq_kv.data(), t, d, d_kv}, wv = wk;
    const WeightView wg{wq_ff.data(), t, d, n_ff}, wu = wg;
    const std::vector<float> x = randn(size_t(d), 4);
    std::vector<float> q(static_cast<size_t>(d)), k(static_cast<size_t>(d_kv)), v(k), g(static_cast<size_t>(n_ff)), u(g);
    std::vector<uint8_t> scratch;
    static ThreadPool pool(0);
    for (auto _ : state) {
        if (fused) {
            const MatvecOut qkv[3] = {{&wq, q.data()}, {&wk, k.data()}, {&wv, v.data()}};
            matvec_multi(pool, qkv, 3, x.data(), scratch);
            matvec_swiglu(pool, wg, wu, x.data(), g.data(), scratch);
        } else {
            matmul(pool, wq, x.data(), 1, q.data(), scratch);
            matmul(pool, wk, x.data(), 1, k.data(), scratch);
            matmul(pool, wv, x.data(), 1, v.data(), scratch);
            matmul(pool, wg, x.data(), 1, g.data(), scratch);
            matmul(pool, wu, x.data(), 1, u.data(), scratch);
            swiglu(g.data(), u.data(), n_ff);
        }
        benchmark::DoNotOptimize(g.data());
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(wq_q.size() + 2 * wq_kv.size() + 2 * wq_ff.size()));
    state.SetLabel(std::string(fused ? "fused" : "separate") + " threads=" + std::to_string(pool.n_threads()));
}

void type_args(benchmark::internal::Benchmark* b) {
    for (int i = 0; i < int(sizeof(kTypes) / sizeof(kTypes[0])); ++i) b->Arg(i);
}
void matmul_args(benchmark::internal::Benchmark* b) {
    for (int64_t m : {1, 64})
        for (int i = 0; i < int(sizeof(kTypes) / sizeof(kTypes[0])); ++i) {
            b->Args({i, m, 0});
            if (x16_supported(kTypes[i])) b->Args({i, m, 1});
        }
}

BENCHMARK(bm_vec_dot)->Apply(type_args);
BENCHMARK(bm_matmul)->Apply(matmul_args)->ArgNames({"type", "m", "x16"})->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(bm_gemm_kernel)->ArgNames({"type", "x16", "m"})->Apply([](benchmark::internal::Benchmark* b) {
    for (int i = 0; i < int(sizeof(kTypes) / sizeof(kTypes[0])); ++i)
        if (x16_supported(kTypes[i]))
            for (int64_t m : {1, 64}) b->Args({i, 0, m})->Args({i, 1, m});
});
BENCHMARK(bm_decode_fused)->Arg(0)->Arg(1)->ArgName("fused")->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace hkv
