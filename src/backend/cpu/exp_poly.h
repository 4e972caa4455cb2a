// backend/cpu/exp_poly.h — the constants of the vectorised e^x (simd::exp in simd_avx2.h, 8 lanes;
// attn512's exp16 in attn_avx512.cpp, 16 lanes), so both compute the same polynomial:
//   n = round(x log2 e), r = x - n ln2 (ln2 in two parts), e^r ~ 1 + r + r^2 (P0 r^5 + ... + P5),
//   e^x = 2^n e^r.
// Constants only (no inline functions), so the AVX-512 translation units may include it.
#pragma once

namespace hkv::exp_poly {

inline constexpr float kLog2e = 1.44269504088896341f;
inline constexpr float kLn2Hi = 0.693359375f;
inline constexpr float kLn2Lo = -2.12194440e-4f;
inline constexpr int kDegree = 6;
inline constexpr float kP[kDegree] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                      4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

}  // namespace hkv::exp_poly
