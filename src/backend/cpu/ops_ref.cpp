// backend/cpu/ops_ref.cpp — scalar references of the ops in ops.h (namespace hkv::ref).
//
// Written for clarity, never optimized: the tests compare the fast kernels against these. Sums are
// accumulated in double; attention materializes one row of scores at a time.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "backend/cpu/kv_hq4.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/quant_blocks.h"
#include "core/assert.h"
#include "core/fp16.h"

namespace hkv::ref {

void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += double(x[i]) * double(x[i]);
    const float mean = float(sum / double(n));
    const float scale = 1.0f / std::sqrt(mean + eps);
    for (int64_t i = 0; i < n; ++i) {
        const float v = x[i] * scale;
        y[i] = w ? v * w[i] : v;
    }
}

void softmax(float* x, int64_t n) {
    if (n <= 0) return;
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        const double e = std::exp(double(x[i]) - double(mx));
        x[i] = float(e);
        sum += e;
    }
    const double inv = 1.0 / sum;
    for (int64_t i = 0; i < n; ++i) x[i] = float(double(x[i]) * inv);
}

void swiglu(float* gate, const float* up, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const double g = gate[i];
        gate[i] = float(g / (1.0 + std::exp(-g)) * double(up[i]));
    }
}

void geglu(float* gate, const float* up, int64_t n) {
    const double k = std::sqrt(2.0 / 3.14159265358979323846);
    for (int64_t i = 0; i < n; ++i) {
        const double x = gate[i];
        // 0.5 x (1 + tanh(z)) written as x / (1 + e^(-2z)): no cancellation for large negative x
        gate[i] = float(x / (1.0 + std::exp(-2.0 * k * (x + 0.044715 * x * x * x))) * double(up[i]));
    }
}

// Angles follow ggml's rope cache: theta_scale = base^(-2/n_rot) in float and theta_i is built by
// repeated multiplication, theta_i = pos * theta_scale^i; then / freq_factors[i] and * freq_scale.
void rope(const RopeParams& p, float* x, const int32_t* pos, int64_t n_tok, int64_t n_head,
          int64_t head_dim) {
    HKV_ASSERT(p.n_rot > 0 && p.n_rot % 2 == 0 && p.n_rot <= head_dim, "bad n_rot %d",
               int(p.n_rot));
    const int64_t half = p.n_rot / 2;
    const float theta_scale = std::pow(p.freq_base, -2.0f / float(p.n_rot));
    for (int64_t it = 0; it < n_tok; ++it) {
        float theta = float(pos[it]);
        for (int64_t i = 0; i < half; ++i) {
            const float ff = p.freq_factors ? p.freq_factors[i] : 1.0f;
            const float th = p.freq_scale * (theta / ff);
            const float c = std::cos(th) * p.attn_factor, s = std::sin(th) * p.attn_factor;
            theta *= theta_scale;
            for (int64_t ih = 0; ih < n_head; ++ih) {
                float* r = x + (it * n_head + ih) * head_dim;
                const int64_t i0 = p.style == RopeStyle::kNorm ? 2 * i : i;
                const int64_t i1 = p.style == RopeStyle::kNorm ? 2 * i + 1 : i + half;
                const float a = r[i0], b = r[i1];
                r[i0] = a * c - b * s;
                r[i1] = a * s + b * c;
            }
        }
    }
}

namespace {

double kv_at(DType t, const void* row, int64_t d) {
    switch (t) {
        case DType::kF32: return static_cast<const float*>(row)[d];
        case DType::kF16: return fp16_to_fp32(static_cast<const uint16_t*>(row)[d]);
        case DType::kBF16: return bf16_to_fp32(static_cast<const uint16_t*>(row)[d]);
        case DType::kQ8_0: {  // block d / 32: f16 scale, int8 qs[32]
            const auto& b = static_cast<const BlockQ8_0*>(row)[d / kQk];
            return double(fp16_to_fp32(b.d)) * b.qs[d % kQk];
        }
        case DType::kQ4_0: {  // block d / 32: f16 scale, qs[16]: element j < 16 low nibble of qs[j], else high of qs[j - 16]
            const auto& b = static_cast<const BlockQ4_0*>(row)[d / kQk];
            const int j = int(d % kQk);
            const int q = j < kQk / 2 ? b.qs[j] & 15 : b.qs[j - kQk / 2] >> 4;
            return double(fp16_to_fp32(b.d)) * (q - 8);
        }
        default: HKV_ASSERT(false, "kv type %s unsupported", dtype_name(t));
    }
    return 0.0;
}

// out[D] = the decoded row (hq4: its blocks' values un-rotated, kv_hq4.h; else value by value).
void kv_decode(DType t, const void* row, int64_t D, std::vector<double>& out) {
    out.resize(size_t(D));
    if (t == DType::kHQ4) {
        std::vector<float> f(static_cast<size_t>(D));
        hq4_dequantize_row(row, f.data(), D);
        for (int64_t d = 0; d < D; ++d) out[size_t(d)] = f[size_t(d)];
        return;
    }
    for (int64_t d = 0; d < D; ++d) out[size_t(d)] = kv_at(t, row, d);
}

// q·k for a q8_0 / q4_0 / hq4 key row k as the kernels define it (ops.h): the scaled query qs [D]
// (hq4: rotated, R q) quantized per block of 32 (d_q = max|x| / 127, x_i -> nearbyint(x_i * 127 /
// max|x|)), integer dots of the blocks, each times d_q * d_k.
double quantized_query_dot(const float* qs, DType t, const void* k, int64_t D) {
    double dot = 0.0;
    for (int64_t b = 0; b < D / kQk; ++b) {
        const float* x = qs + b * kQk;
        float amax = 0.0f;
        for (int i = 0; i < kQk; ++i) amax = std::max(amax, std::fabs(x[i]));
        const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
        int64_t isum = 0;
        float dk = 0.0f;
        for (int i = 0; i < kQk; ++i) {
            const int64_t qv = int64_t(std::nearbyint(x[i] * id));
            int64_t kv;
            if (t == DType::kQ8_0) {
                const auto& blk = static_cast<const BlockQ8_0*>(k)[b];
                kv = blk.qs[i], dk = fp16_to_fp32(blk.d);
            } else if (t == DType::kQ4_0) {
                const auto& blk = static_cast<const BlockQ4_0*>(k)[b];
                kv = (i < kQk / 2 ? blk.qs[i] & 15 : blk.qs[i - kQk / 2] >> 4) - 8, dk = fp16_to_fp32(blk.d);
            } else {  // hq4: iq4_nl levels of the rotated row
                const auto& blk = static_cast<const BlockIQ4_NL*>(k)[b];
                kv = kIq4nlValues[i < kQk / 2 ? blk.qs[i] & 15 : blk.qs[i - kQk / 2] >> 4], dk = fp16_to_fp32(blk.d);
            }
            isum += qv * kv;
        }
        dot += double(amax / 127.0f) * double(dk) * double(isum);
    }
    return dot;
}

const void* kv_row(const void* const* pages, DType t, int32_t page_size, int32_t head_dim,
                   int64_t s) {
    const size_t row_bytes = dtype_row_size(t, head_dim);
    const char* page = static_cast<const char*>(pages[s / page_size]);
    return page + size_t(s % page_size) * row_bytes;
}

}  // namespace

void attention(const AttnParams& p, const float* q, const int32_t* qpos, int64_t n_tok,
               const AttnKvHead* heads, float* out, float* lse) {
    HKV_ASSERT(p.n_head_kv > 0 && p.n_head % p.n_head_kv == 0, "n_head %d, n_head_kv %d",
               int(p.n_head), int(p.n_head_kv));
    const int64_t D = p.head_dim;
    const int32_t group = p.n_head / p.n_head_kv;
    std::vector<double> score;  // [n_slot]
    std::vector<double> acc(static_cast<size_t>(D));  // [head_dim]
    std::vector<double> row;                           // [head_dim] a decoded K or V row
    std::vector<float> qs(static_cast<size_t>(D));     // [head_dim] scaled query (q8_0 / q4_0 keys)
    for (int64_t it = 0; it < n_tok; ++it) {
        for (int32_t ih = 0; ih < p.n_head; ++ih) {
            const AttnKvHead& kv = heads[ih / group];
            const float* qr = q + (it * p.n_head + ih) * D;   // [head_dim]
            float* o = out + (it * p.n_head + ih) * D;        // [head_dim]
            score.assign(size_t(kv.n_slot), 0.0);
            double mx = -std::numeric_limits<double>::infinity();
            auto visible = [&](int32_t s) { return attn_visible(p, kv.pos[s], qpos[it]); };
            const bool qquant = kv.k_type == DType::kQ8_0 || kv.k_type == DType::kQ4_0 || kv.k_type == DType::kHQ4;
            for (int64_t d = 0; d < D; ++d) qs[size_t(d)] = qr[d] * p.scale;
            if (kv.k_type == DType::kHQ4) hq4_rotate(qs.data(), D);  // (R q)·(R k) = q·k
            for (int32_t s = 0; s < kv.n_slot; ++s) {
                if (!visible(s)) continue;
                const void* kr = kv_row(kv.k_pages, kv.k_type, p.page_size, p.head_dim, s);
                if (qquant) {
                    score[size_t(s)] = quantized_query_dot(qs.data(), kv.k_type, kr, D);
                } else {
                    kv_decode(kv.k_type, kr, D, row);
                    double dot = 0.0;
                    for (int64_t d = 0; d < D; ++d) dot += double(qr[d]) * row[size_t(d)];
                    score[size_t(s)] = dot * double(p.scale);
                }
                if (p.softcap > 0.0f) score[size_t(s)] = p.softcap * std::tanh(score[size_t(s)] / p.softcap);
                mx = std::max(mx, score[size_t(s)]);
            }
            std::fill(acc.begin(), acc.end(), 0.0);
            double sum = 0.0;
            for (int32_t s = 0; s < kv.n_slot; ++s) {
                if (!visible(s)) continue;
                const double e = std::exp(score[size_t(s)] - mx);
                sum += e;
                const void* vr = kv_row(kv.v_pages, kv.v_type, p.page_size, p.head_dim, s);
                kv_decode(kv.v_type, vr, D, row);
                for (int64_t d = 0; d < D; ++d) acc[size_t(d)] += e * row[size_t(d)];
            }
            for (int64_t d = 0; d < D; ++d) o[d] = sum > 0.0 ? float(acc[size_t(d)] / sum) : 0.0f;
            if (lse) lse[it * p.n_head + ih] = sum > 0.0 ? float(mx + std::log(sum)) : -INFINITY;
        }
    }
}

}  // namespace hkv::ref
