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

#include "backend/cpu/ops.h"
#include "backend/cpu/quant.h"
#include "backend/cpu/repack.h"
#include "core/assert.h"

namespace hkv {
namespace {

constexpr size_t kTileBytes = 48 * 1024;  // weight bytes per tile: stays in L2 next to the activations
constexpr int64_t kRowQuantum = 4;         // vec_dot_rows does 4 rows per pass (kX16: one group of 16)
constexpr int64_t kDecodeChunk = 64;       // most weight rows per work item of a matvec
constexpr int kMaxFused = 4;               // most outputs of one fused matvec

// Rows the kernels take at a time: chunks and tiles are multiples of it.
int64_t row_quantum(const WeightView& w) { return w.layout == WeightLayout::kX16 ? kX16Rows : kRowQuantum; }

const X16Kernels& x16_or_die() {
    const X16Kernels* k = x16_kernels();
    HKV_ASSERT(k, "x16 weight layout without x16 kernels (HKV_ISA=scalar?)");
    return *k;
}

// Rows per work item of a matvec over n_out rows: a multiple of the row quantum q (so every row goes
// through the same kernel whatever the chunking), <= kDecodeChunk, ~8 items per thread.
int64_t decode_chunk(int64_t n_out, int nth, int64_t q) {
    return std::max<int64_t>(q, std::min<int64_t>(kDecodeChunk, (n_out / (8 * nth) + q - 1) / q * q));
}

// y[0, nr) = rows [r0, r0 + nr) of W · xq. The row kernels take the rows kRowQuantum at a time and
// prefetch the rows two passes ahead while they compute (decode streams every weight once from DRAM,
// and the hardware prefetcher restarts at every chunk a thread jumps to); kX16 takes whole groups.
void matvec_rows(const QuantKernels& k, const WeightView& w, int64_t r0, int64_t nr, const void* xq, float* y) {
    const size_t rb = w.row_bytes();
    const uint8_t* wr = static_cast<const uint8_t*>(w.data) + size_t(r0) * rb;
    if (w.layout == WeightLayout::kX16) return x16_or_die().gemm(w.type, w.n_in, wr, nr / kX16Rows, xq, 0, 1, y, 0);
    k.vec_dot_rows(w.type, w.n_in, wr, rb, nr, xq, y);
}

// xq[i] = x [n_in] quantized to vec_dot_type(ws[i]->type), once per distinct type, in scratch
// (f32 weights get x itself).
void quantize_activation(const WeightView* const* ws, int n, const float* x, std::vector<uint8_t>& scratch,
                         const void** xq) {
    HKV_ASSERT(n >= 1 && n <= kMaxFused, "fused matvec: %d outputs (1..%d)", n, kMaxFused);
    const int64_t n_in = ws[0]->n_in;
    DType vts[kMaxFused];
    size_t offs[kMaxFused], total = 0;
    int slot[kMaxFused], n_vt = 0;
    for (int i = 0; i < n; ++i) {
        HKV_ASSERT(ws[i]->n_in == n_in && dtype_row_ok(ws[i]->type, n_in),
                   "fused matvec: output %d has n_in %lld (type %s), expected %lld", i,
                   (long long)ws[i]->n_in, dtype_name(ws[i]->type), (long long)n_in);
        const DType vt = vec_dot_type(ws[i]->type);
        int j = 0;
        while (j < n_vt && vts[j] != vt) ++j;
        if (j == n_vt) {
            vts[n_vt] = vt, offs[n_vt] = total, ++n_vt;
            if (vt != DType::kF32) total += (dtype_row_size(vt, n_in) + 63) / 64 * 64;
        }
        slot[i] = j;
    }
    if (scratch.size() < total) scratch.resize(total);
    const QuantKernels& k = quant_kernels();
    for (int j = 0; j < n_vt; ++j)
        if (vts[j] != DType::kF32) k.quantize_row(vts[j], x, scratch.data() + offs[j], n_in);
    for (int i = 0; i < n; ++i)
        xq[i] = vts[slot[i]] == DType::kF32 ? static_cast<const void*>(x) : scratch.data() + offs[slot[i]];
}

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
        // Chunks handed out through an atomic counter (matvec_multi): contiguous enough for the
        // hardware prefetcher, and a thread the OS preempts (2 cores shared with other jobs) only
        // delays its current chunk instead of half the matrix.
        const MatvecOut out{&w, y, false};
        matvec_multi(pool, &out, 1, x, scratch);
        return;
    }
    const int64_t quantum = row_quantum(w);
    int64_t tile = int64_t(kTileBytes / std::max<size_t>(w_row, 1));
    tile = std::clamp<int64_t>(tile / quantum * quantum, quantum, 256);
    // Prefer more, smaller tiles over idle threads when n_out is small.
    if ((n_out + tile - 1) / tile < pool.n_threads() * 4) {
        tile = std::max<int64_t>(quantum, (n_out / (pool.n_threads() * 4) + quantum - 1) / quantum * quantum);
    }
    const int64_t n_tiles = (n_out + tile - 1) / tile;
    const X16Kernels* x16 = w.layout == WeightLayout::kX16 ? &x16_or_die() : nullptr;
    pool.for_each(n_tiles, [&](int64_t it, int) {
        const int64_t r0 = it * tile, nr = std::min(n_out, r0 + tile) - r0;
        if (x16) {
            x16->gemm(w.type, n_in, wb + size_t(r0) * w_row, nr / kX16Rows, xb, xq_row, m, y + r0, size_t(n_out));
        } else {
            k.gemm(w.type, n_in, wb + size_t(r0) * w_row, w_row, nr, xb, xq_row, m, y + r0, size_t(n_out));
        }
    });
}

void matvec_multi(ThreadPool& pool, const MatvecOut* outs, int n_outs, const float* x,
                  std::vector<uint8_t>& scratch) {
    const WeightView* ws[kMaxFused];
    for (int i = 0; i < n_outs && i < kMaxFused; ++i) ws[i] = outs[i].w;
    const void* xq[kMaxFused];
    quantize_activation(ws, n_outs, x, scratch, xq);
    int64_t chunk[kMaxFused], first[kMaxFused + 1];  // output i owns work items first[i] .. first[i+1]-1
    first[0] = 0;
    for (int i = 0; i < n_outs; ++i) {
        chunk[i] = decode_chunk(ws[i]->n_out, pool.n_threads(), row_quantum(*ws[i]));
        first[i + 1] = first[i] + (ws[i]->n_out + chunk[i] - 1) / chunk[i];
    }
    const QuantKernels& k = quant_kernels();
    pool.for_each(first[n_outs], [&](int64_t c, int) {
        int i = 0;
        while (c >= first[i + 1]) ++i;
        const WeightView& w = *ws[i];
        const int64_t r0 = (c - first[i]) * chunk[i], nr = std::min(w.n_out, r0 + chunk[i]) - r0;
        float* y = outs[i].y + r0;
        if (!outs[i].accumulate) {
            matvec_rows(k, w, r0, nr, xq[i], y);
        } else {
            float t[kDecodeChunk];  // [nr]
            matvec_rows(k, w, r0, nr, xq[i], t);
            add_inplace(y, t, nr);
        }
    });
}

void matvec_swiglu(ThreadPool& pool, const WeightView& w_gate, const WeightView& w_up, const float* x,
                   float* out, std::vector<uint8_t>& scratch, GluAct act) {
    HKV_ASSERT(w_gate.n_out == w_up.n_out, "matvec_swiglu: gate has %lld rows, up %lld",
               (long long)w_gate.n_out, (long long)w_up.n_out);
    const WeightView* ws[2] = {&w_gate, &w_up};
    const void* xq[2];
    quantize_activation(ws, 2, x, scratch, xq);
    const int64_t n_ff = w_gate.n_out;
    HKV_ASSERT(w_gate.layout == w_up.layout, "matvec_swiglu: gate and up in different layouts");
    const int64_t chunk = decode_chunk(n_ff, pool.n_threads(), row_quantum(w_gate));
    const int64_t n_chunks = (n_ff + chunk - 1) / chunk;
    const QuantKernels& k = quant_kernels();
    pool.for_each(n_chunks, [&](int64_t c, int) {
        const int64_t r0 = c * chunk, nr = std::min(n_ff, r0 + chunk) - r0;
        float up[kDecodeChunk];  // [nr]
        matvec_rows(k, w_gate, r0, nr, xq[0], out + r0);
        matvec_rows(k, w_up, r0, nr, xq[1], up);
        glu(act, out + r0, up, nr);
    });
}

namespace {
// Row r of W in GGUF layout: a pointer into W, or (kX16) the row unpacked into buf.
const uint8_t* weight_row(const WeightView& w, int64_t r, std::vector<uint8_t>& buf) {
    const size_t rb = w.row_bytes();
    const uint8_t* base = static_cast<const uint8_t*>(w.data);
    if (w.layout == WeightLayout::kRows) return base + size_t(r) * rb;
    buf.resize(rb);
    x16_unpack_row(w.type, w.n_in, base + size_t(r / kX16Rows) * kX16Rows * rb, int(r % kX16Rows), buf.data());
    return buf.data();
}
}  // namespace

void weight_row_dequantize(const WeightView& w, int64_t r, float* dst) {
    thread_local std::vector<uint8_t> buf;  // [row_bytes] a kX16 row in GGUF layout
    quant_kernels().dequantize_row(w.type, weight_row(w, r, buf), dst, w.n_in);
}

void matmul_ref(const WeightView& w, const float* x, int64_t m, float* y) {
    std::vector<float> row(size_t(w.n_in));  // [n_in]
    std::vector<uint8_t> buf;
    for (int64_t r = 0; r < w.n_out; ++r) {
        dequantize_row_ref(w.type, weight_row(w, r, buf), row.data(), w.n_in);
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
    std::vector<uint8_t> buf;
    for (int64_t r = 0; r < w.n_out; ++r) {
        const uint8_t* wr = weight_row(w, r, buf);
        for (int64_t i = 0; i < m; ++i) y[i * w.n_out + r] = vec_dot_ref(w.type, w.n_in, wr, xq.data() + size_t(i) * xq_row);
    }
}

}  // namespace hkv
