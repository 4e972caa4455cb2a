// sample/score.cpp — per-token scoring arithmetic (include/heterokv/score.h).
#include "heterokv/score.h"

#include <algorithm>
#include <cmath>

namespace hkv {

double log_sum_exp(std::span<const float> logits) {
    double mx = -INFINITY;
    for (float v : logits) mx = std::max(mx, double(v));
    double s = 0.0;
    for (float v : logits) s += std::exp(double(v) - mx);
    return mx + std::log(s);
}

double kl_divergence(std::span<const float> p, double lse_p, std::span<const float> q, double lse_q) {
    double kl = 0.0;
    for (size_t i = 0; i < p.size(); ++i) {
        const double lp = double(p[i]) - lse_p;
        const double lq = double(q[i]) - lse_q;
        kl += std::exp(lp) * (lp - lq);
    }
    return std::max(kl, 0.0);  // rounding can leave -1e-17 for equal rows
}

}  // namespace hkv
