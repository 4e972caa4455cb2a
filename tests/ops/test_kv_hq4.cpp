// The hq4 KV row format (backend/cpu/kv_hq4.h; issue 19 item 4): its rotation is orthogonal and
// inverted exactly, its rows are iq4_nl blocks of the rotated row in q4_0's bytes, the readers give
// the decoded row back, its error is below q4_0's on rows with outlier channels, and head sizes it
// cannot serve are refused with a clear error.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "backend/cpu/kv_hq4.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/quant.h"
#include "backend/cpu/quant_blocks.h"
#include "backend/cpu/scores.h"
#include "core/fp16.h"
#include "heterokv/types.h"

namespace hkv {
namespace {

// n rows of d values: N(0, 1) with every 7th channel x6 and channel 3 x20 (keys' outlier channels).
std::vector<float> outlier_rows(std::mt19937& rng, int64_t n, int64_t d) {
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> x(size_t(n * d));
    for (int64_t i = 0; i < n * d; ++i) {
        const int64_t c = i % d;
        x[size_t(i)] = dist(rng) * (c == 3 ? 20.0f : c % 7 == 0 ? 6.0f : 1.0f);
    }
    return x;
}

double nmse(const std::vector<float>& y, const std::vector<float>& x) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < x.size(); ++i) num += (double(y[i]) - x[i]) * (double(y[i]) - x[i]), den += double(x[i]) * x[i];
    return num / den;
}

TEST(KvHq4, RotationIsOrthogonalAndInverted) {
    for (int64_t d : {32, 64, 128, 256, 1024}) {
        // R's columns R e_i: unit length and pairwise orthogonal (checked on the first 8)
        std::vector<std::vector<float>> cols;
        for (int64_t i = 0; i < 8; ++i) {
            std::vector<float> e(size_t(d), 0.0f);
            e[size_t(i * (d / 8))] = 1.0f;
            hq4_rotate(e.data(), d);
            cols.push_back(e);
        }
        for (size_t a = 0; a < cols.size(); ++a) {
            for (size_t b = 0; b < cols.size(); ++b) {
                double dot = 0.0;
                for (int64_t j = 0; j < d; ++j) dot += double(cols[a][size_t(j)]) * cols[b][size_t(j)];
                EXPECT_NEAR(dot, a == b ? 1.0 : 0.0, 1e-6) << "d=" << d;
            }
        }
        std::mt19937 rng(static_cast<uint32_t>(d));
        const std::vector<float> x = outlier_rows(rng, 1, d);
        std::vector<float> y = x;
        hq4_rotate(y.data(), d);
        hq4_unrotate(y.data(), d);
        for (int64_t j = 0; j < d; ++j) EXPECT_NEAR(y[size_t(j)], x[size_t(j)], 2e-5f * 20) << "d=" << d;
    }
    int neg = 0;
    for (int64_t i = 0; i < kHq4MaxDim; ++i) neg += hq4_sign(i) < 0;
    EXPECT_GT(neg, kHq4MaxDim / 2 - 64);  // the signs are mixed, not a constant
    EXPECT_LT(neg, kHq4MaxDim / 2 + 64);
}

// A row is n / 32 iq4_nl blocks (18 bytes each) of R x, each value on the level nearest to its
// value over the block's scale; kv_read_row and the decoder give R^T of them.
TEST(KvHq4, RowsAreIq4NlBlocksOfTheRotatedRow) {
    std::mt19937 rng(5);
    for (int64_t d : {32, 64, 128}) {
        const std::vector<float> x = outlier_rows(rng, 1, d);
        EXPECT_EQ(dtype_row_size(DType::kHQ4, d), size_t(d / 32) * 18u);
        EXPECT_EQ(dtype_row_size(DType::kHQ4, d), dtype_row_size(DType::kQ4_0, d));
        std::vector<uint8_t> got(dtype_row_size(DType::kHQ4, d));
        kv_convert_row(DType::kHQ4, x.data(), got.data(), d);
        std::vector<float> rx = x;
        hq4_rotate(rx.data(), d);
        std::vector<float> rot(static_cast<size_t>(d)), dec(rot.size()), read(rot.size());
        hq4_dequantize_rotated(got.data(), rot.data(), d);
        dequantize_row_ref(DType::kIQ4_NL, got.data(), dec.data(), d);  // the blocks are iq4_nl's
        EXPECT_EQ(rot, dec);
        const auto* blocks = reinterpret_cast<const BlockIQ4_NL*>(got.data());
        for (int64_t j = 0; j < d; ++j) {  // no other level is nearer to the rotated value
            const float s = fp16_to_fp32(blocks[j / 32].d);
            for (int l = 0; l < 16; ++l)
                EXPECT_LE(std::fabs(rot[size_t(j)] - rx[size_t(j)]), std::fabs(s * kIq4nlValues[l] - rx[size_t(j)]) + 1e-5f);
        }
        hq4_unrotate(dec.data(), d);
        const void* page = got.data();
        kv_read_row(DType::kHQ4, &page, 1, int32_t(d), 0, read.data());
        for (int64_t j = 0; j < d; ++j) EXPECT_NEAR(read[size_t(j)], dec[size_t(j)], 1e-5f) << "d=" << d;
        EXPECT_LT(nmse(read, x), 0.02) << "d=" << d;  // a 4-bit approximation of x itself
    }
}

// Error per value at 4.5 bits: q4_0, iq4_nl's levels without the rotation, the rotation with q4_0's
// levels, and hq4 (both). On rows with outlier channels the rotation is what pays; the non-uniform
// levels add to it on the near-Gaussian rotated values.
TEST(KvHq4, LessErrorThanQ4_0AtTheSameBytes) {
    std::mt19937 rng(11);
    for (int64_t d : {64, 128}) {
        const int64_t n = 256;
        const std::vector<float> x = outlier_rows(rng, n, d);
        auto err = [&](DType t, bool rotate) {
            std::vector<float> y(x.size());
            std::vector<uint8_t> q(dtype_row_size(t, d));
            for (int64_t r = 0; r < n; ++r) {
                std::vector<float> row(x.begin() + r * d, x.begin() + (r + 1) * d);
                if (rotate) hq4_rotate(row.data(), d);
                quantize_row_ref(t, row.data(), q.data(), d);
                dequantize_row_ref(t, q.data(), y.data() + r * d, d);
                if (rotate) hq4_unrotate(y.data() + r * d, d);
            }
            return nmse(y, x);
        };
        std::vector<float> y(x.size());
        std::vector<uint8_t> q(dtype_row_size(DType::kHQ4, d));
        for (int64_t r = 0; r < n; ++r) {
            kv_convert_row(DType::kHQ4, x.data() + r * d, q.data(), d);
            hq4_dequantize_row(q.data(), y.data() + r * d, d);
        }
        const double e_q4 = err(DType::kQ4_0, false), e_nl = err(DType::kIQ4_NL, false);
        const double e_rq4 = err(DType::kQ4_0, true), e_hq4 = nmse(y, x);
        std::printf("d=%lld nmse: q4_0 %.3g  iq4_nl %.3g  rotated q4_0 %.3g  hq4 %.3g\n", (long long)d, e_q4, e_nl,
                    e_rq4, e_hq4);
        // hq4 = rotation + iq4_nl blocks, with a quicker scale search than the weights' quantizer
        EXPECT_LT(e_hq4, 1.05 * err(DType::kIQ4_NL, true));
        EXPECT_LT(e_hq4, 0.6 * e_q4);
        EXPECT_LT(e_hq4, e_rq4);
    }
}

TEST(KvHq4, HeadSizesItCannotServeAreRefused) {
    EXPECT_TRUE(kv_type_check(KvType::kHQ4, 64, "kv").ok());
    EXPECT_TRUE(kv_type_check(KvType::kHQ4, 256, "kv").ok());
    const Status s96 = kv_type_check(KvType::kHQ4, 96, "context (K rows)");
    EXPECT_EQ(s96.code(), StatusCode::kUnsupported);
    EXPECT_EQ(s96.message(), "context (K rows): cache type hq4 needs a head size that is a power of two from 32 to "
                             "1024; the model's head size is 96 (use q4_0, q8_0 or f16)");
    EXPECT_EQ(kv_type_check(KvType::kHQ4, 8, "kv").code(), StatusCode::kUnsupported);  // not whole blocks
    EXPECT_EQ(kv_type_check(KvType::kHQ4, 2048, "kv").code(), StatusCode::kUnsupported);
    EXPECT_TRUE(kv_type_check(KvType::kQ4_0, 96, "kv").ok());
    ASSERT_TRUE(kv_type_parse("hq4").ok());
    EXPECT_EQ(*kv_type_parse("hq4"), KvType::kHQ4);
    EXPECT_STREQ(kv_type_name(KvType::kHQ4), "hq4");
    EXPECT_EQ(kv_type_size(KvType::kHQ4), 18u);
    EXPECT_EQ(kv_type_block(KvType::kHQ4), 32);
    EXPECT_EQ(kv_type_parse("hq3").status().message(), "'hq3': expected f16, bf16, f32, q8_0, q4_0 or hq4");
}

}  // namespace
}  // namespace hkv
