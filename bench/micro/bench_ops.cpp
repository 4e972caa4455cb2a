// Microbenchmarks of backend/cpu/ops.h: paged attention (decode at long context, prefill), rmsnorm,
// rope, swiglu. Decode attention reports the KV bytes read per second (K and V of every slot of
// every KV head, read once per GQA group).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/ops.h"

namespace hkv {
namespace {

// n_head_kv heads of n_slot slots in pages of page_size, positions 0..n_slot-1.
struct BenchKv {
    std::vector<std::unique_ptr<uint8_t[]>> storage;
    std::vector<std::vector<const void*>> k_ptrs, v_ptrs;  // [n_head_kv][n_pages]
    std::vector<int32_t> pos;                               // [n_slot]
    std::vector<uint16_t> pos16;                            // [n_slot] with a 16-bit position lane
    std::vector<AttnKvHead> heads;                          // [n_head_kv]

    BenchKv(DType t, int32_t n_head_kv, int32_t page_size, int32_t head_dim, int32_t n_slot, bool narrow = false) {
        std::mt19937 rng(1);
        std::normal_distribution<float> dist;
        const size_t row_bytes = dtype_row_size(t, head_dim);
        const int32_t n_pages = (n_slot + page_size - 1) / page_size;
        std::vector<float> row(static_cast<size_t>(head_dim));  // [head_dim]
        k_ptrs.resize(size_t(n_head_kv)), v_ptrs.resize(size_t(n_head_kv));
        for (int32_t ih = 0; ih < n_head_kv; ++ih) {
            for (int kv = 0; kv < 2; ++kv) {
                for (int32_t pg = 0; pg < n_pages; ++pg) {
                    storage.emplace_back(new uint8_t[row_bytes * size_t(page_size)]);
                    for (int32_t r = 0; r < page_size; ++r) {
                        for (float& x : row) x = dist(rng);
                        kv_convert_row(t, row.data(), storage.back().get() + r * row_bytes, head_dim);
                    }
                    (kv == 0 ? k_ptrs : v_ptrs)[size_t(ih)].push_back(storage.back().get());
                }
            }
        }
        for (int32_t s = 0; s < n_slot; ++s) pos.push_back(s), pos16.push_back(uint16_t(s));
        const PosLane lane = narrow ? PosLane(pos16.data(), pos16.size()) : PosLane(pos.data(), pos.size());
        for (int32_t ih = 0; ih < n_head_kv; ++ih)
            heads.push_back({k_ptrs[size_t(ih)].data(), v_ptrs[size_t(ih)].data(), lane, n_slot, t, t});
    }
};

ThreadPool& bench_pool(int n) {
    static ThreadPool p1(1), p2(2);
    return n == 1 ? p1 : p2;
}

std::vector<float> bench_randn(size_t n) {
    std::mt19937 rng(2);
    std::normal_distribution<float> dist;
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

// One query token against kv's heads (8 KV heads, 32 query heads, page 256) at position = the longest
// head's length; bytes processed = K and V of every slot the heads hold.
void run_decode(benchmark::State& state, const BenchKv& kv, DType t, int32_t head_dim, int n_threads) {
    AttnParams p;
    p.n_head = 32, p.n_head_kv = int32_t(kv.heads.size()), p.head_dim = head_dim, p.page_size = 256;
    p.scale = 1.0f / std::sqrt(float(head_dim));
    const auto q = bench_randn(size_t(p.n_head * head_dim));
    std::vector<float> out(q.size());
    int32_t qpos = 0;
    int64_t slots = 0;
    for (const AttnKvHead& h : kv.heads) qpos = std::max(qpos, h.n_slot), slots += h.n_slot;
    for (auto _ : state) {
        attention(bench_pool(n_threads), p, q.data(), &qpos, 1, kv.heads.data(), out.data());
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * 2 * slots * int64_t(dtype_row_size(t, head_dim)));
}

// Args: n_slot, head_dim, kv_type id (GGML ids: 0 f32, 1 f16, 30 bf16, 8 q8_0, 2 q4_0; 1020 heterokv's hq4),
// threads. The q8_0 / q4_0 / hq4 rows at head_dim 64 are llama-3.2-1b's shape at 32K (issue 19: decode
// with quantized KV).
void BM_AttnDecode(benchmark::State& state) {
    const int32_t n_slot = int32_t(state.range(0)), head_dim = int32_t(state.range(1));
    const DType t = DType(state.range(2));
    const int n_threads = int(state.range(3));
    const BenchKv kv(t, 8, 256, head_dim, n_slot);
    run_decode(state, kv, t, head_dim, n_threads);
    state.SetLabel(dtype_name(t));
}
BENCHMARK(BM_AttnDecode)
    ->ArgNames({"n_slot", "head_dim", "kv", "threads"})
    ->Args({4096, 64, 1, 2})->Args({4096, 128, 1, 2})
    ->Args({32768, 64, 1, 2})->Args({32768, 128, 1, 2})
    ->Args({32768, 128, 1, 1})->Args({32768, 128, 30, 2})->Args({32768, 128, 0, 2})
    ->Args({32768, 64, 8, 2})->Args({32768, 64, 2, 2})->Args({32768, 64, 1020, 2})->Args({32768, 64, 8, 1})->Args({32768, 64, 2, 1})->Args({32768, 64, 1, 1})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();

// The position lane's width (16-bit in a context of n_ctx <= 65536, else int32): Args n_slot,
// kv type id, lane bits, threads; 8 KV heads of head_dim 64. Compare the 16 and 32 rows of one run.
void BM_AttnDecodePosLane(benchmark::State& state) {
    const int32_t n_slot = int32_t(state.range(0));
    const DType t = DType(state.range(1));
    const BenchKv kv(t, 8, 256, 64, n_slot, state.range(2) == 16);
    run_decode(state, kv, t, 64, int(state.range(3)));
    state.SetLabel(std::string(dtype_name(t)) + (state.range(2) == 16 ? " pos16" : " pos32"));
}
BENCHMARK(BM_AttnDecodePosLane)
    ->ArgNames({"n_slot", "kv", "lane", "threads"})
    ->Args({32768, 1, 32, 1})->Args({32768, 1, 16, 1})->Args({32768, 2, 32, 1})->Args({32768, 2, 16, 1})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();

// Uneven heads, as HeteroCache leaves them (its pivot and volatile heads keep every slot, the
// satellites ~10%): Args n_slot, threads. 8 KV heads of head_dim 64 (llama-3.2-1b), GQA 4, f16;
// heads 0 and 1 hold n_slot slots, heads 2-7 hold n_slot / 10. Bytes = the slots actually read.
void BM_AttnDecodeUneven(benchmark::State& state) {
    const int32_t n_slot = int32_t(state.range(0)), head_dim = 64;
    const int n_threads = int(state.range(1));
    BenchKv kv(DType::kF16, 8, 256, head_dim, n_slot);
    for (size_t ih = 2; ih < kv.heads.size(); ++ih) kv.heads[ih].n_slot = n_slot / 10;
    run_decode(state, kv, DType::kF16, head_dim, n_threads);
}
BENCHMARK(BM_AttnDecodeUneven)
    ->ArgNames({"n_slot", "threads"})
    ->Args({32768, 1})->Args({32768, 2})->Args({65536, 2})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();

// Args: n_tok, head_dim, threads. Fresh prefill: n_slot = n_tok, causal; 8 KV heads, GQA 4, f16.
void BM_AttnPrefill(benchmark::State& state) {
    const int32_t n_tok = int32_t(state.range(0)), head_dim = int32_t(state.range(1));
    const int n_threads = int(state.range(2));
    const int32_t n_head_kv = 8, n_head = 32;
    const BenchKv kv(DType::kF16, n_head_kv, 256, head_dim, n_tok);
    AttnParams p;
    p.n_head = n_head, p.n_head_kv = n_head_kv, p.head_dim = head_dim, p.page_size = 256;
    p.scale = 1.0f / std::sqrt(float(head_dim));
    const auto q = bench_randn(size_t(n_tok) * n_head * head_dim);
    std::vector<float> out(q.size());
    for (auto _ : state) {
        attention(bench_pool(n_threads), p, q.data(), kv.pos.data(), n_tok, kv.heads.data(), out.data());
        benchmark::DoNotOptimize(out.data());
    }
    // QK and PV over the causal triangle: 4 flops per (query head, visible slot, dim)
    const double flops = 4.0 * n_head * head_dim * (double(n_tok) * (n_tok + 1) / 2);
    state.counters["GFLOPS"] = benchmark::Counter(flops * 1e-9 * double(state.iterations()),
                                                  benchmark::Counter::kIsRate);
}
BENCHMARK(BM_AttnPrefill)
    ->ArgNames({"n_tok", "head_dim", "threads"})
    ->Args({512, 128, 2})->Args({512, 64, 2})->Args({512, 128, 1})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_RmsNorm(benchmark::State& state) {
    const int64_t n = state.range(0);
    const auto x = bench_randn(size_t(n)), w = bench_randn(size_t(n));
    std::vector<float> y(static_cast<size_t>(n));
    for (auto _ : state) {
        rmsnorm(x.data(), w.data(), y.data(), n, 1e-5f);
        benchmark::DoNotOptimize(y.data());
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * n * 12);
}
BENCHMARK(BM_RmsNorm)->Arg(4096)->Arg(8192);

// Args: n_tok, style (0 norm, 1 neox). 32 heads of 128, n_rot 128.
void BM_Rope(benchmark::State& state) {
    const int64_t n_tok = state.range(0), n_head = 32, head_dim = 128;
    RopeParams p;
    p.style = state.range(1) ? RopeStyle::kNeox : RopeStyle::kNorm;
    p.n_rot = 128, p.freq_base = 500000.0f;
    auto x = bench_randn(size_t(n_tok * n_head * head_dim));
    std::vector<int32_t> pos(static_cast<size_t>(n_tok));
    for (int64_t i = 0; i < n_tok; ++i) pos[size_t(i)] = int32_t(1000 + i);
    for (auto _ : state) {
        rope(p, x.data(), pos.data(), n_tok, n_head, head_dim);
        benchmark::DoNotOptimize(x.data());
    }
    state.SetItemsProcessed(int64_t(state.iterations()) * n_tok);
}
BENCHMARK(BM_Rope)->ArgNames({"n_tok", "neox"})->Args({1, 0})->Args({1, 1})->Args({512, 0})->Args({512, 1});

void BM_Swiglu(benchmark::State& state) {
    const int64_t n = state.range(0);
    auto g = bench_randn(size_t(n));
    const auto up = bench_randn(size_t(n));
    for (auto _ : state) {
        swiglu(g.data(), up.data(), n);
        benchmark::DoNotOptimize(g.data());
    }
    state.SetItemsProcessed(int64_t(state.iterations()) * n);
}
BENCHMARK(BM_Swiglu)->Arg(11008);

}  // namespace
}  // namespace hkv
