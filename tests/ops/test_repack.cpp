// tests/ops/test_repack.cpp — the x16 weight layout (backend/cpu/repack.h): packing round trips
// byte for byte, and the x16 kernels of every ISA the CPU has match vec_dot_ref on the original rows
// within the row kernels' bound (|d| <= 2e-6 * sum |w_i x_i|: same integer sums, float order only),
// for 1-9 activation rows, extreme quants (the int16 partial sums of the kernels), and through
// matmul / matvec_multi / matvec_swiglu on 1-3 threads.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "backend/cpu/matmul.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/quant.h"
#include "backend/cpu/quant_blocks.h"
#include "backend/cpu/repack.h"
#include "core/cpu.h"
#include "core/thread_pool.h"
#include "ops/quant_test_util.h"

namespace hkv {
namespace {

using test::abs_dot;
using test::quantize;
using test::randn;

const DType kTypes[] = {DType::kQ8_0, DType::kQ4_K, DType::kQ6_K};

std::vector<uint8_t> pack(DType t, const std::vector<uint8_t>& rows, int64_t n_out, int64_t n) {
    const size_t rb = dtype_row_size(t, n);
    std::vector<uint8_t> out(rows.size());
    for (int64_t g = 0; g < n_out / kX16Rows; ++g)
        x16_pack_group(t, n, rows.data() + size_t(g) * kX16Rows * rb, rb, out.data() + size_t(g) * kX16Rows * rb);
    return out;
}

std::vector<int64_t> sizes(DType t) {
    if (t == DType::kQ8_0) return {32, 288, 4352, 16416};
    return {256, 4352};
}

// The kernel tables to test: x16_kernels_for(avx2), and AVX-512 VNNI when the CPU has it.
std::vector<const X16Kernels*> tables() {
    std::vector<const X16Kernels*> v;
    if (cpu_isa() >= Isa::kAvx2) v.push_back(&x16_kernels_avx2());
    if (cpu_isa() >= Isa::kAvx512 && cpu_features().avx512vnni) v.push_back(&x16_kernels_avx512_vnni());
    return v;
}

// y [m, y_stride] from the kernel vs vec_dot_ref on each original row; columns past n_out stay NaN.
void check_gemm(const X16Kernels& k, DType t, int64_t n, const std::vector<uint8_t>& rows, int64_t n_out,
                const std::vector<uint8_t>& xq, int64_t m, const char* what) {
    const std::vector<uint8_t> packed = pack(t, rows, n_out, n);
    const size_t rb = dtype_row_size(t, n), xs = dtype_row_size(vec_dot_type(t), n);
    const size_t y_stride = size_t(n_out) + 3;
    std::vector<float> y(size_t(m) * y_stride, NAN);
    k.gemm(t, n, packed.data(), n_out / kX16Rows, xq.data(), xs, m, y.data(), y_stride);
    for (int64_t i = 0; i < m; ++i) {
        for (int64_t r = 0; r < n_out; ++r) {
            const uint8_t* wr = rows.data() + size_t(r) * rb;
            const uint8_t* xi = xq.data() + size_t(i) * xs;
            const float ref = vec_dot_ref(t, n, wr, xi);
            ASSERT_NEAR(y[size_t(i) * y_stride + size_t(r)], ref, 2e-6 * abs_dot(t, wr, xi, n) + 1e-30)
                << what << " " << dtype_name(t) << " " << isa_name(k.isa) << " n=" << n << " m=" << m << " i=" << i
                << " r=" << r;
        }
        for (size_t r = size_t(n_out); r < y_stride; ++r) ASSERT_TRUE(std::isnan(y[size_t(i) * y_stride + r]));
    }
}

TEST(X16Layout, PackUnpackRoundTripsBytes) {
    for (DType t : kTypes) {
        for (int64_t n : sizes(t)) {
            const int64_t n_out = 32;
            const std::vector<uint8_t> rows = quantize(t, randn(size_t(n * n_out), uint32_t(n) + 3, 0.5f), n_out, n);
            const std::vector<uint8_t> packed = pack(t, rows, n_out, n);
            ASSERT_EQ(packed.size(), rows.size());
            ASSERT_NE(packed, rows) << dtype_name(t);
            const size_t rb = dtype_row_size(t, n);
            std::vector<uint8_t> back(rb);
            for (int64_t r = 0; r < n_out; ++r) {
                x16_unpack_row(t, n, packed.data() + size_t(r / kX16Rows) * kX16Rows * rb, int(r % kX16Rows), back.data());
                ASSERT_EQ(std::memcmp(back.data(), rows.data() + size_t(r) * rb, rb), 0)
                    << dtype_name(t) << " n=" << n << " row " << r;
            }
            // arbitrary bytes too (every bit of every block is carried, scales included)
            std::mt19937 rng(uint32_t(n) * 7 + uint32_t(t));
            std::vector<uint8_t> junk(rows.size());
            for (uint8_t& b : junk) b = uint8_t(rng());
            const std::vector<uint8_t> pj = pack(t, junk, n_out, n);
            for (int64_t r = 0; r < n_out; ++r) {
                x16_unpack_row(t, n, pj.data() + size_t(r / kX16Rows) * kX16Rows * rb, int(r % kX16Rows), back.data());
                ASSERT_EQ(std::memcmp(back.data(), junk.data() + size_t(r) * rb, rb), 0) << dtype_name(t) << " junk row " << r;
            }
        }
    }
}

TEST(X16Gemm, EveryIsaMatchesReference) {
    const auto ks = tables();
    if (ks.empty()) GTEST_SKIP() << "no AVX2";
    for (const X16Kernels* k : ks) {
        for (DType t : kTypes) {
            for (int64_t n : sizes(t)) {
                const int64_t n_out = 48;
                const std::vector<uint8_t> rows = quantize(t, randn(size_t(n * n_out), uint32_t(n) + 5, 0.5f), n_out, n);
                for (int64_t m : {1, 2, 3, 4, 5, 7, 9}) {
                    const std::vector<uint8_t> xq = quantize(vec_dot_type(t), randn(size_t(n * m), uint32_t(n + m), 2.0f), m, n);
                    check_gemm(*k, t, n, rows, n_out, xq, m, "random");
                }
            }
        }
    }
}

// Every quant at its extreme and activations of one sign at +-127: the kernels' int16 partial sums
// (vpmaddubsw pairs, sub-block sums) at their largest.
TEST(X16Gemm, SaturationFreeAtExtremes) {
    const auto ks = tables();
    if (ks.empty()) GTEST_SKIP() << "no AVX2";
    const int64_t n = 512, n_out = 16;
    for (DType t : kTypes) {
        std::vector<float> pat(size_t(n * n_out));
        for (size_t i = 0; i < pat.size(); ++i) pat[i] = (i % 2) ? 1.0f : -1.0f;
        std::vector<uint8_t> rows = quantize(t, pat, n_out, n);
        const size_t bs = size_t(dtype_info(t)->type_size);
        for (size_t b = 0; b < rows.size() / bs; ++b) {  // quants at their maximum, scales kept
            uint8_t* blk = rows.data() + b * bs;
            if (t == DType::kQ6_K) std::memset(blk, 0xff, 192);
            else if (t == DType::kQ4_K) std::memset(blk + 16, 0xff, 128);
            else std::memset(blk + 2, (b % 2) ? 0x81 : 0x7f, 32);  // -127 / +127
        }
        for (float v : {5.0f, -5.0f}) {
            const std::vector<float> x(size_t(n), v);
            const std::vector<uint8_t> xq = quantize(vec_dot_type(t), x, 1, n);
            for (const X16Kernels* k : ks) check_gemm(*k, t, n, rows, n_out, xq, 1, v > 0 ? "max +" : "max -");
        }
    }
}

struct Packed {
    std::vector<uint8_t> rows, x16;
    WeightView view_rows, view_x16;
};

Packed make(DType t, int64_t n_in, int64_t n_out, uint32_t seed) {
    Packed p;
    p.rows = quantize(t, randn(size_t(n_in * n_out), seed, 0.3f), n_out, n_in);
    p.x16 = pack(t, p.rows, n_out, n_in);
    p.view_rows = WeightView{p.rows.data(), t, n_in, n_out};
    p.view_x16 = WeightView{p.x16.data(), t, n_in, n_out, WeightLayout::kX16};
    return p;
}

TEST(X16Matmul, MatchesReferenceAndRowsLayout) {
    if (!x16_kernels()) GTEST_SKIP() << "scalar ISA keeps the GGUF layout";
    const int64_t n_in = 512;
    for (DType t : kTypes) {
        for (int64_t n_out : {16, 48, 304}) {
            const Packed p = make(t, n_in, n_out, 31 + uint32_t(n_out));
            for (int64_t r : {int64_t(0), n_out / 2 + 1, n_out - 1}) {  // embedding rows
                std::vector<float> a(static_cast<size_t>(n_in)), b(static_cast<size_t>(n_in));
                weight_row_dequantize(p.view_x16, r, a.data());
                weight_row_dequantize(p.view_rows, r, b.data());
                ASSERT_EQ(a, b) << dtype_name(t) << " row " << r;
            }
            for (int64_t m : {1, 5, 64}) {
                const std::vector<float> x = randn(size_t(m * n_in), 9 + uint32_t(m));
                std::vector<float> ref(size_t(m * n_out)), ref_x16(size_t(m * n_out));
                matmul_ref_quantized(p.view_rows, x.data(), m, ref.data());
                matmul_ref_quantized(p.view_x16, x.data(), m, ref_x16.data());
                ASSERT_EQ(ref, ref_x16) << "reference through unpacked rows";
                for (int nth : {1, 2, 3}) {
                    ThreadPool pool(nth);
                    std::vector<uint8_t> scratch;
                    std::vector<float> y(size_t(m * n_out), NAN);
                    matmul(pool, p.view_x16, x.data(), m, y.data(), scratch);
                    for (size_t i = 0; i < y.size(); ++i)
                        ASSERT_NEAR(y[i], ref[i], 1e-4 * (1.0 + std::fabs(ref[i])))
                            << dtype_name(t) << " n_out " << n_out << " m " << m << " threads " << nth << " i " << i;
                }
            }
        }
    }
}

TEST(X16Matmul, FusedDecodeMatchesMatmul) {
    if (!x16_kernels()) GTEST_SKIP() << "scalar ISA keeps the GGUF layout";
    const int64_t n_in = 768;
    const Packed q = make(DType::kQ4_K, n_in, 256, 1), k = make(DType::kQ4_K, n_in, 64, 2);
    const Packed v = make(DType::kQ6_K, n_in, 64, 3), f = make(DType::kQ8_0, n_in, 96, 4);
    const std::vector<float> x = randn(size_t(n_in), 5);
    for (int nth : {1, 2, 3}) {
        ThreadPool pool(nth);
        std::vector<uint8_t> scratch;
        // Q/K/V (x16 q4_K, x16 q6_K) and a GGUF-layout q8_0 output in one run
        std::vector<float> yq(256, NAN), yk(64, NAN), yv(64, NAN), yf(96, NAN);
        const MatvecOut outs[4] = {{&q.view_x16, yq.data()}, {&k.view_x16, yk.data()}, {&v.view_x16, yv.data()},
                                   {&f.view_rows, yf.data()}};
        matvec_multi(pool, outs, 4, x.data(), scratch);
        const std::pair<const WeightView*, const std::vector<float>*> chk[4] = {
            {&q.view_x16, &yq}, {&k.view_x16, &yk}, {&v.view_x16, &yv}, {&f.view_rows, &yf}};
        for (const auto& [w, y] : chk) {
            std::vector<float> one(y->size());
            matmul(pool, *w, x.data(), 1, one.data(), scratch);
            EXPECT_EQ(std::memcmp(one.data(), y->data(), one.size() * sizeof(float)), 0) << dtype_name(w->type);
        }
        // SwiGLU over x16 gate/up
        const Packed g = make(DType::kQ4_K, n_in, 160, 6), u = make(DType::kQ4_K, n_in, 160, 7);
        std::vector<float> fused(160, NAN), gate(160), up(160);
        matvec_swiglu(pool, g.view_x16, u.view_x16, x.data(), fused.data(), scratch);
        matmul(pool, g.view_x16, x.data(), 1, gate.data(), scratch);
        matmul(pool, u.view_x16, x.data(), 1, up.data(), scratch);
        swiglu(gate.data(), up.data(), 160);
        EXPECT_EQ(std::memcmp(fused.data(), gate.data(), gate.size() * sizeof(float)), 0) << "threads " << nth;
    }
}

}  // namespace
}  // namespace hkv
