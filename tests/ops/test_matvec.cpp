// tests/ops/test_matvec.cpp — the fused decode matvecs (matvec_multi, matvec_swiglu) against
// separate matmul() calls (bit for bit: same kernels, same rows) and against the scalar reference
// matmul_ref_quantized (within float summation order), for mixed weight types (Q4_K_M mixes q4_K
// and q6_K; f16 / f32 outputs need other activation types), 1-3 threads, and the accumulate flag.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "backend/cpu/matmul.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/quant.h"
#include "core/thread_pool.h"

namespace hkv {
namespace {

struct Weight {
    std::vector<uint8_t> q;  // [n_out, row_bytes]
    WeightView view;
};

Weight make_weight(DType t, int64_t n_in, int64_t n_out, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 0.3f);
    std::vector<float> f(static_cast<size_t>(n_in));  // [n_in] one row at a time
    Weight w;
    const size_t rb = dtype_row_size(t, n_in);
    w.q.resize(rb * size_t(n_out));
    for (int64_t r = 0; r < n_out; ++r) {
        for (float& v : f) v = nd(rng);
        quantize_row_ref(t, f.data(), w.q.data() + size_t(r) * rb, n_in);
    }
    w.view = WeightView{w.q.data(), t, n_in, n_out};
    return w;
}

std::vector<float> randn(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> v(n);
    for (float& f : v) f = nd(rng);
    return v;
}

void expect_bits_equal(const std::vector<float>& a, const std::vector<float>& b, const char* what) {
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << what;
}

void expect_near_ref(const std::vector<float>& y, const std::vector<float>& ref, const char* what) {
    for (size_t i = 0; i < y.size(); ++i)
        ASSERT_NEAR(y[i], ref[i], 1e-4 * (1.0 + std::fabs(ref[i]))) << what << " row " << i;
}

struct Case {
    DType types[3];
    int64_t n_out[3];
};

TEST(FusedMatvec, MatchesSeparateMatmulsAndReference) {
    const int64_t n_in = 512;
    const Case cases[] = {
        {{DType::kQ4_K, DType::kQ4_K, DType::kQ6_K}, {256, 64, 64}},  // Q4_K_M's Q/K/V
        {{DType::kQ8_0, DType::kQ8_0, DType::kQ8_0}, {576, 192, 192}},  // smollm2-like
        {{DType::kF16, DType::kQ8_0, DType::kF32}, {37, 130, 5}},       // three activation types, odd rows
    };
    const std::vector<float> x = randn(size_t(n_in), 11);
    for (const Case& c : cases) {
        Weight w[3];
        for (int i = 0; i < 3; ++i) w[i] = make_weight(c.types[i], n_in, c.n_out[i], 100 + uint32_t(i));
        for (int nth : {1, 2, 3}) {
            ThreadPool pool(nth);
            std::vector<uint8_t> scratch;
            std::vector<float> fused[3], sep[3], ref[3], base[3];
            MatvecOut outs[3];
            for (int i = 0; i < 3; ++i) {
                const size_t n = size_t(c.n_out[i]);
                sep[i].assign(n, 0.0f), ref[i].assign(n, 0.0f);
                base[i] = randn(n, 200 + uint32_t(i));
                // output 1 accumulates onto base, the others overwrite NaNs
                fused[i] = i == 1 ? base[i] : std::vector<float>(n, NAN);
                outs[i] = MatvecOut{&w[i].view, fused[i].data(), i == 1};
                matmul(pool, w[i].view, x.data(), 1, sep[i].data(), scratch);
                matmul_ref_quantized(w[i].view, x.data(), 1, ref[i].data());
            }
            matvec_multi(pool, outs, 3, x.data(), scratch);
            add_inplace(sep[1].data(), base[1].data(), c.n_out[1]);
            for (int64_t r = 0; r < c.n_out[1]; ++r) ref[1][size_t(r)] += base[1][size_t(r)];
            for (int i = 0; i < 3; ++i) {
                SCOPED_TRACE(testing::Message() << dtype_name(c.types[i]) << " output " << i << " threads " << nth);
                expect_bits_equal(fused[i], sep[i], "fused vs matmul");
                expect_near_ref(fused[i], ref[i], "fused vs matmul_ref_quantized");
            }
        }
    }
}

// SwiGLU and GeGLU (gemma) activations.
TEST(FusedMatvec, SwigluMatchesSeparateOpsAndReference) {
    const int64_t n_in = 768;
    for (DType t : {DType::kQ4_K, DType::kQ8_0, DType::kF16, DType::kQ3_K}) {
        for (int64_t n_ff : {4, 130, 1536}) {
            const Weight g = make_weight(t, n_in, n_ff, 7), u = make_weight(t, n_in, n_ff, 8);
            const std::vector<float> x = randn(size_t(n_in), 9);
            for (int nth : {1, 2, 3}) {
                for (GluAct act : {GluAct::kSilu, GluAct::kGeluTanh}) {
                    SCOPED_TRACE(testing::Message() << dtype_name(t) << " n_ff " << n_ff << " threads " << nth
                                                    << (act == GluAct::kSilu ? " swiglu" : " geglu"));
                    ThreadPool pool(nth);
                    std::vector<uint8_t> scratch;
                    const size_t nf = static_cast<size_t>(n_ff);
                    std::vector<float> fused(nf, NAN), gate(nf), up(nf);
                    matvec_swiglu(pool, g.view, u.view, x.data(), fused.data(), scratch, act);
                    matmul(pool, g.view, x.data(), 1, gate.data(), scratch);
                    matmul(pool, u.view, x.data(), 1, up.data(), scratch);
                    glu(act, gate.data(), up.data(), n_ff);
                    expect_bits_equal(fused, gate, "fused vs matmul + activation");
                    std::vector<float> rg(nf), ru(nf);
                    matmul_ref_quantized(g.view, x.data(), 1, rg.data());
                    matmul_ref_quantized(u.view, x.data(), 1, ru.data());
                    if (act == GluAct::kSilu) ref::swiglu(rg.data(), ru.data(), n_ff);
                    else ref::geglu(rg.data(), ru.data(), n_ff);
                    expect_near_ref(fused, rg, "fused vs reference");
                }
            }
        }
    }
}

}  // namespace
}  // namespace hkv
