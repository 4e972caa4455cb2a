// backend/cpu/repack.h — weight matrices repacked at load into 16-row interleaved groups ("x16").
//
// GGUF stores a matrix row after row. The decode matvec then dots one activation with each row in
// turn, and every 256-element block of every row pays its own scale unpacking and a horizontal sum.
// The x16 layout stores 16 consecutive rows as one group, block by block, with the quants of the 16
// rows interleaved four bytes at a time: one 64-byte vector holds 4 consecutive quants of each of
// the 16 rows, so one broadcast of 4 activation bytes feeds one `vpdpbusd` (u8 x s8 -> 16 int32
// lanes = 16 rows) and the result is a vector of 16 output values, no horizontal sums. Scales of the
// 16 rows sit together too, so they are unpacked once per group and applied per lane.
//
// A group of 16 rows takes exactly 16 x row_bytes (same bytes, other order), so a repacked matrix
// has the size of the original and replaces it (model.cpp drops the mapped pages it repacked).
// Supported: q4_K, q6_K, q8_0, matrices with n_out % 16 == 0. Layout per group and block (nb blocks
// of the type's block size per row; "16 x f16" = one value per row, rows in order):
//
//   q8_0  (32 elements, 544 bytes): d[16] f16 | qs[8][16][4] int8: vector g holds elements
//         4g..4g+3 of each row (row r at bytes 4r..4r+3).
//   q4_K  (256 elements, 2304 bytes): d[16] f16 | dmin[16] f16 | sclo[8][16] | schi[4][16] |
//         qs[8 sub-blocks][4 pairs][16][4]. sclo byte (j, r) = low 4 bits of scale j | low 4 bits of
//         min j << 4; schi byte (j < 4, r) = high 2 bits of scale j, of min j, of scale j+4, of min
//         j+4 at bits 0, 2, 4, 6. In pair p of sub-block j, byte 4r+e holds quant 32j+8p+e of row r
//         (low nibble) and quant 32j+8p+4+e (high nibble).
//   q6_K  (256 elements, 3360 bytes): d[16] f16 | sc[16 sub-blocks][16] int8 | per sub-block j:
//         lo[2][16][4] then hi[16][4]. Byte 4r+e of lo[h] holds the low 4 bits of quant
//         16j+8h+e (low nibble) and 16j+8h+4+e (high nibble); byte 4r+e of hi holds the high 2 bits of
//         quants 16j+e, 16j+4+e, 16j+8+e, 16j+12+e at bits 0, 2, 4, 6. Quants are unsigned (0..63,
//         value = q - 32), as in GGUF.
//
// Results: integer block sums are exact, so the kernels equal vec_dot_ref on the original rows up to
// float summation order (the same bound the row kernels meet; tests/ops/test_repack.cpp).
//
// Kernels: AVX-512 VNNI (vpdpbusd) and AVX2 (vpmaddubsw); AVX-512 CPUs without VNNI use the AVX2 ones.
// NOTE: an AMX path (Sapphire Rapids' int8 tiles) would be another entry of x16_kernels_for() with
// its own tile-friendly group layout chosen at repack time; it is not written (no AMX CPU here to run
// it on).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/cpu.h"
#include "core/dtype.h"

namespace hkv {

constexpr int kX16Rows = 16;  // rows per interleaved group

// True when t has an x16 layout (q4_K, q6_K, q8_0).
bool x16_supported(DType t);

// Repacks 16 GGUF rows (row r at src + r * src_stride, n elements of type t each) into one group
// (16 * dtype_row_size(t, n) bytes at dst). n must be a multiple of t's block size.
void x16_pack_group(DType t, int64_t n, const void* src, size_t src_stride, void* dst);
// Writes row r (0..15) of a group back in GGUF layout (dtype_row_size(t, n) bytes at dst): the exact
// original bytes, so dequantize_row / vec_dot_ref apply to it.
void x16_unpack_row(DType t, int64_t n, const void* group, int r, void* dst);

// Decode (m = 1) streams every weight from DRAM once: the kernels prefetch the group bytes this far
// ahead of the block they compute, one block's lines per block. The L2 streamer alone stops at every
// 4 KiB page and restarts at every work item. On a Xeon (quiet, 2 threads) llama-3.2-1b q4_K decodes
// 25.3 -> 31.4 tok/s with it (4 KiB: the same within noise, 16 KiB: 29; docs/performance.md).
constexpr size_t kX16DecodePrefetch = 8192;

struct X16Kernels {
    Isa isa;
    // y[i * y_stride + r] = vec_dot(t, n, row r, xq + i * xq_stride) for the 16 * n_groups rows of the
    // consecutive groups at w and i in [0, m); xq rows are of type vec_dot_type(t). m = 1 is decode
    // (weights streamed once), m > 1 prefill (each group is unpacked once per few activation rows).
    void (*gemm)(DType t, int64_t n, const void* w, int64_t n_groups, const void* xq, size_t xq_stride,
                 int64_t m, float* y, size_t y_stride);
};
// The x16 kernels for `isa` (capped at what the CPU supports); nullptr for the scalar ISA, which
// keeps the GGUF layout.
const X16Kernels* x16_kernels_for(Isa isa);
// For cpu_isa(); nullptr when weights should not be repacked.
const X16Kernels* x16_kernels();

// Per-ISA tables (repack_avx512.cpp, repack_avx2.cpp).
const X16Kernels& x16_kernels_avx2();
const X16Kernels& x16_kernels_avx512_vnni();

}  // namespace hkv
