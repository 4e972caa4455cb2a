// backend/cpu/matmul.cpp — y = x · Wᵀ over any weight type (see matmul.h for shapes).
//
// 1. x [m, n_in] is quantized once to vec_dot_type(W) into scratch (rows xq_row bytes apart);
//    f32 weights use x directly.
// 2. Output rows are split across the pool. m = 1: each thread runs vec_dot_rows over its contiguous
//    slice of weight rows (W streamed once). m > 1: the slice is walked in tiles of kTileBytes of
//    weights; each tile is dotted with every activation row before moving on, so it is read from
//    memory once and from cache m - 1 times.
#include "backend/cpu/matmul.h"

#include <algorithm>
#include <cstring>

#include "backend/cpu/quant.h"
#include "core/assert.h"

namespace hkv {
namespace {

constexpr size_t kTileBytes = 48 * 1024;  // weight bytes per tile: stays in L2 next to the activations
constexpr int64_t kRowQuantum = 4;         // vec_dot_rows does 4 rows per pass

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
        const int64_t n_chunks = (n_out + kRowQuantum - 1) / kRowQuantum;
        pool.parallel_for(n_chunks, [&](int64_t b, int64_t e, int) {
            const int64_t r0 = b * kRowQuantum, r1 = std::min(n_out, e * kRowQuantum);
            k.vec_dot_rows(w.type, n_in, wb + size_t(r0) * w_row, w_row, r1 - r0, xq, y + r0);
        });
        return;
    }

    int64_t tile = int64_t(kTileBytes / std::max<size_t>(w_row, 1));
    tile = std::clamp<int64_t>(tile / kRowQuantum * kRowQuantum, kRowQuantum, 256);
    const int64_t n_tiles = (n_out + tile - 1) / tile;
    // Prefer more, smaller tiles over idle threads when n_out is small.
    if (n_tiles < pool.n_threads() * 2) {
        tile = std::max<int64_t>(kRowQuantum, (n_out / (pool.n_threads() * 2) + kRowQuantum - 1) /
                                                  kRowQuantum * kRowQuantum);
    }
    const int64_t n_tiles_final = (n_out + tile - 1) / tile;
    pool.parallel_for(n_tiles_final, [&](int64_t b, int64_t e, int) {
        for (int64_t it = b; it < e; ++it) {
            const int64_t r0 = it * tile, nr = std::min(n_out, r0 + tile) - r0;
            for (int64_t i = 0; i < m; ++i) {
                k.vec_dot_rows(w.type, n_in, wb + size_t(r0) * w_row, w_row, nr, xb + size_t(i) * xq_row,
                               y + i * n_out + r0);
            }
        }
    });
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
