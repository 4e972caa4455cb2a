// tests/ops/test_quant.cpp — block layouts, (de)quantization and dot products of every weight type,
// on every ISA the CPU has, plus matmul against its scalar references.
//
// Tolerances:
//   golden (gguf package) dequantize / legacy quantize: exact, bit for bit.
//   SIMD activation quantize vs quantize_row_ref: exact bytes.
//   vec_dot (any ISA) vs vec_dot_ref: |d| <= 2e-6 * sum|w_i x_i| (same integer math, float order only).
//   matmul vs matmul_ref_quantized: same bound per output element.
//   matmul vs matmul_ref (f32 activations, double accumulation): output NMSE <= per-type bound set by
//     the activation format (q8: 2e-4, bf16: 3e-5, f16/f32: 1e-6).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cpu/matmul.h"
#include "backend/cpu/quant.h"
#include "backend/cpu/quant_blocks.h"
#include "backend/cpu/quant_internal.h"
#include "core/cpu.h"
#include "core/fp16.h"
#include "core/thread_pool.h"
#include "ops/quant_test_util.h"

namespace hkv {
namespace {

using test::abs_dot;
using test::quantize;
using test::randn;

const DType kWeightTypes[] = {DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ4_0,   DType::kQ4_1,
                              DType::kQ5_0, DType::kQ5_1, DType::kQ8_0, DType::kQ2_K,   DType::kQ3_K,
                              DType::kQ4_K, DType::kQ5_K, DType::kQ6_K, DType::kIQ4_NL, DType::kIQ4_XS};
const Isa kIsas[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512};

int block_of(DType t) { return dtype_info(t)->block_size; }

double nmse(const float* a, const float* ref, size_t n) {
    double e = 0, s = 0;
    for (size_t i = 0; i < n; ++i) {
        e += (double(a[i]) - ref[i]) * (double(a[i]) - ref[i]);
        s += double(ref[i]) * ref[i];
    }
    return s > 0 ? e / s : e;
}

// ---- layouts ----

TEST(QuantLayout, BlockSizesMatchDtypeTable) {
    EXPECT_EQ(sizeof(BlockQ4_0), size_t(dtype_info(DType::kQ4_0)->type_size));
    EXPECT_EQ(sizeof(BlockQ4_1), size_t(dtype_info(DType::kQ4_1)->type_size));
    EXPECT_EQ(sizeof(BlockQ5_0), size_t(dtype_info(DType::kQ5_0)->type_size));
    EXPECT_EQ(sizeof(BlockQ5_1), size_t(dtype_info(DType::kQ5_1)->type_size));
    EXPECT_EQ(sizeof(BlockQ8_0), size_t(dtype_info(DType::kQ8_0)->type_size));
    EXPECT_EQ(sizeof(BlockQ8_1), size_t(dtype_info(DType::kQ8_1)->type_size));
    EXPECT_EQ(sizeof(BlockQ4_K), size_t(dtype_info(DType::kQ4_K)->type_size));
    EXPECT_EQ(sizeof(BlockQ5_K), size_t(dtype_info(DType::kQ5_K)->type_size));
    EXPECT_EQ(sizeof(BlockQ6_K), size_t(dtype_info(DType::kQ6_K)->type_size));
    EXPECT_EQ(sizeof(BlockQ8_K), size_t(dtype_info(DType::kQ8_K)->type_size));
    EXPECT_EQ(sizeof(BlockQ2_K), size_t(dtype_info(DType::kQ2_K)->type_size));
    EXPECT_EQ(sizeof(BlockQ3_K), size_t(dtype_info(DType::kQ3_K)->type_size));
    EXPECT_EQ(sizeof(BlockIQ4_NL), size_t(dtype_info(DType::kIQ4_NL)->type_size));
    EXPECT_EQ(sizeof(BlockIQ4_XS), size_t(dtype_info(DType::kIQ4_XS)->type_size));
    EXPECT_EQ(dtype_info(DType::kQ4_K)->block_size, kQkK);
    EXPECT_EQ(dtype_info(DType::kIQ4_NL)->block_size, kQk);
    EXPECT_EQ(dtype_info(DType::kIQ4_XS)->block_size, kQkK);
}

TEST(QuantLayout, Q3KScalesPackRoundTrips) {
    uint8_t ls[16], packed[12], back[16];
    for (int trial = 0; trial < 64; ++trial) {
        for (int j = 0; j < 16; ++j) ls[j] = uint8_t((trial * 5 + j * 11 + 1) & 63);
        pack_scales_q3_k(ls, packed);
        unpack_scales_q3_k(packed, back);
        for (int j = 0; j < 16; ++j) ASSERT_EQ(back[j], ls[j]) << "trial " << trial << " j " << j;
    }
}

TEST(QuantLayout, ScaleMinPackRoundTrips) {
    uint8_t sc[8], m[8], packed[12];
    for (int trial = 0; trial < 64; ++trial) {
        for (int j = 0; j < 8; ++j) { sc[j] = uint8_t((trial * 7 + j * 13) & 63); m[j] = uint8_t((trial * 11 + j * 5 + 3) & 63); }
        pack_scale_min_k4(sc, m, packed);
        for (int j = 0; j < 8; ++j) {
            uint8_t a, b;
            unpack_scale_min_k4(j, packed, &a, &b);
            ASSERT_EQ(a, sc[j]);
            ASSERT_EQ(b, m[j]);
        }
    }
}

TEST(QuantLayout, VecDotTypesAreGgmls) {
    EXPECT_EQ(vec_dot_type(DType::kQ4_0), DType::kQ8_0);
    EXPECT_EQ(vec_dot_type(DType::kQ5_0), DType::kQ8_0);
    EXPECT_EQ(vec_dot_type(DType::kQ8_0), DType::kQ8_0);
    EXPECT_EQ(vec_dot_type(DType::kQ4_1), DType::kQ8_1);
    EXPECT_EQ(vec_dot_type(DType::kQ5_1), DType::kQ8_1);
    EXPECT_EQ(vec_dot_type(DType::kQ4_K), DType::kQ8_K);
    EXPECT_EQ(vec_dot_type(DType::kQ5_K), DType::kQ8_K);
    EXPECT_EQ(vec_dot_type(DType::kQ6_K), DType::kQ8_K);
    EXPECT_EQ(vec_dot_type(DType::kQ2_K), DType::kQ8_K);
    EXPECT_EQ(vec_dot_type(DType::kQ3_K), DType::kQ8_K);
    EXPECT_EQ(vec_dot_type(DType::kIQ4_XS), DType::kQ8_K);
    EXPECT_EQ(vec_dot_type(DType::kIQ4_NL), DType::kQ8_0);
    EXPECT_EQ(vec_dot_type(DType::kF16), DType::kF16);
    EXPECT_EQ(vec_dot_type(DType::kBF16), DType::kBF16);
    EXPECT_EQ(vec_dot_type(DType::kF32), DType::kF32);
}

// ---- golden data from the reference gguf package ----

DType type_by_name(const std::string& s) {
    for (uint32_t id = 0; id < 64; ++id) {
        const DTypeInfo* d = dtype_info(id);
        if (d && s == d->name) return d->type;
    }
    ADD_FAILURE() << "unknown type " << s;
    return DType::kF32;
}
std::vector<uint8_t> parse_hex_bytes(const std::string& hex) {
    std::vector<uint8_t> out(hex.size() / 2);
    for (size_t i = 0; i < out.size(); ++i) out[i] = uint8_t(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
    return out;
}
std::vector<float> parse_hex_floats(std::istringstream& ss) {
    std::vector<float> out;
    std::string w;
    while (ss >> w) out.push_back(fp32_from_bits(uint32_t(std::stoul(w, nullptr, 16))));
    return out;
}

TEST(QuantGolden, MatchesGgufPackageBitForBit) {
    std::ifstream f(std::string(HKV_TEST_DATA_DIR) + "/quant/golden.txt");
    ASSERT_TRUE(f) << "missing tests/data/quant/golden.txt";
    std::string line, kind, tname;
    int n_dequant = 0, n_quant = 0;
    while (std::getline(f, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream hdr(line);
        int64_t n = 0;
        hdr >> kind >> tname >> n;
        const DType t = type_by_name(tname);
        std::string l1, l2, tag;
        ASSERT_TRUE(std::getline(f, l1) && std::getline(f, l2));
        std::istringstream s1(l1), s2(l2);
        if (kind == "dequant") {
            std::string hex;
            s1 >> tag >> hex;
            s2 >> tag;
            const std::vector<uint8_t> raw = parse_hex_bytes(hex);
            const std::vector<float> want = parse_hex_floats(s2);
            ASSERT_EQ(raw.size(), dtype_row_size(t, n)) << tname;
            ASSERT_EQ(want.size(), size_t(n)) << tname;
            for (Isa isa : kIsas) {
                const QuantKernels& k = quant_kernels_for(isa);
                std::vector<float> got(static_cast<size_t>(n));
                if (isa == Isa::kScalar) dequantize_row_ref(t, raw.data(), got.data(), n);
                else k.dequantize_row(t, raw.data(), got.data(), n);
                for (int64_t i = 0; i < n; ++i) {
                    ASSERT_EQ(fp32_to_bits(got[i]), fp32_to_bits(want[i]))
                        << tname << " element " << i << " isa " << isa_name(k.isa) << ": " << got[i] << " vs " << want[i];
                }
            }
            ++n_dequant;
        } else if (kind == "quant") {
            s1 >> tag;
            const std::vector<float> input = parse_hex_floats(s1);
            std::string hex;
            s2 >> tag >> hex;
            const std::vector<uint8_t> want = parse_hex_bytes(hex);
            ASSERT_EQ(input.size(), size_t(n));
            std::vector<uint8_t> got(dtype_row_size(t, n));
            quantize_row_ref(t, input.data(), got.data(), n);
            ASSERT_EQ(got, want) << "quantize " << tname;
            quant_kernels().quantize_row(t, input.data(), got.data(), n);
            ASSERT_EQ(got, want) << "dispatched quantize " << tname;
            ++n_quant;
        } else {
            FAIL() << "bad golden record: " << line;
        }
    }
    EXPECT_EQ(n_dequant, 14);
    EXPECT_EQ(n_quant, 7);
}

// ---- round trip quality ----

struct RoundTrip { DType t; double max_nmse; };

TEST(QuantRoundTrip, ErrorWithinFormatBounds) {
    // NMSE of quantize->dequantize on N(0,1) data; bounds ~1.25x the worst measured over these n.
    const RoundTrip cases[] = {
        {DType::kF32, 0.0},       {DType::kF16, 6e-8},      {DType::kBF16, 4e-6},
        {DType::kQ8_0, 4.5e-5},   {DType::kQ8_1, 4.5e-5},   {DType::kQ8_K, 7.5e-5},
        {DType::kQ5_0, 2.5e-3},   {DType::kQ5_1, 1.9e-3},   {DType::kQ4_0, 1.0e-2},
        {DType::kQ4_1, 8.5e-3},   {DType::kQ4_K, 6.8e-3},   {DType::kQ5_K, 1.8e-3},
        {DType::kQ6_K, 4.0e-4},   {DType::kQ2_K, 1.0e-1},   {DType::kQ3_K, 3.0e-2},
        {DType::kIQ4_NL, 7.3e-3}, {DType::kIQ4_XS, 7.0e-3},
    };
    for (const RoundTrip& c : cases) {
        for (int64_t n : {32, 256, 288, 4352}) {
            if (n % block_of(c.t)) continue;
            const std::vector<float> x = randn(size_t(n) * 3, uint32_t(n) + 7);
            const std::vector<uint8_t> q = quantize(c.t, x, 3, n);
            std::vector<float> y(x.size());
            for (int r = 0; r < 3; ++r) dequantize_row_ref(c.t, q.data() + r * dtype_row_size(c.t, n), y.data() + r * n, n);
            const double e = nmse(y.data(), x.data(), x.size());
            EXPECT_LE(e, c.max_nmse) << dtype_name(c.t) << " n=" << n;
            if (std::getenv("HKV_TEST_VERBOSE")) std::printf("rt %s %lld %.4g\n", dtype_name(c.t), (long long)n, e);
        }
    }
}

// Naive quantizers in the same formats (no search: scale = range / nmax from the sub-block's min and
// max), the baseline the K-quant quantizers' scale search must clearly beat.
void naive_q4_k(const float* x, BlockQ4_K* b) {
    float sc[8], mn[8], max_sc = 0, max_mn = 0;
    for (int j = 0; j < 8; ++j) {
        float lo = 0, hi = x[32 * j];
        for (int l = 0; l < 32; ++l) { lo = std::min(lo, x[32 * j + l]); hi = std::max(hi, x[32 * j + l]); }
        sc[j] = (hi - lo) / 15.0f;
        mn[j] = -lo;
        max_sc = std::max(max_sc, sc[j]);
        max_mn = std::max(max_mn, mn[j]);
    }
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; ++j) {
        ls[j] = uint8_t(std::lround(sc[j] / max_sc * 63));
        lm[j] = uint8_t(std::lround(mn[j] / max_mn * 63));
    }
    pack_scale_min_k4(ls, lm, b->scales);
    b->d = fp32_to_fp16(max_sc / 63);
    b->dmin = fp32_to_fp16(max_mn / 63);
    float L[256];
    for (int j = 0; j < 8; ++j) {
        const float d = fp16_to_fp32(b->d) * ls[j], m = fp16_to_fp32(b->dmin) * lm[j];
        for (int l = 0; l < 32; ++l) L[32 * j + l] = std::clamp(std::round((x[32 * j + l] + m) / d), 0.0f, 15.0f);
    }
    for (int k = 0; k < 4; ++k)
        for (int l = 0; l < 32; ++l) b->qs[32 * k + l] = uint8_t(int(L[64 * k + l]) | (int(L[64 * k + 32 + l]) << 4));
}

void naive_q6_k(const float* x, BlockQ6_K* b) {
    float sc[16], max_sc = 0, amax_sc = 0;
    for (int g = 0; g < 16; ++g) {
        float amax = 0, max = 0;
        for (int l = 0; l < 16; ++l) if (std::fabs(x[16 * g + l]) > amax) { amax = std::fabs(x[16 * g + l]); max = x[16 * g + l]; }
        sc[g] = max / -32.0f;
        if (std::fabs(sc[g]) > amax_sc) { amax_sc = std::fabs(sc[g]); max_sc = sc[g]; }
    }
    const float iscale = -128.0f / max_sc;
    for (int g = 0; g < 16; ++g) b->scales[g] = int8_t(std::min(127L, std::lround(iscale * sc[g])));
    b->d = fp32_to_fp16(1 / iscale);
    uint8_t L[256];
    for (int g = 0; g < 16; ++g) {
        const float d = fp16_to_fp32(b->d) * b->scales[g];
        for (int l = 0; l < 16; ++l) L[16 * g + l] = uint8_t(std::clamp(std::lround(x[16 * g + l] / d), -32L, 31L) + 32);
    }
    for (int h = 0; h < 2; ++h)
        for (int l = 0; l < 32; ++l) {
            const uint8_t* q = L + 128 * h;
            b->ql[64 * h + l] = uint8_t((q[l] & 15) | ((q[l + 64] & 15) << 4));
            b->ql[64 * h + l + 32] = uint8_t((q[l + 32] & 15) | ((q[l + 96] & 15) << 4));
            b->qh[32 * h + l] = uint8_t((q[l] >> 4) | ((q[l + 32] >> 4) << 2) | ((q[l + 64] >> 4) << 4) | ((q[l + 96] >> 4) << 6));
        }
}

TEST(QuantRoundTrip, KQuantsBeatNaiveRounding) {
    const int64_t n = 4352, nb = n / 256;
    const std::vector<float> x = randn(size_t(n), 99);
    auto err_of = [&](DType t, const std::vector<uint8_t>& q) {
        std::vector<float> y(static_cast<size_t>(n));
        dequantize_row_ref(t, q.data(), y.data(), n);
        return nmse(y.data(), x.data(), size_t(n));
    };
    std::vector<uint8_t> n4(dtype_row_size(DType::kQ4_K, n)), n6(dtype_row_size(DType::kQ6_K, n));
    for (int64_t i = 0; i < nb; ++i) {
        naive_q4_k(x.data() + 256 * i, reinterpret_cast<BlockQ4_K*>(n4.data()) + i);
        naive_q6_k(x.data() + 256 * i, reinterpret_cast<BlockQ6_K*>(n6.data()) + i);
    }
    const double e4n = err_of(DType::kQ4_K, n4), e6n = err_of(DType::kQ6_K, n6);
    const double e4 = err_of(DType::kQ4_K, quantize(DType::kQ4_K, x, 1, n));
    const double e5 = err_of(DType::kQ5_K, quantize(DType::kQ5_K, x, 1, n));
    const double e6 = err_of(DType::kQ6_K, quantize(DType::kQ6_K, x, 1, n));
    std::printf("nmse: q4_K %.3g (naive %.3g)  q5_K %.3g  q6_K %.3g (naive %.3g)\n", e4, e4n, e5, e6, e6n);
    EXPECT_LT(e4, 0.9 * e4n);  // measured 0.84 on N(0,1)
    EXPECT_LT(e6, 0.92 * e6n);  // measured 0.87
    EXPECT_LT(e5, 0.3 * e4);  // one more bit: ~4x less error
    // and the 4.5-bit q4_K beats the 5-bit legacy q4_1 (naive min/max), as in ggml
    EXPECT_LT(e4, 0.85 * err_of(DType::kQ4_1, quantize(DType::kQ4_1, x, 1, n)));
}

// The low-bit types: error falls with the bits (q2_K 2.6, q3_K 3.4, q4_K 4.5 bits per weight), and
// the non-linear 4-bit levels beat q4_0's uniform ones at the same (iq4_nl) or fewer (iq4_xs) bits.
TEST(QuantRoundTrip, LowBitTypesOrderedByBits) {
    const int64_t n = 4352;
    const std::vector<float> x = randn(size_t(n), 123);
    auto err = [&](DType t) {
        std::vector<float> y(static_cast<size_t>(n));
        dequantize_row_ref(t, quantize(t, x, 1, n).data(), y.data(), n);
        return nmse(y.data(), x.data(), size_t(n));
    };
    const double e2 = err(DType::kQ2_K), e3 = err(DType::kQ3_K), e4 = err(DType::kQ4_K);
    const double enl = err(DType::kIQ4_NL), exs = err(DType::kIQ4_XS), e40 = err(DType::kQ4_0);
    std::printf("nmse: q2_K %.3g  q3_K %.3g  q4_K %.3g  iq4_nl %.3g  iq4_xs %.3g  q4_0 %.3g\n", e2, e3, e4, enl, exs, e40);
    EXPECT_LT(e3, 0.4 * e2);    // measured 0.32
    EXPECT_LT(e4, 0.3 * e3);    // measured 0.21
    EXPECT_LT(enl, 0.85 * e40);  // measured 0.73
    EXPECT_LT(exs, 0.85 * e40);  // measured 0.75
}

TEST(QuantRoundTrip, ZerosAndConstants) {
    const int64_t n = 512;
    for (DType t : kWeightTypes) {
        for (float c : {0.0f, -1.25f, 3.0f}) {
            std::vector<float> x(size_t(n), c);
            const std::vector<uint8_t> q = quantize(t, x, 1, n);
            std::vector<float> y(static_cast<size_t>(n));
            dequantize_row_ref(t, q.data(), y.data(), n);
            for (int64_t i = 0; i < n; ++i) {
                ASSERT_TRUE(std::isfinite(y[i])) << dtype_name(t);
                ASSERT_NEAR(y[i], c, std::fabs(c) * 0.04f + 1e-6f) << dtype_name(t) << " c=" << c;
            }
        }
    }
}

// ---- vec_dot on every ISA ----

TEST(QuantVecDot, EveryIsaMatchesReference) {
    int n_isas = 0;
    for (int variant = 0; variant < 4; ++variant) {  // scalar, avx2, avx512 (vnni if present), avx512 plain
        const Isa isa = variant == 3 ? Isa::kAvx512 : kIsas[variant];
        if (quant_kernels_for(isa).isa != isa) {
            std::printf("[ SKIPPED  ] %s: not available on this CPU\n", isa_name(isa));
            continue;
        }
        const QuantKernels& k = variant == 3 ? quant_kernels_avx512(true) : quant_kernels_for(isa);
        ++n_isas;
        for (DType t : kWeightTypes) {
            const DType vt = vec_dot_type(t);
            for (int64_t n : {32, 256, 288, 4352, 8, 17}) {
                if (n % block_of(t)) continue;
                const int64_t rows = 9;
                const std::vector<float> wf = randn(size_t(n * rows), uint32_t(n * 3 + int(t)), 0.5f);
                const std::vector<float> xf = randn(size_t(n), uint32_t(n + 11), 2.0f);
                const std::vector<uint8_t> w = quantize(t, wf, rows, n);
                const size_t stride = dtype_row_size(t, n);
                // activation: SIMD quantizer must be byte-identical to the reference
                std::vector<uint8_t> xq = quantize(vt, xf, 1, n), xq2(xq.size());
                k.quantize_row(vt, xf.data(), xq2.data(), n);
                ASSERT_EQ(xq, xq2) << "quantize_row " << dtype_name(vt) << " n=" << n << " " << isa_name(isa);
                std::vector<float> out(static_cast<size_t>(rows));
                for (int64_t nr = 1; nr <= rows; nr += 3) {  // 1, 4, 7 rows per call
                    k.vec_dot_rows(t, n, w.data(), stride, nr, xq.data(), out.data());
                    for (int64_t r = 0; r < nr; ++r) {
                        const uint8_t* wr = w.data() + size_t(r) * stride;
                        const float ref = vec_dot_ref(t, n, wr, xq.data());
                        const double tol = 2e-6 * abs_dot(t, wr, xq.data(), n) + 1e-30;
                        EXPECT_NEAR(out[size_t(r)], ref, tol) << dtype_name(t) << " n=" << n << " row " << r
                                                              << " nr=" << nr << " " << isa_name(isa);
                        const float one = k.vec_dot(t, n, wr, xq.data());
                        EXPECT_NEAR(one, ref, tol) << dtype_name(t) << " n=" << n << " " << isa_name(isa);
                    }
                }
            }
        }
    }
    EXPECT_GE(n_isas, 1);
}

// gemm (prefill): every ISA, every weight type, activation-row counts around the 8-row groups of the
// AVX-512 kernels, strided outputs; each element against vec_dot_ref with the vec_dot bound.
TEST(QuantGemm, EveryIsaMatchesReference) {
    for (int variant = 0; variant < 4; ++variant) {
        const Isa isa = variant == 3 ? Isa::kAvx512 : kIsas[variant];
        if (quant_kernels_for(isa).isa != isa) continue;
        const QuantKernels& k = variant == 3 ? quant_kernels_avx512(true) : quant_kernels_for(isa);
        for (DType t : kWeightTypes) {
            const DType vt = vec_dot_type(t);
            // 16416 = 513 q8_0 blocks: past the AVX-512 q8_0 kernel's stack buffer (row-by-row path)
            for (int64_t n : {256, 4352, 16416}) {
                if (n % block_of(t)) continue;
                if (n == 16416 && t != DType::kQ8_0) continue;
                const int64_t nr = 5, y_stride = 11;
                const std::vector<float> wf = randn(size_t(n * nr), uint32_t(n + 7 * int(t)), 0.5f);
                const std::vector<uint8_t> w = quantize(t, wf, nr, n);
                const size_t w_stride = dtype_row_size(t, n), xq_stride = dtype_row_size(vt, n);
                for (int64_t m : {1, 7, 8, 9, 17}) {
                    const std::vector<float> xf = randn(size_t(n * m), uint32_t(n + m), 2.0f);
                    const std::vector<uint8_t> xq = quantize(vt, xf, m, n);
                    std::vector<float> y(size_t(m * y_stride), NAN);
                    k.gemm(t, n, w.data(), w_stride, nr, xq.data(), xq_stride, m, y.data(), size_t(y_stride));
                    for (int64_t i = 0; i < m; ++i) {
                        for (int64_t r = 0; r < nr; ++r) {
                            const uint8_t* wr = w.data() + size_t(r) * w_stride;
                            const uint8_t* xi = xq.data() + size_t(i) * xq_stride;
                            const float ref = vec_dot_ref(t, n, wr, xi);
                            EXPECT_NEAR(y[size_t(i * y_stride + r)], ref, 2e-6 * abs_dot(t, wr, xi, n) + 1e-30)
                                << dtype_name(t) << " n=" << n << " m=" << m << " i=" << i << " r=" << r << " "
                                << isa_name(isa) << (variant == 3 ? " (no vnni)" : "");
                        }
                        for (int64_t r = nr; r < y_stride; ++r) EXPECT_TRUE(std::isnan(y[size_t(i * y_stride + r)]));
                    }
                }
            }
        }
    }
}

// Extreme quants: every weight nibble/byte at its maximum and activations at +-127.
TEST(QuantVecDot, SaturationFreeAtExtremes) {
    const int64_t n = 512;
    for (Isa isa : kIsas) {
        const QuantKernels& k = quant_kernels_for(isa);
        if (k.isa != isa) continue;
        for (DType t : kWeightTypes) {
            std::vector<uint8_t> w(dtype_row_size(t, n), 0xff);
            // keep f16/bf16/f32 finite and every half scale field sane: quantize a row of -1/1 then max the quants
            if (block_of(t) == 1) {
                std::vector<float> ones(size_t(n), -3.0f);
                w = quantize(t, ones, 1, n);
            } else {
                std::vector<float> pat(static_cast<size_t>(n));
                for (int64_t i = 0; i < n; ++i) pat[size_t(i)] = (i % 2) ? 1.0f : -1.0f;
                const std::vector<uint8_t> base = quantize(t, pat, 1, n);
                const size_t bs = size_t(dtype_info(t)->type_size);
                for (size_t b = 0; b < base.size() / bs; ++b) {  // quants 0xff, scales from base
                    const uint8_t* src = base.data() + b * bs;
                    uint8_t* dst = w.data() + b * bs;
                    if (t == DType::kQ6_K) {
                        std::memcpy(dst + 192, src + 192, 18);  // scales + d
                    } else if (t == DType::kQ2_K) {
                        std::memcpy(dst, src, 16);            // scales
                        std::memcpy(dst + 80, src + 80, 4);   // d, dmin
                    } else if (t == DType::kQ3_K) {
                        std::memcpy(dst + 96, src + 96, 14);  // scales + d
                    } else if (t == DType::kIQ4_XS) {
                        std::memcpy(dst, src, 8);             // d, scales_h, scales_l
                    } else {
                        const size_t hdr = t == DType::kQ4_K || t == DType::kQ5_K ? 16 : (t == DType::kQ4_1 || t == DType::kQ5_1 ? 4 : 2);
                        std::memcpy(dst, src, hdr);
                        if (t == DType::kQ8_0) std::memset(dst + 2, 0x81, 32);  // -127
                    }
                }
            }
            std::vector<float> x(static_cast<size_t>(n));
            for (int64_t i = 0; i < n; ++i) x[size_t(i)] = (i % 3) ? 5.0f : -5.0f;
            const std::vector<uint8_t> xq = quantize(vec_dot_type(t), x, 1, n);
            const float ref = vec_dot_ref(t, n, w.data(), xq.data());
            const float got = k.vec_dot(t, n, w.data(), xq.data());
            EXPECT_NEAR(got, ref, 2e-6 * abs_dot(t, w.data(), xq.data(), n) + 1e-30)
                << dtype_name(t) << " " << isa_name(isa);
        }
    }
}

// ---- matmul ----

double matmul_tol_vs_ref(DType t) {
    switch (vec_dot_type(t)) {
        case DType::kF32: return 1e-10;
        case DType::kF16: return 1e-6;
        case DType::kBF16: return 3e-5;
        default: return 2e-4;
    }
}

TEST(QuantMatmul, MatchesReferences) {
    const int64_t n_in = 4352, n_out = 37;
    for (DType t : kWeightTypes) {
        const std::vector<float> wf = randn(size_t(n_in * n_out), 5 + uint32_t(t), 0.3f);
        const std::vector<uint8_t> wq = quantize(t, wf, n_out, n_in);
        const WeightView w{wq.data(), t, n_in, n_out};
        for (int64_t m : {1, 3, 17, 64}) {
            const std::vector<float> x = randn(size_t(m * n_in), 77 + uint32_t(m));
            std::vector<float> y_rq(size_t(m * n_out)), y_ref(size_t(m * n_out));
            matmul_ref_quantized(w, x.data(), m, y_rq.data());
            matmul_ref(w, x.data(), m, y_ref.data());
            // per-element float-order bound for matmul vs matmul_ref_quantized
            const DType vt = vec_dot_type(t);
            std::vector<uint8_t> xq = quantize(vt, x, m, n_in);
            std::vector<double> tol(size_t(m * n_out));
            for (int64_t i = 0; i < m; ++i)
                for (int64_t r = 0; r < n_out; ++r)
                    tol[size_t(i * n_out + r)] = 2e-6 * abs_dot(t, wq.data() + size_t(r) * w.row_bytes(),
                                                              xq.data() + size_t(i) * dtype_row_size(vt, n_in), n_in);
            for (int nth : {1, 2, 3}) {
                ThreadPool pool(nth);
                std::vector<uint8_t> scratch;
                std::vector<float> y(size_t(m * n_out), NAN);
                matmul(pool, w, x.data(), m, y.data(), scratch);
                for (size_t i = 0; i < y.size(); ++i) {
                    ASSERT_NEAR(y[i], y_rq[i], tol[i]) << dtype_name(t) << " m=" << m << " threads=" << nth << " i=" << i;
                }
                EXPECT_LE(nmse(y.data(), y_ref.data(), y.size()), matmul_tol_vs_ref(t))
                    << dtype_name(t) << " m=" << m << " threads=" << nth;
            }
        }
    }
}

TEST(QuantMatmul, OddShapesAndScratchReuse) {
    ThreadPool pool(3);
    std::vector<uint8_t> scratch;
    for (DType t : {DType::kQ4_0, DType::kQ6_K, DType::kF16}) {
        for (int64_t n_out : {1, 5, 130}) {
            const int64_t n_in = 256, m = 2;
            const std::vector<float> wf = randn(size_t(n_in * n_out), 3, 0.3f);
            const std::vector<uint8_t> wq = quantize(t, wf, n_out, n_in);
            const WeightView w{wq.data(), t, n_in, n_out};
            const std::vector<float> x = randn(size_t(m * n_in), 4);
            std::vector<float> y(size_t(m * n_out)), y_rq(size_t(m * n_out));
            matmul(pool, w, x.data(), m, y.data(), scratch);
            matmul_ref_quantized(w, x.data(), m, y_rq.data());
            for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], y_rq[i], 1e-4f * (1 + std::fabs(y_rq[i])));
        }
    }
}

}  // namespace
}  // namespace hkv
