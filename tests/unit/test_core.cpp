// Unit tests for src/core: Status/Expected, fp16/bf16 conversion, thread pool, dtype table.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <vector>

#include "core/dtype.h"
#include "core/fp16.h"
#include "core/thread_pool.h"
#include "heterokv/status.h"

namespace hkv {
namespace {

Expected<int> half_of(int x) {
    if (x % 2) return Status::invalid("%d is odd", x);
    return x / 2;
}

Status chain(int x, int* out) {
    HKV_ASSIGN_OR_RETURN(int h, half_of(x));
    HKV_ASSIGN_OR_RETURN(int q, half_of(h));
    *out = q;
    return Status();
}

TEST(Status, ExpectedCarriesValueOrError) {
    auto a = half_of(8);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(*a, 4);
    auto b = half_of(3);
    ASSERT_FALSE(b.ok());
    EXPECT_EQ(b.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(b.status().message(), "3 is odd");
    int out = 0;
    EXPECT_TRUE(chain(8, &out).ok());
    EXPECT_EQ(out, 2);
    Status s = chain(6, &out);
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.with_context("chain").to_string(), "invalid argument: chain: 3 is odd");
}

TEST(Fp16, RoundTripsEveryHalf) {
    for (uint32_t h = 0; h < 0x10000; ++h) {
        const float f = fp16_to_fp32(uint16_t(h));
        if (std::isnan(f)) {
            EXPECT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(f))));
            continue;
        }
        EXPECT_EQ(fp32_to_fp16(f), uint16_t(h)) << "h=" << h;
    }
}

TEST(Fp16, RoundsToNearestEven) {
    EXPECT_EQ(fp16_to_fp32(fp32_to_fp16(1.0f + 1.0f / 2048.0f)), 1.0f);          // tie -> even
    EXPECT_EQ(fp16_to_fp32(fp32_to_fp16(1.0f + 3.0f / 2048.0f)), 1.0f + 2.0f / 1024.0f);
    EXPECT_TRUE(std::isinf(fp16_to_fp32(fp32_to_fp16(70000.0f))));
    EXPECT_EQ(fp16_to_fp32(fp32_to_fp16(5.9604645e-8f)), 5.9604645e-8f);  // smallest subnormal
    EXPECT_EQ(fp16_to_fp32(fp32_to_fp16(2.0e-8f)), 0.0f);
    EXPECT_EQ(bf16_to_fp32(fp32_to_bf16(1.00390625f)), 1.0f);  // tie -> even
    EXPECT_EQ(bf16_to_fp32(fp32_to_bf16(-2.5f)), -2.5f);
}

TEST(ThreadPool, CoversRangeExactlyOnce) {
    for (int nt : {1, 2, 3, 4}) {
        ThreadPool pool(nt);
        for (int64_t n : {int64_t(0), int64_t(1), int64_t(7), int64_t(1000)}) {
            std::vector<std::atomic<int>> hits(size_t(n > 0 ? n : 1));
            for (int rep = 0; rep < 50; ++rep) {
                pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
                    for (int64_t i = b; i < e; ++i) hits[size_t(i)].fetch_add(1);
                });
            }
            for (int64_t i = 0; i < n; ++i) EXPECT_EQ(hits[size_t(i)].load(), 50);
        }
    }
}

TEST(DType, TableMatchesGgml) {
    EXPECT_EQ(dtype_info(DType::kQ4_K)->type_size, 144);
    EXPECT_EQ(dtype_info(DType::kQ6_K)->type_size, 210);
    EXPECT_EQ(dtype_info(DType::kQ8_0)->type_size, 34);
    EXPECT_EQ(dtype_row_size(DType::kQ5_K, 512), 2u * 176u);
    EXPECT_EQ(dtype_info(9999u), nullptr);
    EXPECT_FALSE(dtype_row_ok(DType::kQ4_0, 33));
}

}  // namespace
}  // namespace hkv
