// Ops tests: every fast op in backend/cpu/ops.h against its scalar reference (hkv::ref) by NMSE /
// max error over odd shapes; RoPE also against hand-computed angles; KV conversion bit-exact
// against core/fp16.h.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/cpu/scores.h"
#include "scores_before.h"
#include "core/fp16.h"

namespace hkv {
namespace {

struct ErrStats {
    double nmse = 0.0, max_abs = 0.0;
};

ErrStats compare(const float* got, const float* want, size_t n) {
    double num = 0.0, den = 0.0, mx = 0.0;
    for (size_t i = 0; i < n; ++i) {
        const double d = double(got[i]) - double(want[i]);
        num += d * d;
        den += double(want[i]) * double(want[i]);
        mx = std::max(mx, std::isnan(d) ? INFINITY : std::fabs(d));
    }
    return {den > 0 ? num / den : num, mx};
}

std::vector<float> randn(std::mt19937& rng, size_t n, float sigma = 1.0f) {
    std::normal_distribution<float> dist(0.0f, sigma);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

// ---- row ops ----

TEST(Ops, RmsNormMatchesRef) {
    std::mt19937 rng(1);
    for (int64_t n : {1, 7, 8, 15, 33, 4096, 5003}) {
        for (bool with_w : {false, true}) {
            SCOPED_TRACE(testing::Message() << "n=" << n << " w=" << with_w);
            const auto x = randn(rng, size_t(n), 3.0f);
            const auto w = randn(rng, size_t(n));
            std::vector<float> y(static_cast<size_t>(n)), y_ref(static_cast<size_t>(n));
            rmsnorm(x.data(), with_w ? w.data() : nullptr, y.data(), n, 1e-5f);
            ref::rmsnorm(x.data(), with_w ? w.data() : nullptr, y_ref.data(), n, 1e-5f);
            for (size_t i = 0; i < size_t(n); ++i)
                ASSERT_NEAR(y[i], y_ref[i], 2e-6f * std::fabs(y_ref[i]) + 1e-30f) << i;
            std::vector<float> inplace = x;  // y may alias x
            rmsnorm(inplace.data(), with_w ? w.data() : nullptr, inplace.data(), n, 1e-5f);
            EXPECT_EQ(0, std::memcmp(inplace.data(), y.data(), y.size() * sizeof(float)));
        }
    }
}

TEST(Ops, SoftmaxMatchesRef) {
    std::mt19937 rng(2);
    for (int64_t n : {1, 5, 8, 17, 1000, 32001}) {
        SCOPED_TRACE(testing::Message() << "n=" << n);
        auto x = randn(rng, size_t(n), 8.0f);
        if (n > 4) x[3] = -INFINITY;  // a masked entry
        auto y = x, y_ref = x;
        softmax(y.data(), n);
        ref::softmax(y_ref.data(), n);
        double sum = 0.0;
        for (size_t i = 0; i < size_t(n); ++i) {
            // x - max is rounded in float: ~|x - max| * 2^-24 relative error on top of exp
            ASSERT_NEAR(y[i], y_ref[i], 4e-6f * y_ref[i] + 1e-38f) << i;
            sum += y[i];
        }
        EXPECT_NEAR(sum, 1.0, 1e-5);
        if (n > 4) {
            EXPECT_EQ(y[3], 0.0f);
        }
    }
}

TEST(Ops, SwigluMatchesRef) {
    std::mt19937 rng(3);
    for (int64_t n : {1, 9, 64, 11008 + 3}) {
        SCOPED_TRACE(testing::Message() << "n=" << n);
        auto g = randn(rng, size_t(n), 6.0f);
        if (n > 4) g[0] = 95.0f, g[1] = -95.0f, g[2] = 0.0f, g[3] = -20.0f;  // saturated tails
        const auto up = randn(rng, size_t(n));
        auto y = g, y_ref = g;
        swiglu(y.data(), up.data(), n);
        ref::swiglu(y_ref.data(), up.data(), n);
        for (size_t i = 0; i < size_t(n); ++i)
            ASSERT_NEAR(y[i], y_ref[i], 1e-6f * std::fabs(y_ref[i]) + 1e-37f) << "g=" << g[i];
    }
}

TEST(Ops, GegluMatchesRef) {
    std::mt19937 rng(33);
    for (int64_t n : {1, 9, 64, 9216 + 5}) {
        SCOPED_TRACE(testing::Message() << "n=" << n);
        auto g = randn(rng, size_t(n), 4.0f);
        if (n > 4) g[0] = 60.0f, g[1] = -60.0f, g[2] = 0.0f, g[3] = -7.0f;  // saturated tails
        const auto up = randn(rng, size_t(n));
        auto y = g, y_ref = g;
        geglu(y.data(), up.data(), n);
        ref::geglu(y_ref.data(), up.data(), n);
        for (size_t i = 0; i < size_t(n); ++i)
            ASSERT_NEAR(y[i], y_ref[i], 5e-6f * std::fabs(y_ref[i]) + 1e-12f * std::fabs(up[i])) << "g=" << g[i];  // far tail: ~0
    }
    // gelu(1) with the tanh approximation, by hand: 0.5 (1 + tanh(sqrt(2/pi) 1.044715)) = 0.841192
    float one = 1.0f;
    const float up1 = 1.0f;
    geglu(&one, &up1, 1);
    EXPECT_NEAR(one, 0.841192f, 1e-6f);
}

TEST(Ops, AddInplace) {
    std::mt19937 rng(4);
    const auto a = randn(rng, 37), b = randn(rng, 37);
    auto y = a;
    add_inplace(y.data(), b.data(), 37);
    for (size_t i = 0; i < 37; ++i) EXPECT_EQ(y[i], a[i] + b[i]);
}

// ---- RoPE ----

// Hand-computed: theta_i = pos * base^(-2i/n_rot) * freq_scale / ff_i on a 6-wide head with n_rot 4.
TEST(Ops, RopeHandComputed) {
    const float ff[2] = {1.0f, 4.0f};
    const int32_t pos[3] = {0, 3, 7};
    const int64_t n_head = 2, head_dim = 6;
    for (RopeStyle style : {RopeStyle::kNorm, RopeStyle::kNeox}) {
        for (bool use_ff : {false, true}) {
            for (bool fast : {false, true}) {
                SCOPED_TRACE(testing::Message() << "neox=" << (style == RopeStyle::kNeox)
                                                << " ff=" << use_ff << " fast=" << fast);
                RopeParams p;
                p.style = style, p.n_rot = 4, p.freq_base = 100.0f, p.freq_scale = 0.5f;
                p.freq_factors = use_ff ? ff : nullptr;
                std::vector<float> x(3 * n_head * head_dim);
                for (size_t i = 0; i < x.size(); ++i) x[i] = float(i % 7) - 2.5f + 0.1f * float(i);
                const auto x0 = x;
                if (fast) rope(p, x.data(), pos, 3, n_head, head_dim);
                else ref::rope(p, x.data(), pos, 3, n_head, head_dim);
                for (int t = 0; t < 3; ++t) {
                    for (int h = 0; h < n_head; ++h) {
                        const float* in = x0.data() + (t * n_head + h) * head_dim;
                        const float* o = x.data() + (t * n_head + h) * head_dim;
                        double want[6] = {in[0], in[1], in[2], in[3], in[4], in[5]};
                        for (int i = 0; i < 2; ++i) {
                            const double th = pos[t] * std::pow(100.0, -2.0 * i / 4) * 0.5 /
                                              (use_ff ? ff[i] : 1.0);
                            const int i0 = style == RopeStyle::kNorm ? 2 * i : i;
                            const int i1 = style == RopeStyle::kNorm ? 2 * i + 1 : i + 2;
                            want[i0] = in[i0] * std::cos(th) - in[i1] * std::sin(th);
                            want[i1] = in[i0] * std::sin(th) + in[i1] * std::cos(th);
                        }
                        for (int d = 0; d < 6; ++d) EXPECT_NEAR(o[d], want[d], 2e-5) << t << h << d;
                        EXPECT_EQ(o[4], in[4]);  // dims >= n_rot untouched
                        EXPECT_EQ(o[5], in[5]);
                    }
                }
            }
        }
    }
}

TEST(Ops, RopeMatchesRef) {
    std::mt19937 rng(5);
    std::vector<float> ff(64);
    for (size_t i = 0; i < ff.size(); ++i) ff[i] = 1.0f + float(i % 5);
    for (RopeStyle style : {RopeStyle::kNorm, RopeStyle::kNeox}) {
        for (int32_t n_rot : {128, 64, 12}) {
            for (bool use_ff : {false, true}) {
                SCOPED_TRACE(testing::Message() << "neox=" << (style == RopeStyle::kNeox)
                                                << " n_rot=" << n_rot << " ff=" << use_ff);
                RopeParams p;
                p.style = style, p.n_rot = n_rot, p.freq_base = 500000.0f, p.freq_scale = 0.25f;
                p.freq_factors = use_ff ? ff.data() : nullptr;
                p.attn_factor = use_ff ? 1.19f : 1.0f;  // LongRoPE's magnitude factor with its factors
                const int64_t n_tok = 5, n_head = 3, head_dim = 128;
                const int32_t pos[n_tok] = {0, 1, 17, 4095, 131000};
                auto x = randn(rng, size_t(n_tok * n_head * head_dim));
                auto x_ref = x;
                rope(p, x.data(), pos, n_tok, n_head, head_dim);
                ref::rope(p, x_ref.data(), pos, n_tok, n_head, head_dim);
                const ErrStats e = compare(x.data(), x_ref.data(), x.size());
                EXPECT_LT(e.max_abs, 2e-6);
            }
        }
    }
}

// ---- KV conversion ----

TEST(Ops, KvConvertRowBitExact) {
    std::mt19937 rng(6);
    std::vector<float> src;
    for (int i = 0; i < 20000; ++i) {  // random bit patterns cover subnormals, huge values, ties
        uint32_t bits = rng();
        if ((bits & 0x7f800000u) == 0x7f800000u) bits &= ~0x00800000u;  // no inf/nan here
        src.push_back(fp32_from_bits(bits));
    }
    for (float v : {0.0f, -0.0f, 65504.0f, 65519.0f, 65520.0f, 1e-8f, 2.9802322e-8f, 5.9604645e-8f,
                    6.0975552e-5f, 1.0009765625f, INFINITY, -INFINITY, 1.0e38f})
        src.push_back(v);
    for (uint32_t h = 0; h < 0x7c00u; h += 7) {  // exact midpoints between f16 neighbours
        const float a = fp16_to_fp32(uint16_t(h)), b = fp16_to_fp32(uint16_t(h + 1));
        src.push_back(0.5f * (a + b));
    }
    src.push_back(NAN);
    const int64_t n = int64_t(src.size());
    std::vector<uint16_t> h16(static_cast<size_t>(n)), b16(static_cast<size_t>(n));
    std::vector<float> f32(static_cast<size_t>(n));
    kv_convert_row(DType::kF16, src.data(), h16.data(), n);
    kv_convert_row(DType::kBF16, src.data(), b16.data(), n);
    kv_convert_row(DType::kF32, src.data(), f32.data(), n);
    for (int64_t i = 0; i < n; ++i) {
        const float x = src[size_t(i)];
        if (std::isnan(x)) {
            EXPECT_TRUE(std::isnan(fp16_to_fp32(h16[size_t(i)])));
            EXPECT_TRUE(std::isnan(bf16_to_fp32(b16[size_t(i)])));
            continue;
        }
        ASSERT_EQ(h16[size_t(i)], fp32_to_fp16(x)) << "f16 of " << x << " at " << i;
        ASSERT_EQ(b16[size_t(i)], fp32_to_bf16(x)) << "bf16 of " << x << " at " << i;
        ASSERT_EQ(fp32_to_bits(f32[size_t(i)]), fp32_to_bits(x));
    }
}

// ---- attention ----

// A paged KV store for n_head_kv heads, filled through kv_convert_row. Rows of the last page past
// n_slot hold NaN so that reading them would poison the result.
struct PagedKv {
    DType type;
    int32_t page_size, head_dim, n_slot;
    std::vector<std::unique_ptr<uint8_t[]>> storage;
    std::vector<std::vector<const void*>> k_ptrs, v_ptrs;  // [n_head_kv][n_pages]
    std::vector<int32_t> pos;                               // [n_slot], shared by the heads
    std::vector<AttnKvHead> heads;                          // [n_head_kv]

    PagedKv(std::mt19937& rng, DType t, int32_t n_head_kv, int32_t ps, int32_t d, int32_t n,
            std::vector<int32_t> positions)
        : type(t), page_size(ps), head_dim(d), n_slot(n), pos(std::move(positions)) {
        const size_t row_bytes = dtype_row_size(t, d);
        const int32_t n_pages = std::max(1, (n + ps - 1) / ps);
        std::vector<float> nan_row(static_cast<size_t>(d), NAN);
        k_ptrs.resize(size_t(n_head_kv)), v_ptrs.resize(size_t(n_head_kv));
        for (int32_t ih = 0; ih < n_head_kv; ++ih) {
            for (int kv = 0; kv < 2; ++kv) {
                for (int32_t pg = 0; pg < n_pages; ++pg) {
                    storage.emplace_back(new uint8_t[row_bytes * size_t(ps)]);
                    uint8_t* page = storage.back().get();
                    for (int32_t r = 0; r < ps; ++r) {
                        const int32_t s = pg * ps + r;
                        const auto row = randn(rng, size_t(d));
                        kv_convert_row(t, s < n ? row.data() : nan_row.data(), page + r * row_bytes, d);
                    }
                    (kv == 0 ? k_ptrs : v_ptrs)[size_t(ih)].push_back(page);
                }
            }
        }
        for (int32_t ih = 0; ih < n_head_kv; ++ih)
            heads.push_back({k_ptrs[size_t(ih)].data(), v_ptrs[size_t(ih)].data(), PosLane(pos.data(), pos.size()), n, t, t});
    }
};

// Ascending positions with gaps (as left by eviction), starting at `first`.
std::vector<int32_t> gapped_positions(std::mt19937& rng, int32_t n, int32_t first) {
    std::vector<int32_t> p(static_cast<size_t>(n));
    int32_t cur = first;
    for (int32_t i = 0; i < n; ++i) {
        p[size_t(i)] = cur;
        cur += 1 + int32_t(rng() % 3);
    }
    return p;
}

struct AttnCase {
    int32_t n_slot, page_size, head_dim, group, n_head_kv;
    DType type;
    int n_threads;
};

ThreadPool& pool_of(int n) {
    static ThreadPool p1(1), p2(2), p3(3);
    return n == 1 ? p1 : n == 2 ? p2 : p3;
}

// Runs fast vs ref for the given queries; returns the error.
ErrStats run_attention(const AttnCase& c, const PagedKv& kv, const std::vector<float>& q,
                       const std::vector<int32_t>& qpos, std::vector<float>* out_fast = nullptr) {
    AttnParams p;
    p.n_head = c.group * c.n_head_kv, p.n_head_kv = c.n_head_kv, p.head_dim = c.head_dim;
    p.page_size = c.page_size, p.scale = 1.0f / std::sqrt(float(c.head_dim));
    const int64_t n_tok = int64_t(qpos.size());
    std::vector<float> out(q.size(), 12345.0f), out_ref(q.size(), -1.0f);
    attention(pool_of(c.n_threads), p, q.data(), qpos.data(), n_tok, kv.heads.data(), out.data());
    ref::attention(p, q.data(), qpos.data(), n_tok, kv.heads.data(), out_ref.data());
    if (out_fast) *out_fast = out;
    return compare(out.data(), out_ref.data(), out.size());
}

const char* tname(DType t) { return dtype_name(t); }

TEST(Attention, DecodeGrid) {
    std::mt19937 rng(7);
    int idx = 0;
    for (int32_t n_slot : {1, 17, 97, 4096}) {
        for (int32_t ps : {16, 256}) {
            for (int32_t d : {8, 12, 32, 64, 128}) {  // 12: not a multiple of 8 (f32 side buffers)
                for (int32_t group : {1, 3, 4}) {
                    for (DType t : {DType::kF32, DType::kF16, DType::kBF16}) {
                        const AttnCase c{n_slot, ps, d, group, 2, t, 1 + idx++ % 3};
                        SCOPED_TRACE(testing::Message() << "n_slot=" << n_slot << " ps=" << ps
                                     << " d=" << d << " group=" << group << " " << tname(t)
                                     << " threads=" << c.n_threads);
                        const PagedKv kv(rng, t, c.n_head_kv, ps, d, n_slot,
                                         gapped_positions(rng, n_slot, 0));
                        const auto q = randn(rng, size_t(group * 2 * d), 2.0f);
                        // sees everything, then only a prefix (slots after qpos are masked)
                        for (int32_t qp : {kv.pos.back() + 1, kv.pos[size_t(n_slot / 2)]}) {
                            const ErrStats e = run_attention(c, kv, q, {qp});
                            ASSERT_LT(e.nmse, 1e-10) << "qpos " << qp;
                            ASSERT_LT(e.max_abs, 2e-5) << "qpos " << qp;
                        }
                    }
                }
            }
        }
    }
}

// Prefill / continuation: a cache of n_prev older slots plus the n_tok new ones, queries causal by
// position; also tokens scattered non-contiguously in the slots (positions not ascending).
TEST(Attention, PrefillCausal) {
    std::mt19937 rng(8);
    int idx = 0;
    for (int32_t n_tok : {1, 2, 7, 16, 17, 40, 64}) {
        for (int32_t n_prev : {0, 97, 300}) {
            for (int32_t d : {8, 12, 64, 128}) {
                const DType t = idx % 3 == 0 ? DType::kF32 : idx % 3 == 1 ? DType::kF16 : DType::kBF16;
                const int32_t group = idx % 2 ? 4 : 3;
                const int32_t ps = idx % 4 < 2 ? 16 : 256;
                const AttnCase c{n_prev + n_tok, ps, d, group, 2, t, 1 + (idx / 3) % 3};
                ++idx;
                SCOPED_TRACE(testing::Message() << "n_tok=" << n_tok << " n_prev=" << n_prev
                             << " d=" << d << " group=" << group << " ps=" << ps << " "
                             << tname(t) << " threads=" << c.n_threads);
                auto positions = gapped_positions(rng, c.n_slot, 3);
                if (idx % 5 == 0) std::shuffle(positions.begin(), positions.end(), rng);
                const PagedKv kv(rng, t, c.n_head_kv, ps, d, c.n_slot, positions);
                std::vector<int32_t> qpos(kv.pos.end() - n_tok, kv.pos.end());
                const auto q = randn(rng, size_t(n_tok * group * 2 * d), 2.0f);
                const ErrStats e = run_attention(c, kv, q, qpos);
                ASSERT_LT(e.nmse, 1e-10);
                ASSERT_LT(e.max_abs, 2e-5);
            }
        }
    }
}

// Queries before every slot's position see nothing and must give exact zeros.
TEST(Attention, QueryWithNoVisibleSlot) {
    std::mt19937 rng(9);
    for (int n_threads : {1, 2, 3}) {
        for (int32_t n_slot : {5, 700}) {
            const AttnCase c{n_slot, 16, 32, 4, 2, DType::kF16, n_threads};
            const PagedKv kv(rng, c.type, c.n_head_kv, c.page_size, c.head_dim, n_slot,
                             gapped_positions(rng, n_slot, 100));
            const std::vector<int32_t> qpos = {5, 99, 100, kv.pos.back()};
            const auto q = randn(rng, qpos.size() * 8 * 32);
            std::vector<float> out;
            const ErrStats e = run_attention(c, kv, q, qpos, &out);
            EXPECT_LT(e.nmse, 1e-10);
            for (size_t i = 0; i < 2 * 8 * 32; ++i) ASSERT_EQ(out[i], 0.0f) << i;
            // qpos 100 sees only slot 0: the output is exactly V[0] up to rounding
            const float* o = out.data() + 2 * 8 * 32;
            float v0[32];
            for (int dd = 0; dd < 32; ++dd)
                v0[dd] = fp16_to_fp32(static_cast<const uint16_t*>(kv.heads[0].v_pages[0])[dd]);
            for (int dd = 0; dd < 32; ++dd) EXPECT_NEAR(o[dd], v0[dd], 1e-6f);
        }
    }
}

// Long decode split across threads (split-K + log-sum-exp merge), including a 40000-slot cache.
TEST(Attention, DecodeSplitK) {
    std::mt19937 rng(10);
    for (int32_t n_slot : {4096, 40000}) {
        for (DType t : {DType::kF32, DType::kF16, DType::kBF16}) {
            for (int n_threads : {2, 3}) {
                const AttnCase c{n_slot, 256, 64, 4, 1, t, n_threads};
                SCOPED_TRACE(testing::Message() << "n_slot=" << n_slot << " " << tname(t)
                                                << " threads=" << n_threads);
                const PagedKv kv(rng, t, 1, 256, 64, n_slot, gapped_positions(rng, n_slot, 0));
                const auto q = randn(rng, 4 * 64, 3.0f);
                for (int32_t qp : {kv.pos.back(), kv.pos[size_t(n_slot / 3)], kv.pos[0]}) {
                    const ErrStats e = run_attention(c, kv, q, {qp});
                    ASSERT_LT(e.nmse, 1e-10) << "qpos " << qp;
                    ASSERT_LT(e.max_abs, 2e-5) << "qpos " << qp;
                }
            }
        }
    }
}

AttnParams params_of(const AttnCase& c);

// Sliding window (slots with qpos - pos >= window are invisible) and soft-capped scores, on decode,
// split-K decode and prefill, against the reference; a window shorter than the gaps leaves queries
// with nothing visible (zeros).
TEST(Attention, WindowAndSoftcap) {
    std::mt19937 rng(12);
    int idx = 0;
    for (int32_t n_slot : {97, 4096}) {
        for (int32_t window : {1, 5, 64, 1000}) {
            for (float cap : {0.0f, 2.0f, 50.0f}) {
                const DType t = idx % 3 == 0 ? DType::kF32 : idx % 3 == 1 ? DType::kF16 : DType::kBF16;
                const AttnCase c{n_slot, 64, 128, 2, 2, t, 1 + idx++ % 3};
                SCOPED_TRACE(testing::Message() << "n_slot=" << n_slot << " window=" << window << " cap=" << cap
                             << " " << tname(t) << " threads=" << c.n_threads);
                const PagedKv kv(rng, t, c.n_head_kv, c.page_size, c.head_dim, n_slot, gapped_positions(rng, n_slot, 0));
                AttnParams p = params_of(c);
                p.window = window, p.softcap = cap;
                for (int32_t n_tok : {1, 20}) {
                    std::vector<int32_t> qpos(kv.pos.end() - n_tok, kv.pos.end());
                    const auto q = randn(rng, size_t(n_tok) * 4 * 128, 3.0f);
                    std::vector<float> out(q.size()), out_ref(q.size());
                    attention(pool_of(c.n_threads), p, q.data(), qpos.data(), n_tok, kv.heads.data(), out.data());
                    ref::attention(p, q.data(), qpos.data(), n_tok, kv.heads.data(), out_ref.data());
                    const ErrStats e = compare(out.data(), out_ref.data(), out.size());
                    ASSERT_LT(e.max_abs, 2e-5) << "n_tok " << n_tok;
                }
            }
        }
    }
    // window 1: a query sees only a slot at its own position; gapped positions end with qpos itself
    const AttnCase c{9, 16, 32, 1, 1, DType::kF32, 1};
    const PagedKv kv(rng, c.type, 1, 16, 32, 9, {0, 2, 4, 6, 8, 10, 12, 14, 16});
    AttnParams p = params_of(c);
    p.window = 1;
    const std::vector<int32_t> qpos = {15, 16};
    const auto q = randn(rng, 2 * 32);
    std::vector<float> out(q.size(), 1.0f);
    attention(pool_of(1), p, q.data(), qpos.data(), 2, kv.heads.data(), out.data());
    for (int d = 0; d < 32; ++d) EXPECT_EQ(out[size_t(d)], 0.0f);  // 15: nothing at 15
    const float* v8 = static_cast<const float*>(kv.heads[0].v_pages[0]) + 8 * 32;  // slot 8 = position 16
    for (int d = 0; d < 32; ++d) EXPECT_NEAR(out[size_t(32 + d)], v8[d], 1e-6f);
}

// Thread count must not change the result beyond rounding (and must not race).
TEST(Attention, ThreadCountsAgree) {
    std::mt19937 rng(11);
    const AttnCase c{1000, 16, 64, 4, 2, DType::kF16, 1};
    const PagedKv kv(rng, c.type, 2, 16, 64, 1000, gapped_positions(rng, 1000, 0));
    std::vector<int32_t> qpos(33);
    for (size_t i = 0; i < qpos.size(); ++i) qpos[i] = kv.pos[967 + i];
    const auto q = randn(rng, qpos.size() * 8 * 64);
    std::vector<float> o1, o3;
    AttnCase c3 = c;
    c3.n_threads = 3;
    run_attention(c, kv, q, qpos, &o1);
    run_attention(c3, kv, q, qpos, &o3);
    EXPECT_LT(compare(o3.data(), o1.data(), o1.size()).max_abs, 1e-6);
}

// ---- row log-sum-exp output and the column sums computed from it (EMS) ----

AttnParams params_of(const AttnCase& c) {
    AttnParams p;
    p.n_head = c.group * c.n_head_kv, p.n_head_kv = c.n_head_kv, p.head_dim = c.head_dim;
    p.page_size = c.page_size, p.scale = 1.0f / std::sqrt(float(c.head_dim));
    return p;
}

// Uneven heads (a compressed cache: a few heads keep every slot, others a handful or none): each
// head is split into ranges by its own length; output and log-sum-exp against the reference.
TEST(Attention, DecodeUnevenHeads) {
    std::mt19937 rng(12);
    const std::vector<std::vector<int32_t>> layouts = {
        {3000, 3, 0, 600, 3000, 256, 513, 1},  // two long heads of eight
        {5000, 5, 0, 1200},
        {700, 700, 3000, 2},
    };
    int idx = 0;
    for (const auto& lens : layouts) {
        const int32_t n_head_kv = int32_t(lens.size());
        const int32_t n_max = *std::max_element(lens.begin(), lens.end());
        for (DType t : {DType::kF32, DType::kF16, DType::kBF16}) {
            const int32_t d = idx % 2 ? 128 : 64;
            const int32_t ps = idx % 3 ? 256 : 16;
            const int32_t n_tok = 1 + 2 * (idx % 2);
            ++idx;
            PagedKv kv(rng, t, n_head_kv, ps, d, n_max, gapped_positions(rng, n_max, 0));
            for (int32_t h = 0; h < n_head_kv; ++h) kv.heads[size_t(h)].n_slot = lens[size_t(h)];
            const AttnCase c{n_max, ps, d, 4, n_head_kv, t, 1};
            const AttnParams p = params_of(c);
            const auto q = randn(rng, size_t(n_tok * p.n_head * d), 3.0f);
            for (int32_t last : {kv.pos.back() + 1, kv.pos[size_t(n_max / 3)]}) {
                std::vector<int32_t> qpos(static_cast<size_t>(n_tok));
                for (int32_t i = 0; i < n_tok; ++i) qpos[size_t(i)] = last - (n_tok - 1 - i);
                const size_t n_rows = size_t(n_tok * p.n_head);
                std::vector<float> out_ref(q.size()), lse_ref(n_rows);
                ref::attention(p, q.data(), qpos.data(), n_tok, kv.heads.data(), out_ref.data(), lse_ref.data());
                for (int n_threads : {1, 2, 3}) {
                    SCOPED_TRACE(testing::Message() << "heads=" << n_head_kv << " " << tname(t) << " d=" << d
                                                    << " threads=" << n_threads << " n_tok=" << n_tok << " last qpos " << last);
                    std::vector<float> out(q.size(), 12345.0f), lse(n_rows, 7.0f);
                    attention(pool_of(n_threads), p, q.data(), qpos.data(), n_tok, kv.heads.data(), out.data(), lse.data());
                    const ErrStats e = compare(out.data(), out_ref.data(), out.size());
                    ASSERT_LT(e.nmse, 1e-10);
                    ASSERT_LT(e.max_abs, 2e-5);
                    for (size_t i = 0; i < n_rows; ++i) {
                        if (std::isinf(lse_ref[i])) ASSERT_TRUE(std::isinf(lse[i]) && lse[i] < 0) << i;
                        else ASSERT_NEAR(lse[i], lse_ref[i], 1e-4) << i;
                    }
                }
            }
        }
    }
}

// The lse output of the fast kernel (single range and split-K) against the reference's, and the
// output itself unchanged by asking for it; -inf for a query that sees nothing.
TEST(AttentionLse, MatchesRef) {
    std::mt19937 rng(21);
    int idx = 0;
    for (int32_t n_slot : {5, 97, 4096}) {
        for (DType t : {DType::kF32, DType::kF16, DType::kBF16}) {
            for (int32_t d : {8, 12, 32}) {
                const AttnCase c{n_slot, 16, d, 2, 2, t, 1 + idx++ % 3};
                SCOPED_TRACE(testing::Message() << "n_slot=" << n_slot << " d=" << d << " " << tname(t)
                                                << " threads=" << c.n_threads);
                const PagedKv kv(rng, t, 2, 16, d, n_slot, gapped_positions(rng, n_slot, 10));
                const AttnParams p = params_of(c);
                for (int32_t n_tok : {1, 19}) {  // decode (split-K when long) and prefill rows
                    std::vector<int32_t> qpos(static_cast<size_t>(n_tok), 0);
                    for (int32_t i = 0; i < n_tok; ++i) qpos[size_t(i)] = kv.pos[size_t(std::max(0, n_slot - n_tok + i))];
                    qpos[0] = 3;  // sees nothing
                    const auto q = randn(rng, size_t(n_tok) * size_t(p.n_head) * size_t(d), 2.0f);
                    std::vector<float> o1(q.size()), o2(q.size()), o_ref(q.size());
                    std::vector<float> lse(size_t(n_tok) * size_t(p.n_head), 7.0f), lse_ref(lse.size(), 7.0f);
                    attention(pool_of(c.n_threads), p, q.data(), qpos.data(), n_tok, kv.heads.data(), o1.data());
                    attention(pool_of(c.n_threads), p, q.data(), qpos.data(), n_tok, kv.heads.data(), o2.data(),
                              lse.data());
                    ref::attention(p, q.data(), qpos.data(), n_tok, kv.heads.data(), o_ref.data(), lse_ref.data());
                    ASSERT_EQ(0, std::memcmp(o1.data(), o2.data(), o1.size() * sizeof(float)));
                    for (size_t i = 0; i < lse.size(); ++i) {
                        if (i < size_t(p.n_head)) {
                            ASSERT_EQ(lse[i], -INFINITY) << i;
                            ASSERT_EQ(lse_ref[i], -INFINITY) << i;
                        } else {
                            ASSERT_NEAR(lse[i], lse_ref[i], 1e-4f * std::max(1.0f, std::fabs(lse_ref[i]))) << i;
                        }
                    }
                }
            }
        }
    }
}

// attn_colsums (one pass from the kernel's lse) against attn_scores (its own two passes): every
// query (global column sums) and an observation window, GQA groups, all KV types, gapped positions.
TEST(AttentionLse, ColsumsMatchAttnScores) {
    std::mt19937 rng(22);
    int idx = 0;
    for (int32_t n_slot : {40, 300}) {
        for (DType t : {DType::kF32, DType::kF16, DType::kBF16}) {
            for (int32_t group : {1, 3}) {
                const AttnCase c{n_slot, 16, 32, group, 2, t, 1 + idx++ % 3};
                // every other case with a sliding window and soft-capping (Gemma 2): the statistics
                // follow the kernel's rules, so the lse-based sums still normalise
                const bool gemma = idx % 2 == 0;
                SCOPED_TRACE(testing::Message() << "n_slot=" << n_slot << " group=" << group << " " << tname(t)
                                                << (gemma ? " window 20, softcap 3" : ""));
                const PagedKv kv(rng, t, 2, 16, 32, n_slot, gapped_positions(rng, n_slot, 0));
                AttnParams p = params_of(c);
                if (gemma) p.window = 20, p.softcap = 3.0f;
                const int32_t n_tok = n_slot;  // a whole prompt
                std::vector<int32_t> qpos(kv.pos.begin(), kv.pos.end());
                const auto q = randn(rng, size_t(n_tok) * size_t(p.n_head) * 32, 2.0f);
                std::vector<float> out(q.size()), lse(size_t(n_tok) * size_t(p.n_head));
                attention(pool_of(c.n_threads), p, q.data(), qpos.data(), n_tok, kv.heads.data(), out.data(), lse.data());
                for (int32_t t_begin : {0, n_tok - 7}) {
                    std::vector<float> want(size_t(2 * n_slot)), got(size_t(2 * n_slot), 0.0f);
                    attn_scores(pool_of(c.n_threads), p, q.data(), qpos.data(), n_tok, t_begin, kv.heads.data(),
                                want.data(), n_slot, false);
                    attn_colsums(pool_of(c.n_threads), p, q.data(), qpos.data(), n_tok, t_begin, lse.data(),
                                 kv.heads.data(), got.data(), n_slot);
                    double total = 0.0;
                    for (size_t i = 0; i < want.size(); ++i) {
                        ASSERT_NEAR(got[i], want[i], 1e-4 * std::max(1.0f, want[i])) << "t_begin " << t_begin << " " << i;
                        total += got[i];
                    }
                    // every row's probabilities sum to 1: the sums total (rows) x (heads)
                    EXPECT_NEAR(total, double(n_tok - t_begin) * p.n_head, 1e-3 * (n_tok - t_begin) * p.n_head);
                }
            }
        }
    }
}

// The 16-bit position lane (a context of n_ctx <= 65536, kv/pos_vec.h): attention (decode, split
// decode, prefill, with a window), the score statistics and the band statistics give the very same
// results as over the same positions in int32.
TEST(Attention, SixteenBitPositionLaneIsExact) {
    std::mt19937 rng(31);
    for (int32_t n_slot : {5, 300, 3000}) {
        for (int32_t window : {0, 40}) {
            SCOPED_TRACE(testing::Message() << "n_slot=" << n_slot << " window=" << window);
            const AttnCase c{n_slot, 16, 32, 2, 2, DType::kF16, 2};
            const PagedKv kv(rng, c.type, 2, 16, 32, n_slot, gapped_positions(rng, n_slot, 60000 - 3 * n_slot));
            ASSERT_LE(kv.pos.back(), 65535);
            const std::vector<uint16_t> pos16(kv.pos.begin(), kv.pos.end());
            std::vector<AttnKvHead> narrow = kv.heads;
            for (AttnKvHead& h : narrow) h.pos = PosLane(pos16.data(), pos16.size());
            AttnParams p = params_of(c);
            p.window = window;
            for (int32_t n_tok : {1, 7}) {
                if (n_tok > n_slot) continue;  // the queries are the last n_tok slots' positions
                const std::vector<int32_t> qpos(kv.pos.end() - n_tok, kv.pos.end());
                const auto q = randn(rng, size_t(n_tok) * size_t(p.n_head) * 32, 2.0f);
                std::vector<float> o32(q.size()), o16(q.size(), 1.0f), l32(size_t(n_tok * p.n_head)), l16(l32.size());
                attention(pool_of(2), p, q.data(), qpos.data(), n_tok, kv.heads.data(), o32.data(), l32.data());
                attention(pool_of(2), p, q.data(), qpos.data(), n_tok, narrow.data(), o16.data(), l16.data());
                EXPECT_EQ(o32, o16);
                EXPECT_EQ(l32, l16);
                std::vector<float> s32(size_t(2 * n_slot)), s16(s32.size(), 1.0f);
                attn_scores(pool_of(2), p, q.data(), qpos.data(), n_tok, 0, kv.heads.data(), s32.data(), n_slot, false);
                attn_scores(pool_of(2), p, q.data(), qpos.data(), n_tok, 0, narrow.data(), s16.data(), n_slot, false);
                EXPECT_EQ(s32, s16);
                std::vector<float> r32(s32.size(), 0.0f), c32(s32.size(), 0.0f), r16(r32), c16(c32);
                attn_band_recent(pool_of(2), p, q.data(), qpos.data(), n_tok, 0, 1, 16, false, kv.heads.data(),
                                 r32.data(), c32.data(), n_slot);
                attn_band_recent(pool_of(2), p, q.data(), qpos.data(), n_tok, 0, 1, 16, false, narrow.data(),
                                 r16.data(), c16.data(), n_slot);
                EXPECT_EQ(r32, r16);
                EXPECT_EQ(c32, c16);
            }
        }
    }
}

// The slot-blocked, row-tiled score passes (issue 22 item 5) against the per-slot loops they
// replaced (scores_before.h), bit for bit: every KV type, head sizes that are and are not a multiple
// of 8, GQA groups, sliding window and soft-capping, prompts shorter and longer than a block,
// observation windows, 1-3 threads. The band pass with the kernel's lse against the one without.
TEST(ScoresExact, TiledPassesGiveTheSameBits) {
    std::mt19937 rng(23);
    int idx = 0;
    auto same = [](const std::vector<float>& a, const std::vector<float>& b) {
        return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
    };
    for (int32_t n_slot : {7, 300, 1100}) {
        for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0}) {
            for (int32_t d : {32, 64, 20}) {
                if (t == DType::kQ8_0 && d % 32 != 0) continue;
                const AttnCase c{n_slot, 16, d, 1 + idx % 4, 2, t, 1 + idx % 3};
                const bool gemma = idx++ % 3 == 2;
                SCOPED_TRACE(testing::Message() << "n_slot=" << n_slot << " d=" << d << " " << tname(t) << " group="
                                                << c.group << " threads=" << c.n_threads << (gemma ? " window, softcap" : ""));
                const PagedKv kv(rng, t, 2, 16, d, n_slot, gapped_positions(rng, n_slot, 0));
                AttnParams p = params_of(c);
                if (gemma) p.window = 50, p.softcap = 3.0f;
                // the chunk's queries: the last n_tok slots' positions (a prompt's later chunk)
                const int32_t n_tok = std::min(n_slot, 96);
                std::vector<int32_t> qpos(kv.pos.end() - n_tok, kv.pos.end());
                const auto q = randn(rng, size_t(n_tok) * size_t(p.n_head) * size_t(d), 2.0f);
                std::vector<float> out(q.size()), lse(size_t(n_tok) * size_t(p.n_head));
                attention(pool_of(c.n_threads), p, q.data(), qpos.data(), n_tok, kv.heads.data(), out.data(), lse.data());
                ThreadPool& pool = pool_of(c.n_threads);
                for (int32_t t_begin : {0, std::max(0, n_tok - 32)}) {
                    std::vector<float> want(size_t(2 * n_slot)), got(want.size(), 5.0f);
                    before::attn_scores(p, q.data(), qpos.data(), n_tok, t_begin, kv.heads.data(), want.data(), n_slot);
                    attn_scores(pool, p, q.data(), qpos.data(), n_tok, t_begin, kv.heads.data(), got.data(), n_slot, false);
                    ASSERT_TRUE(same(want, got)) << "attn_scores, t_begin " << t_begin;
                    std::fill(want.begin(), want.end(), 0.5f), std::fill(got.begin(), got.end(), 0.5f);
                    before::attn_colsums(p, q.data(), qpos.data(), n_tok, t_begin, lse.data(), kv.heads.data(), want.data(), n_slot);
                    attn_colsums(pool, p, q.data(), qpos.data(), n_tok, t_begin, lse.data(), kv.heads.data(), got.data(), n_slot);
                    ASSERT_TRUE(same(want, got)) << "attn_colsums, t_begin " << t_begin;
                }
                for (const bool full_norm : {true, false}) {
                    std::vector<float> rec_want(size_t(2 * n_slot), 0.25f), cnt_want(rec_want), rec_got(rec_want), cnt_got(rec_want);
                    before::attn_band_recent(p, q.data(), qpos.data(), n_tok, 0, 4, 32, full_norm, kv.heads.data(),
                                             rec_want.data(), cnt_want.data(), n_slot);
                    attn_band_recent(pool, p, q.data(), qpos.data(), n_tok, 0, 4, 32, full_norm, kv.heads.data(),
                                     rec_got.data(), cnt_got.data(), n_slot);
                    ASSERT_TRUE(same(rec_want, rec_got)) << "attn_band_recent, full_norm " << full_norm;
                    ASSERT_TRUE(same(cnt_want, cnt_got));
                    // the row normaliser from the kernel's lse: the same counts and sums up to rounding
                    // over float keys; ignored (the same bits) over q8_0 keys and with the band's own norm
                    std::vector<float> rec_lse(rec_want.size(), 0.25f), cnt_lse(rec_lse);
                    attn_band_recent(pool, p, q.data(), qpos.data(), n_tok, 0, 4, 32, full_norm, kv.heads.data(),
                                     rec_lse.data(), cnt_lse.data(), n_slot, lse.data());
                    ASSERT_TRUE(same(cnt_want, cnt_lse));
                    if (!full_norm || t == DType::kQ8_0) {
                        ASSERT_TRUE(same(rec_want, rec_lse)) << "attn_band_recent with lse, full_norm " << full_norm;
                    } else {
                        for (size_t i = 0; i < rec_want.size(); ++i) {
                            ASSERT_NEAR(rec_lse[i], rec_want[i], 1e-5 * (1.0 + rec_want[i])) << "band with lse, slot " << i;
                        }
                    }
                }
            }
        }
    }
}

}  // namespace
}  // namespace hkv
