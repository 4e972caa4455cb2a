// tests/ops/quant_test_util.h — helpers shared by the weight-kernel tests (test_quant, test_repack).
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "backend/cpu/quant.h"

namespace hkv::test {

// n normal values of standard deviation `scale` (deterministic per seed).
inline std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, scale);
    std::vector<float> v(n);
    for (float& f : v) f = nd(rng);
    return v;
}

// x [rows, n] quantized row by row with the reference quantizer: [rows, dtype_row_size(t, n)] bytes.
inline std::vector<uint8_t> quantize(DType t, const std::vector<float>& x, int64_t rows, int64_t n) {
    const size_t rb = dtype_row_size(t, n);
    std::vector<uint8_t> q(rb * size_t(rows));
    for (int64_t r = 0; r < rows; ++r) quantize_row_ref(t, x.data() + r * n, q.data() + size_t(r) * rb, n);
    return q;
}

// sum |w_i x_i| over the dequantized operands: the scale of float rounding in a dot product.
inline double abs_dot(DType t, const uint8_t* w, const uint8_t* xq, int64_t n) {
    std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
    dequantize_row_ref(t, w, a.data(), n);
    dequantize_row_ref(vec_dot_type(t), xq, b.data(), n);
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += std::fabs(double(a[i]) * b[i]);
    return s;
}

}  // namespace hkv::test
