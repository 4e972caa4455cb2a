// HeteroCache runtime pieces without a model: the cold tier (RAM and file round trips, an injected
// read error reaching the caller through the I/O thread, a folder that cannot hold files), the
// drift monitor's scoring / overlap / median, and budget planning from a taxonomy file (the
// reference's rule; full heads unbounded; clear errors naming `heterokv calibrate`).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "heterokv/policy.h"
#include "kv/cold_tier.h"
#include "kv/kv_store.h"
#include "policy/heterocache.h"
#include "policy/select.h"
#include "policy/spec.h"
#include "test_util.h"

namespace hkv {
namespace {

// rows [row0, row0 + n) of a head: every byte of row r in K is (r * 7 + b) & 0xff, in V (r * 13 + b)
void make_rows(int32_t row0, int32_t n, size_t rb, std::vector<uint8_t>& k, std::vector<uint8_t>& v,
               std::vector<int32_t>& pos) {
    k.resize(size_t(n) * rb);
    v.resize(size_t(n) * rb);
    pos.resize(size_t(n));
    for (int32_t i = 0; i < n; ++i) {
        const int32_t r = row0 + i;
        for (size_t b = 0; b < rb; ++b) {
            k[size_t(i) * rb + b] = uint8_t((r * 7 + int32_t(b)) & 0xff);
            v[size_t(i) * rb + b] = uint8_t((r * 13 + int32_t(b)) & 0xff);
        }
        pos[size_t(i)] = 1000 + r;
    }
}

void round_trip(const std::string& dir) {
    ColdTierConfig cc{2, 3, 16, 16, dir};
    auto t = ColdTier::create(cc);
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    ColdTier& ct = **t;
    EXPECT_EQ(ct.on_disk(), !dir.empty());
    std::vector<uint8_t> k, v;
    std::vector<int32_t> pos;
    // two records (two prefill chunks) for layer 1 head 2, one for layer 0 head 0
    make_rows(0, 10, 16, k, v, pos);
    ASSERT_TRUE(ct.append(1, 2, 10, k.data(), v.data(), pos.data()).ok());
    make_rows(0, 4, 16, k, v, pos);
    for (auto& b : k) b ^= 0x55;  // different content in another head
    ASSERT_TRUE(ct.append(0, 0, 4, k.data(), v.data(), pos.data()).ok());
    make_rows(10, 6, 16, k, v, pos);
    ASSERT_TRUE(ct.append(1, 2, 6, k.data(), v.data(), pos.data()).ok());
    EXPECT_EQ(ct.rows(1, 2), 16);
    EXPECT_EQ(ct.bytes_stored(), int64_t(20) * 2 * 16);
    // scattered rows with runs that cross the record boundary (9, 10, 11)
    const std::vector<int32_t> idx = {0, 3, 4, 5, 9, 10, 11, 15};
    std::vector<uint8_t> ko(idx.size() * 16), vo(idx.size() * 16);
    std::vector<int32_t> po(idx.size());
    auto fut = ct.submit([&] { return ct.gather(1, 2, idx.data(), int32_t(idx.size()), ko.data(), vo.data(), po.data()); });
    ASSERT_TRUE(fut.get().ok());
    for (size_t i = 0; i < idx.size(); ++i) {
        EXPECT_EQ(po[i], 1000 + idx[i]);
        for (size_t b = 0; b < 16; ++b) {
            ASSERT_EQ(ko[i * 16 + b], uint8_t((idx[i] * 7 + int32_t(b)) & 0xff)) << "row " << idx[i];
            ASSERT_EQ(vo[i * 16 + b], uint8_t((idx[i] * 13 + int32_t(b)) & 0xff)) << "row " << idx[i];
        }
    }
    // out-of-range rows and an injected read error come back as errors through the ticket
    const int32_t bad = 16;
    EXPECT_EQ(ct.gather(1, 2, &bad, 1, ko.data(), vo.data(), po.data()).code(), StatusCode::kInvalidArgument);
    ct.inject_gather_failure(true);
    auto f2 = ct.submit([&] { return ct.gather(1, 2, idx.data(), 2, ko.data(), vo.data(), po.data()); });
    const Status st = f2.get();
    EXPECT_EQ(st.code(), StatusCode::kIoError);
    EXPECT_NE(st.message().find("injected"), std::string::npos);
    ct.inject_gather_failure(false);
    // a rewind to position 1012 keeps rows 0..11: the V rows of the cut record are still found
    ct.drop_from(1012);
    EXPECT_EQ(ct.rows(1, 2), 12);
    EXPECT_EQ(ct.rows(0, 0), 4);
    EXPECT_EQ(ct.bytes_stored(), int64_t(16) * 2 * 16);
    const std::vector<int32_t> tail = {9, 10, 11};
    ASSERT_TRUE(ct.gather(1, 2, tail.data(), 3, ko.data(), vo.data(), po.data()).ok());
    for (size_t i = 0; i < tail.size(); ++i) {
        EXPECT_EQ(po[i], 1000 + tail[i]);
        EXPECT_EQ(vo[i * 16 + 3], uint8_t((tail[i] * 13 + 3) & 0xff)) << "row " << tail[i];
    }
    EXPECT_EQ(ct.gather(1, 2, &bad, 1, ko.data(), vo.data(), po.data()).code(), StatusCode::kInvalidArgument);
    ct.clear();
    EXPECT_EQ(ct.rows(1, 2), 0);
    EXPECT_EQ(ct.bytes_stored(), 0);
    make_rows(0, 2, 16, k, v, pos);
    ASSERT_TRUE(ct.append(1, 2, 2, k.data(), v.data(), pos.data()).ok());
    const int32_t one = 1;
    ASSERT_TRUE(ct.gather(1, 2, &one, 1, ko.data(), vo.data(), po.data()).ok());
    EXPECT_EQ(po[0], 1001);
    EXPECT_EQ(ko[0], uint8_t(7));
}

TEST(ColdTier, RamRoundTrip) { round_trip(""); }

TEST(ColdTier, FileRoundTrip) {
    test::TempDir dir;
    round_trip(dir.path.string());
    // the files are unlinked at once: nothing is left in the folder
    EXPECT_TRUE(std::filesystem::is_empty(dir.path));
}

TEST(ColdTier, BadFolderIsAnIoError) {
    auto t = ColdTier::create(ColdTierConfig{1, 1, 8, 8, "/nonexistent/hkv-cold"});
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().code(), StatusCode::kIoError);
    EXPECT_NE(t.status().message().find("--kv-cold-dir"), std::string::npos);
}

TEST(HeteroCacheMonitor, OverlapAndMedian) {
    std::vector<uint8_t> mask(10, 0);
    for (int32_t s : {1, 3, 5, 7}) mask[size_t(s)] = 1;
    const int32_t set[4] = {1, 2, 3, 9};
    EXPECT_DOUBLE_EQ(hc_overlap(set, 4, mask, 4), 0.5);
    std::vector<double> o = {0.9, 0.1, 0.4, 0.8, 0.2};
    EXPECT_DOUBLE_EQ(hc_lower_median(o), 0.4);
    std::vector<double> even = {0.6, 0.2, 0.4, 0.8};  // lower median, as torch.median
    EXPECT_DOUBLE_EQ(hc_lower_median(even), 0.4);
}

// One layer, one KV head of 6 slots (positions 0..5) of dim 2 in an f32 store; keys = values.
constexpr int32_t kSixPos[6] = {0, 1, 2, 3, 4, 5};
std::unique_ptr<KvStore> six_keys(const float* keys) {
    KvStoreConfig c;
    c.n_layer = 1, c.n_head_kv = 1, c.head_dim = 2, c.page_size = 4, c.k_type = c.v_type = DType::kF32;
    auto kv = KvStore::create(c);
    if (!kv.ok() || !(*kv)->append(0, 0, 6, keys, 2, keys, 2, kSixPos).ok()) return nullptr;
    return std::move(kv).value();
}

// hc_pool_max block by block = each row avg-pooled whole (pool1d), then the max over the group, bit
// for bit, at lengths below, at and across its 2048-slot blocks.
TEST(HeteroCacheMonitor, PoolMaxEqualsPoolThenMax) {
    for (int32_t n : {1, 5, 2047, 2048, 2049, 5000}) {
        const int32_t group = 3, pool = 5;
        std::vector<float> probs(size_t(group) * size_t(n)), got(static_cast<size_t>(n)), row(static_cast<size_t>(n)), tmp;
        for (size_t i = 0; i < probs.size(); ++i) probs[i] = float((i * 2654435761u) % 1000) * 1e-3f;
        std::vector<float> want(static_cast<size_t>(n), -INFINITY);
        for (int32_t g = 0; g < group; ++g) {
            pool1d(probs.data() + size_t(g) * size_t(n), n, pool, PoolKind::kAvg, row.data());
            for (int32_t s = 0; s < n; ++s) want[size_t(s)] = std::max(want[size_t(s)], row[size_t(s)]);
        }
        hc_pool_max(probs.data(), group, n, pool, got.data(), tmp);
        ASSERT_EQ(got, want) << n;
    }
}

// hc_keep_among (the monitor's one selection shared by C_W and the satellites) picks hc_keep's rows
// for every cap and window, on scores with many ties, from candidate sets of any size >= cap.
TEST(HeteroCacheMonitor, KeepAmongTheCandidatesEqualsKeep) {
    uint32_t x = 12345;
    auto rnd = [&x] { return x = x * 1664525u + 1013904223u; };
    std::vector<int32_t> idx;
    std::vector<float> cs;
    for (int trial = 0; trial < 60; ++trial) {
        const int32_t n = 1 + int32_t(rnd() % 300);
        std::vector<float> score(static_cast<size_t>(n));
        for (float& f : score) f = float(rnd() % 7) * 0.5f;  // ties everywhere
        for (int32_t cap : {0, 1, n / 3, n / 2, n - 1, n}) {
            for (int32_t recent : {0, 1, 5, 40}) {
                std::vector<int32_t> want(size_t(std::max(cap, 1))), got(size_t(std::max(cap, 1)));
                hc_keep(score.data(), n, cap, recent, want.data());
                for (int32_t n_cand : {std::max(cap, 0), std::min(n, cap + 7), n}) {
                    std::vector<int32_t> cand(size_t(std::max(n_cand, 1)));
                    top_k_indices(score.data(), n, n_cand, cand.data());
                    hc_keep_among(score.data(), n, cand.data(), n_cand, cap, recent, got.data(), cs, idx);
                    ASSERT_EQ(std::vector<int32_t>(got.begin(), got.begin() + std::max(cap, 0)),
                              std::vector<int32_t>(want.begin(), want.begin() + std::max(cap, 0)))
                        << "n " << n << " cap " << cap << " recent " << recent << " candidates " << n_cand;
                }
            }
        }
    }
}

TEST(HeteroCacheMonitor, LastRowScores) {
    // 2 query heads, 6 keys of dim 2 in an f32 store. Head 0 points at key 1, head 1 at key 4;
    // pool 1 = none.
    const float q[4] = {10, 0, 0, 10};
    const float keys[12] = {0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0};
    std::unique_ptr<KvStore> kv = six_keys(keys);
    ASSERT_TRUE(kv);
    const KvLayerView view(kv.get(), 0, nullptr);
    std::vector<float> out(6), probs, tmp;
    hc_head_scores(view, 0, q, 2, 6, 1.0f, 1, out.data(), probs, tmp);
    const float hi = std::exp(10.0f) / (std::exp(10.0f) + 5.0f), lo = 1.0f / (std::exp(10.0f) + 5.0f);
    EXPECT_NEAR(out[1], hi, 1e-6);  // GQA max: each head's own peak survives
    EXPECT_NEAR(out[4], hi, 1e-6);
    EXPECT_NEAR(out[0], lo, 1e-6);
    // pool 5 averages with zero padding counted: slot 0 sees slots 0..2 / 5
    hc_head_scores(view, 0, q, 1, 6, 1.0f, 5, out.data(), probs, tmp);
    EXPECT_NEAR(out[0], (lo + hi + lo) / 5.0f, 1e-6);
    float sum = 0.0f;
    hc_head_scores(view, 0, q, 1, 6, 1.0f, 1, out.data(), probs, tmp);
    for (float x : out) sum += x;
    EXPECT_NEAR(sum, 1.0f, 1e-5);
}

// obs=N window scores: the step's last N queries, each softmaxed over the slots at or before its
// own position only. Query 0 (position 4) points at key 5, which it cannot see: its row is uniform
// over slots 0..4; query 1 (position 5) points at key 1.
TEST(HeteroCacheMonitor, WindowScoresAreCausal) {
    const float keys[12] = {0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    const std::vector<float> q = {0, 10, 10, 0};  // [n_q = 2, n_head = 1, head_dim = 2]
    std::unique_ptr<KvStore> kv = six_keys(keys);
    ASSERT_TRUE(kv);
    const PosLane rows[1] = {PosLane(kSixPos, 6)};
    LayerView v;
    v.n_head = 1, v.n_head_kv = 1, v.head_dim = 2, v.n_past = 6, v.n_q = 2;
    v.q = q, v.pos = rows, v.kv = KvLayerView(kv.get(), 0, nullptr);
    std::vector<float> out(6);
    HcScratch sc;
    hc_window_scores(v, 0, 2, 6, 1, out.data(), sc);
    const float e = std::exp(10.0f / std::sqrt(2.0f));
    const float hi = e / (e + 5.0f), lo = 1.0f / (e + 5.0f);
    EXPECT_NEAR(out[1], 0.2f + hi, 1e-5);
    EXPECT_NEAR(out[0], 0.2f + lo, 1e-5);
    EXPECT_NEAR(out[4], 0.2f + lo, 1e-5);
    EXPECT_NEAR(out[5], lo, 1e-5);  // never seen by query 0
    // m = 1 is the last query alone, as hc_head_scores
    hc_window_scores(v, 0, 1, 6, 1, out.data(), sc);
    EXPECT_NEAR(out[1], hi, 1e-5);
    EXPECT_NEAR(out[5], lo, 1e-5);
}

// recent=R: the last R slots are kept whatever their scores, the rest of the cap goes to the top
// scores among the older slots; the result is in position order.
TEST(HeteroCacheMonitor, KeepsTheWindowThenTheTopScores) {
    const std::vector<float> score = {5, 1, 4, 0, 3, 9, 0, 0};
    std::vector<int32_t> out(8);
    hc_keep(score.data(), 8, 4, 2, out.data());
    EXPECT_EQ(std::vector<int32_t>(out.begin(), out.begin() + 4), (std::vector<int32_t>{0, 5, 6, 7}));
    hc_keep(score.data(), 8, 4, 0, out.data());  // the reference: top 4 of all
    EXPECT_EQ(std::vector<int32_t>(out.begin(), out.begin() + 4), (std::vector<int32_t>{0, 2, 4, 5}));
    hc_keep(score.data(), 8, 2, 5, out.data());  // a window wider than the cap: its latest slots
    EXPECT_EQ(std::vector<int32_t>(out.begin(), out.begin() + 2), (std::vector<int32_t>{6, 7}));
    hc_keep(score.data(), 8, 12, 3, out.data());  // a cap beyond n keeps everything
    EXPECT_EQ(out, (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7}));
    hc_keep(score.data(), 8, 0, 3, out.data());  // nothing to keep: nothing written
    EXPECT_EQ(out[0], 0);
}

TEST(HeteroCachePolicy, BudgetsFromTaxonomy) {
    test::TempDir dir;
    const Taxonomy t = taxonomy_structural(3, 8);
    EXPECT_EQ(t.count(HeadRole::kPivot), 3);
    EXPECT_EQ(t.count(HeadRole::kSatellite), 15);
    EXPECT_EQ(t.count(HeadRole::kAnchor), 3);
    EXPECT_EQ(t.count(HeadRole::kVolatile), 3);
    ASSERT_TRUE(taxonomy_validate(t).ok());
    const std::string path = dir.file("tax.json");
    ASSERT_TRUE(taxonomy_save(t, path).ok());
    for (const char* weights : {"taxonomy", "uniform"}) {
        auto p = policy_create("heterocache:taxonomy=" + path + ",ratio=0.5,weights=" + weights);
        ASSERT_TRUE(p.ok()) << p.status().to_string();
        KvBudget b;
        ModelShape shape{3, 32, 8, 64, 4096};
        ASSERT_TRUE((*p)->begin(shape, Segment{0, 0, 1000}, b).ok());
        // base = floor((0.5 * 24 - 6) * 1000 / 18) = 333
        int64_t total = 0;
        for (int32_t il = 0; il < 3; ++il) {
            for (int32_t ih = 0; ih < 8; ++ih) {
                const double r = std::string(weights) == "uniform" ? 1.0 : t.ratio[t.at(il, ih)];
                const int32_t want = (ih == 0 || ih == 7) ? -1 : int32_t(std::floor(333 * r));
                EXPECT_EQ(b.at(il, ih), want) << weights << " layer " << il << " head " << ih;
                total += want > 0 ? want : 0;
            }
        }
        EXPECT_EQ(b.total(), total);
        // uniform: every compressed head holds base; weighted (0.5 / 1.5): the same total up to flooring
        EXPECT_LE(std::llabs(total - int64_t(18) * 333), 9);
    }
    // wrong shape, missing and unreadable taxonomies name the command that makes one
    auto p = policy_create("heterocache:taxonomy=" + path);
    ASSERT_TRUE(p.ok());
    KvBudget b;
    const Status st = (*p)->begin(ModelShape{4, 32, 8, 64, 4096}, Segment{0, 0, 100}, b);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find("heterokv calibrate"), std::string::npos) << st.message();
    for (const std::string& spec : {std::string("heterocache"), std::string("heterocache:taxonomy=") + dir.file("none.json")}) {
        auto q = policy_create(spec);
        ASSERT_FALSE(q.ok());
        EXPECT_NE(q.status().message().find("heterokv calibrate"), std::string::npos) << q.status().message();
    }
    // the full heads alone above the ratio: a clear error, not a crash
    auto r = policy_create("heterocache:taxonomy=" + path + ",ratio=0.2");
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE((*r)->begin(ModelShape{3, 32, 8, 64, 4096}, Segment{0, 0, 100}, b).ok());
    // both come from the check against the model, before any work
    const Status ratio = policy_validate("heterocache:taxonomy=" + path + ",ratio=0.2", ModelShape{3, 32, 8, 64, 4096});
    EXPECT_EQ(ratio.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(ratio.message().find("use ratio > 0.250"), std::string::npos) << ratio.message();
    const Status shape = policy_validate("heterocache:taxonomy=" + path, ModelShape{4, 32, 8, 64, 4096});
    EXPECT_NE(shape.message().find("heterokv calibrate"), std::string::npos) << shape.message();
    EXPECT_TRUE(policy_validate("heterocache:taxonomy=" + path, ModelShape{3, 32, 8, 64, 4096}).ok());
    EXPECT_FALSE(policy_create("heterocache:taxonomy=" + path + ",refresh=sometimes").ok());
    EXPECT_FALSE(policy_create("heterocache:taxonomy=" + path + ",pool=4").ok());
    EXPECT_FALSE(policy_create("heterocache:taxonomy=" + path + ",recent=-1").ok());
    EXPECT_TRUE(policy_create("heterocache:taxonomy=" + path + ",obs=1,recent=8").ok());
}

bool is_full(HeadRole r) { return r == HeadRole::kVolatile || r == HeadRole::kPivot; }

// layers=pyramid: the compressed heads' caps follow PyramidKV's linear schedule over the layers with
// the flat total, lower layers more; full heads untouched; clipped at the prompt and at 1 slot.
TEST(HeteroCachePolicy, PyramidCapsSumToTheFlatTotal) {
    Taxonomy t = taxonomy_structural(6, 4);  // per layer: pivot 0, satellites 1-2, anchor 3
    const int64_t n_prompt = 1000;
    auto total = [&](const std::vector<int64_t>& cap) {
        int64_t s = 0;
        for (size_t i = 0; i < cap.size(); ++i) s += is_full(t.role[i]) ? 0 : cap[i];
        return s;
    };
    auto layer_cap = [&](const std::vector<int64_t>& cap, int32_t il) { return cap[t.at(il, 1)]; };
    // uniform caps (weights=uniform / adaptive): 300 per compressed head, 18 heads
    std::vector<int64_t> flat(t.role.size(), n_prompt);
    for (size_t i = 0; i < flat.size(); ++i) flat[i] = is_full(t.role[i]) ? n_prompt : 300;
    for (double beta : {20.0, 5.0, 2.0, 1.2}) {
        SCOPED_TRACE(beta);
        const std::vector<int64_t> p = hc_pyramid_caps(t, flat, n_prompt, beta);
        ASSERT_EQ(p.size(), flat.size());
        EXPECT_EQ(total(p), total(flat));
        for (int32_t il = 0; il < 6; ++il) {
            EXPECT_EQ(p[t.at(il, 0)], n_prompt);  // the pivot: full, untouched
            for (int32_t ih = 2; ih < 4; ++ih) EXPECT_LE(std::llabs(p[t.at(il, ih)] - layer_cap(p, il)), 1);
            for (int32_t ih = 1; ih < 4; ++ih) {
                EXPECT_GE(p[t.at(il, ih)], 1);
                EXPECT_LE(p[t.at(il, ih)], n_prompt);
            }
            if (il > 0) {
                EXPECT_LE(layer_cap(p, il), layer_cap(p, il - 1)) << "layer " << il;
            }
        }
        EXPECT_GT(layer_cap(p, 0), 300);
        EXPECT_LT(layer_cap(p, 5), 300);
        // linear: equal steps between layers (up to rounding)
        const int64_t step = layer_cap(p, 0) - layer_cap(p, 1);
        for (int32_t il = 1; il < 5; ++il) EXPECT_LE(std::llabs(layer_cap(p, il) - layer_cap(p, il + 1) - step), 3);
    }
    // unclipped beta = 20: PyramidKV's min = V / 20, max = 2V - min (V = 300: 15 and 585)
    const std::vector<int64_t> p20 = hc_pyramid_caps(t, flat, n_prompt, 20.0);
    EXPECT_LE(std::llabs(layer_cap(p20, 0) - 585), 1);
    EXPECT_LE(std::llabs(layer_cap(p20, 5) - 15), 1);
    // stronger beta never steeper than it may be: beta = 20 steeper than beta = 2
    const std::vector<int64_t> p2 = hc_pyramid_caps(t, flat, n_prompt, 2.0);
    EXPECT_GT(layer_cap(p20, 0), layer_cap(p2, 0));
    EXPECT_LT(layer_cap(p20, 5), layer_cap(p2, 5));
    // beta = 1 is flat
    EXPECT_EQ(hc_pyramid_caps(t, flat, n_prompt, 1.0), flat);
    // near the prompt's length the bottom layer clips at n_prompt, the schedule flattens (still linear,
    // the same total) instead of overflowing
    std::vector<int64_t> big = flat;
    for (size_t i = 0; i < big.size(); ++i) big[i] = is_full(t.role[i]) ? n_prompt : 800;
    const std::vector<int64_t> pb = hc_pyramid_caps(t, big, n_prompt, 20.0);
    EXPECT_EQ(total(pb), total(big));
    EXPECT_EQ(layer_cap(pb, 0), n_prompt);
    EXPECT_LE(std::llabs(layer_cap(pb, 5) - (2 * 800 - n_prompt)), 1);  // lo = 2V - max, as PyramidKV
    // tiny caps: every head keeps at least one slot (the floor flattens the schedule the same way)
    std::vector<int64_t> tiny = flat;
    for (size_t i = 0; i < tiny.size(); ++i) tiny[i] = is_full(t.role[i]) ? n_prompt : 3;
    const std::vector<int64_t> pt = hc_pyramid_caps(t, tiny, n_prompt, 20.0);
    EXPECT_EQ(total(pt), total(tiny));
    for (size_t i = 0; i < pt.size(); ++i) EXPECT_GE(pt[i], 1);
    EXPECT_GT(layer_cap(pt, 0), layer_cap(pt, 5));
    // weighted caps (weights=taxonomy): each layer's heads scaled by the same factor
    std::vector<int64_t> w(t.role.size());
    for (size_t i = 0; i < w.size(); ++i) w[i] = is_full(t.role[i]) ? n_prompt : int64_t(std::floor(300 * t.ratio[i]));
    const std::vector<int64_t> pw = hc_pyramid_caps(t, w, n_prompt, 5.0);
    EXPECT_EQ(total(pw), total(w));
    for (int32_t il = 0; il < 6; ++il) {
        const double f = double(pw[t.at(il, 1)]) / double(w[t.at(il, 1)]);
        for (int32_t ih = 2; ih < 4; ++ih) {
            EXPECT_NEAR(double(pw[t.at(il, ih)]), f * double(w[t.at(il, ih)]), 1.5) << il << " " << ih;
        }
    }
    // one layer of compressed heads: nothing to schedule
    Taxonomy one = taxonomy_structural(1, 4);
    std::vector<int64_t> c1(one.role.size(), 300);
    c1[one.at(0, 0)] = n_prompt;
    EXPECT_EQ(hc_pyramid_caps(one, c1, n_prompt, 20.0), c1);
}

// The policy plans the schedule's caps (weights=uniform: the budget is the cap), adaptive keeps each
// layer's total; beta without layers=pyramid is an error.
TEST(HeteroCachePolicy, PyramidBudgetsFollowTheSchedule) {
    test::TempDir dir;
    const Taxonomy t = taxonomy_structural(4, 4);
    const std::string path = dir.file("tax.json");
    ASSERT_TRUE(taxonomy_save(t, path).ok());
    const ModelShape shape{4, 16, 4, 64, 4096};
    const Segment prompt{0, 0, 1000};
    auto hb = heterocache_budget(t, 0.5, 1000);
    ASSERT_TRUE(hb.ok());
    Taxonomy uni = t;
    for (double& r : uni.ratio) r = r > 0 ? 1.0 : r;
    auto hbu = heterocache_budget(uni, 0.5, 1000);
    ASSERT_TRUE(hbu.ok());
    const std::vector<int64_t> want = hc_pyramid_caps(uni, hbu->cap, 1000, 20.0);
    KvBudget flat, pyr, ada;
    auto f = policy_create("heterocache:taxonomy=" + path + ",ratio=0.5,weights=uniform");
    auto p = policy_create("heterocache:taxonomy=" + path + ",ratio=0.5,weights=uniform,layers=pyramid");
    auto a = policy_create("heterocache:taxonomy=" + path + ",ratio=0.5,layers=pyramid,beta=20");
    ASSERT_TRUE(f.ok() && p.ok() && a.ok());
    ASSERT_TRUE((*f)->begin(shape, prompt, flat).ok());
    ASSERT_TRUE((*p)->begin(shape, prompt, pyr).ok());
    ASSERT_TRUE((*a)->begin(shape, prompt, ada).ok());
    EXPECT_EQ(pyr.total(), flat.total());
    bool differs = false;
    for (int32_t il = 0; il < 4; ++il) {
        int64_t layer = 0;
        for (int32_t ih = 0; ih < 4; ++ih) {
            const int64_t c = want[t.at(il, ih)];
            EXPECT_EQ(pyr.at(il, ih), ih == 0 ? -1 : c) << il << " " << ih;
            differs |= ih > 0 && pyr.at(il, ih) != flat.at(il, ih);
            layer += ih == 0 ? 0 : c;
        }
        // adaptive: any compressed head may take its layer's (scheduled) total
        for (int32_t ih = 1; ih < 4; ++ih) EXPECT_EQ(ada.at(il, ih), std::min<int64_t>(layer, 1000)) << il;
    }
    EXPECT_TRUE(differs);
    EXPECT_FALSE(policy_create("heterocache:taxonomy=" + path + ",beta=5").ok());
    EXPECT_FALSE(policy_create("heterocache:taxonomy=" + path + ",layers=pyramid,beta=0.5").ok());
    EXPECT_FALSE(policy_create("heterocache:taxonomy=" + path + ",layers=steep").ok());
}

}  // namespace
}  // namespace hkv
