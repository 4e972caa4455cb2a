// backend/cpu/matmul.cpp — y = x · Wᵀ over any weight type (see matmul.h for shapes).
//
// 1. x [m, n_in] is quantized once to vec_dot_type(W) into scratch (rows xq_row bytes apart);
//    f32 weights use x directly.
// 2. Output rows are split across the pool. m = 1: each thread runs vec_dot_rows over its contiguous
//    slice of weight rows (W streamed once). m > 1: the slice is walked in tiles of kTileBytes of
//    weights; each tile is dotted with every activation row before moving on, so it is read from
//    memory once and from cache m - 1 times (QuantKernels::gemm, which reuses each unpacked
//    weight block across several activation rows).
#include "backend/cpu/matmul.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "backend/cpu/quant.h"
#include "core/assert.h"

namespace hkv {
namespace {

constexpr size_t kTileBytes = 48 * 1024;  // weight bytes per tile: stays in L2 next to the activations
constexpr int64_t kRowQuantum = 4;         // vec_dot_rows does 4 rows per pass
constexpr int64_t kDecodeChunk = 64;       // most weight rows per work item of a matvec

}  // namespace

void matmul(ThreadPool& pool, const WeightView& w, const float* x, int64_t m, float* y,
            std::vector<uint8_t>& scratch) {
    HKV_ASSERT(dtype_row_ok(w.type, w.n_in), "matmul: n_in %lld not a multiple of %s's block",
               (long long)w.n_in, dtype_name(w.type));
    if (m <= 0 || w.n_out <= 0) return;
    const QuantKernels& k = quant_kernels();
    const DType vt = vec_dot_type(w.type);
    const int64_t n_in = w.n_in, n_out = w.n_out;
    const size_t w_row = w.row_bytes();

    // x [m, n_in] f32 -> xq [m, xq_row] of type vt
    const void* xq = x;
    size_t xq_row = size_t(n_in) * sizeof(float);
    if (vt != DType::kF32) {
        xq_row = dtype_row_size(vt, n_in);
        if (scratch.size() < size_t(m) * xq_row) scratch.resize(size_t(m) * xq_row);
        uint8_t* dst = scratch.data();
        pool.parallel_for(m, [&](int64_t b, int64_t e, int) {
            for (int64_t i = b; i < e; ++i) k.quantize_row(vt, x + i * n_in, dst + size_t(i) * xq_row, n_in);
        });
        xq = dst;
    }
    const uint8_t* wb = static_cast<const uint8_t*>(w.data);
    const uint8_t* xb = static_cast<const uint8_t*>(xq);

    if (m == 1) {
        // Chunks of kDecodeChunk rows handed out through an atomic counter: contiguous enough for the
        // hardware prefetcher, and a thread the OS preempts (2 cores shared with other jobs) only
        // delays its current chunk instead of half the matrix.
        const int64_t chunk = std::max<int64_t>(
            kRowQuantum, std::min<int64_t>(kDecodeChunk, (n_out / (8 * pool.n_threads()) + 3) / 4 * 4));
        const int64_t n_chunks = (n_out + chunk - 1) / chunk;
        std::atomic<int64_t> next{0};
        auto work = [&](int, int) {
            for (int64_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < n_chunks;) {
                const int64_t r0 = c * chunk, r1 = std::min(n_out, r0 + chunk);
                k.vec_dot_rows(w.type, n_in, wb + size_t(r0) * w_row, w_row, r1 - r0, xq, y + r0);
            }
        };
        if (n_chunks == 1) work(0, 1);
        else pool.run(work);
        return;
    }

    int64_t tile = int64_t(kTileBytes / std::max<size_t>(w_row, 1));
    tile = std::clamp<int64_t>(tile / kRowQuantum * kRowQuantum, kRowQuantum, 256);
    // Prefer more, smaller tiles over idle threads when n_out is small.
    if ((n_out + tile - 1) / tile < pool.n_threads() * 4) {
        tile = std::max<int64_t>(kRowQuantum, (n_out / (pool.n_threads() * 4) + kRowQuantum - 1) /
                                                  kRowQuantum * kRowQuantum);
    }
    const int64_t n_tiles = (n_out + tile - 1) / tile;
    std::atomic<int64_t> next{0};
    auto work = [&](int, int) {
        for (int64_t it; (it = next.fetch_add(1, std::memory_order_relaxed)) < n_tiles;) {
            const int64_t r0 = it * tile, nr = std::min(n_out, r0 + tile) - r0;
            k.gemm(w.type, n_in, wb + size_t(r0) * w_row, w_row, nr, xb, xq_row, m, y + r0, size_t(n_out));
        }
    };
    if (n_tiles == 1) work(0, 1);
    else pool.run(work);
}

void matmul_ref(const WeightView& w, const float* x, int64_t m, float* y) {
    std::vector<float> row(size_t(w.n_in));  // [n_in]
    const uint8_t* wb = static_cast<const uint8_t*>(w.data);
    for (int64_t r = 0; r < w.n_out; ++r) {
        dequantize_row_ref(w.type, wb + size_t(r) * w.row_bytes(), row.data(), w.n_in);
        for (int64_t i = 0; i < m; ++i) {
            const float* xi = x + i * w.n_in;
            double s = 0;
            for (int64_t j = 0; j < w.n_in; ++j) s += double(row[size_t(j)]) * double(xi[j]);
            y[i * w.n_out + r] = float(s);
        }
    }
}

void matmul_ref_quantized(const WeightView& w, const float* x, int64_t m, float* y) {
    const DType vt = vec_dot_type(w.type);
    const size_t xq_row = dtype_row_size(vt, w.n_in);
    std::vector<uint8_t> xq(size_t(m) * xq_row);  // [m, xq_row] bytes of type vt
    for (int64_t i = 0; i < m; ++i) quantize_row_ref(vt, x + i * w.n_in, xq.data() + size_t(i) * xq_row, w.n_in);
    const uint8_t* wb = static_cast<const uint8_t*>(w.data);
    for (int64_t i = 0; i < m; ++i) {
        for (int64_t r = 0; r < w.n_out; ++r) {
            y[i * w.n_out + r] = vec_dot_ref(w.type, w.n_in, wb + size_t(r) * w.row_bytes(),
                                             xq.data() + size_t(i) * xq_row);
        }
    }
}

}  // namespace hkv
