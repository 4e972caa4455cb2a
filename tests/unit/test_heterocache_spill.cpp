// HeteroCache's prefill with spill=chunk, driven through PolicyRuntime on synthetic K/V (no model);
// the cold tier belongs to the KV store, which applies the policy's spills:
//  - a prompt in one chunk: spill=chunk keeps the same slots and spills the same cold rows as
//    spill=end, byte for byte;
//  - a prompt in several chunks: every satellite's cold tier holds every prompt row in position
//    order (row index = position) with the bytes spill=end stores, anchors/satellites never hold
//    more than cap + chunk slots during the prefill and end at cap, full heads keep everything.
// The K/V rows depend only on (layer, head, position), so both modes see the same rows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/thread_pool.h"
#include "engine/policy_runtime.h"
#include "heterokv/policy.h"
#include "kv/cold_tier.h"
#include "kv/kv_store.h"
#include "policy/heterocache.h"
#include "test_util.h"

namespace hkv {
namespace {

constexpr int32_t kLayers = 2, kHeadsKv = 4, kHeads = 8, kHeadDim = 16;

float value(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {  // a deterministic value in [-1, 1)
    uint32_t h = a * 2654435761u ^ (b + 0x9e3779b9u) * 40503u ^ (c + 7u) * 2246822519u ^ d * 3266489917u;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    return float(h & 0xffff) / 32768.0f - 1.0f;
}

struct Prefill {
    std::unique_ptr<KvStore> kv;
    std::unique_ptr<PolicyRuntime> rt;
    int32_t max_compressed = 0;  // most slots an anchor/satellite held after a chunk's append
    std::vector<int32_t> cap;    // [kLayers * kHeadsKv] budgets (-1 = full)
};

// Runs the prefill of n tokens in chunks of `chunk` under spec, layer by layer as forward does.
Prefill prefill(const std::string& spec, int32_t n, int32_t chunk) {
    Prefill r;
    KvStoreConfig kc;
    kc.n_layer = kLayers;
    kc.n_head_kv = kHeadsKv;
    kc.head_dim = kHeadDim;
    kc.page_size = 16;
    auto kv = KvStore::create(kc);
    EXPECT_TRUE(kv.ok());
    r.kv = std::move(kv).value();
    auto p = policy_create(spec);
    EXPECT_TRUE(p.ok()) << p.status().to_string();
    if (!p.ok()) return r;
    ModelShape shape;
    shape.n_layer = kLayers;
    shape.n_head = kHeads;
    shape.n_head_kv = kHeadsKv;
    shape.head_dim = kHeadDim;
    shape.n_ctx = n;
    auto rt = PolicyRuntime::create(std::move(p).value(), shape);
    EXPECT_TRUE(rt.ok()) << rt.status().to_string();
    if (!rt.ok()) return r;
    r.rt = std::move(rt).value();
    EXPECT_TRUE(r.rt->begin_segment(Segment{0, 0, n}).ok());
    r.cap = r.rt->budget().n_keep;
    ThreadPool pool(1);
    AttnParams ap{kHeads, kHeadsKv, kHeadDim, kc.page_size, 1.0f / std::sqrt(float(kHeadDim))};  // f16 heads (kc)
    std::vector<float> k, v, q;
    std::vector<int32_t> pos;
    for (int32_t p0 = 0; p0 < n; p0 += chunk) {
        const int32_t m = std::min(chunk, n - p0);
        pos.resize(size_t(m));
        for (int32_t t = 0; t < m; ++t) pos[size_t(t)] = p0 + t;
        q.resize(size_t(m) * kHeads * kHeadDim);
        for (int32_t il = 0; il < kLayers; ++il) {
            for (int32_t ih = 0; ih < kHeadsKv; ++ih) {
                k.resize(size_t(m) * kHeadDim);
                v.resize(k.size());
                for (int32_t t = 0; t < m; ++t) {
                    for (int32_t d = 0; d < kHeadDim; ++d) {
                        k[size_t(t) * kHeadDim + size_t(d)] = value(il, ih, p0 + t, d);
                        v[size_t(t) * kHeadDim + size_t(d)] = value(il + 100, ih, p0 + t, d);
                    }
                }
                EXPECT_TRUE(r.kv->append(il, ih, m, k.data(), kHeadDim, v.data(), kHeadDim, pos.data()).ok());
                if (r.cap[size_t(il) * kHeadsKv + size_t(ih)] > 0) {
                    r.max_compressed = std::max(r.max_compressed, r.kv->n_slot(il, ih));
                }
            }
            for (size_t i = 0; i < q.size(); ++i) q[i] = value(il + 200, uint32_t(p0), uint32_t(i), 0);
            const PolicyStep step = p0 + m == n ? kStepSegmentEnd : kStepChunk;
            const Status st = r.rt->after_layer(il, step, p0 + m, *r.kv, pool, ap, q.data(), pos.data(), m);
            EXPECT_TRUE(st.ok()) << st.to_string();
        }
    }
    return r;
}

std::vector<int32_t> slots(const KvStore& kv, int32_t il, int32_t ih) {
    const PosLane p = kv.positions(il, ih);
    return std::vector<int32_t>(p.begin(), p.end());
}

struct ColdRows {
    std::vector<uint8_t> k, v;
    std::vector<int32_t> pos;
};
ColdRows cold_rows(const Prefill& p, int32_t il, int32_t ih) {
    ColdRows c;
    const ColdTier* ct = p.kv->cold_tier();
    EXPECT_NE(ct, nullptr);
    if (!ct) return c;
    const int32_t n = ct->rows(il, ih);
    std::vector<int32_t> idx(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i) idx[size_t(i)] = i;
    c.k.resize(size_t(n) * p.kv->k_row_bytes(il, ih));
    c.v.resize(c.k.size());
    c.pos.resize(size_t(n));
    EXPECT_TRUE(ct->gather(il, ih, idx.data(), n, c.k.data(), c.v.data(), c.pos.data()).ok());
    return c;
}

class HeteroCacheSpill : public ::testing::Test {
protected:
    void SetUp() override {
        tax_ = dir_.file("tax.json");
        ASSERT_TRUE(taxonomy_save(taxonomy_structural(kLayers, kHeadsKv), tax_).ok());
    }
    std::string spec(const std::string& spill) const {
        return "heterocache:taxonomy=" + tax_ + ",ratio=0.5,weights=taxonomy,spill=" + spill;  // fixed caps per head
    }
    test::TempDir dir_;
    std::string tax_;
};

TEST_F(HeteroCacheSpill, OneChunkEqualsEnd) {
    constexpr int32_t n = 200;
    const Prefill end = prefill(spec("end"), n, n);
    const Prefill chunk = prefill(spec("chunk"), n, n);
    for (int32_t il = 0; il < kLayers; ++il) {
        for (int32_t ih = 0; ih < kHeadsKv; ++ih) {
            EXPECT_EQ(slots(*end.kv, il, ih), slots(*chunk.kv, il, ih)) << il << "," << ih;
            const ColdRows a = cold_rows(end, il, ih), b = cold_rows(chunk, il, ih);
            EXPECT_EQ(a.pos, b.pos);
            EXPECT_EQ(a.k, b.k);
            EXPECT_EQ(a.v, b.v);
        }
    }
}

TEST_F(HeteroCacheSpill, ChunksSpillEveryRowInOrder) {
    constexpr int32_t n = 300, chunk = 48;
    const Prefill end = prefill(spec("end"), n, chunk);
    const Prefill ch = prefill(spec("chunk"), n, chunk);
    const Taxonomy t = taxonomy_structural(kLayers, kHeadsKv);
    int32_t max_cap = 0;
    for (int32_t c : ch.cap) max_cap = std::max(max_cap, c);
    ASSERT_GT(max_cap, 0);
    ASSERT_LT(max_cap + chunk, n);
    EXPECT_LE(ch.max_compressed, max_cap + chunk);  // never the whole prompt
    EXPECT_EQ(end.max_compressed, n);               // spill=end holds it until the last chunk
    int32_t satellites = 0;
    for (int32_t il = 0; il < kLayers; ++il) {
        for (int32_t ih = 0; ih < kHeadsKv; ++ih) {
            const HeadRole r = t.role_of(il, ih);
            const int32_t cap = ch.cap[size_t(il) * kHeadsKv + size_t(ih)];
            const std::vector<int32_t> s = slots(*ch.kv, il, ih);
            if (r == HeadRole::kPivot || r == HeadRole::kVolatile) {
                EXPECT_EQ(s.size(), size_t(n));
                continue;
            }
            EXPECT_EQ(s.size(), size_t(cap)) << il << "," << ih;
            EXPECT_TRUE(std::is_sorted(s.begin(), s.end()));
            if (r != HeadRole::kSatellite) continue;
            ++satellites;
            const ColdRows a = cold_rows(end, il, ih), b = cold_rows(ch, il, ih);
            ASSERT_EQ(b.pos.size(), size_t(n));
            for (int32_t i = 0; i < n; ++i) ASSERT_EQ(b.pos[size_t(i)], i);  // row index = position
            EXPECT_EQ(a.pos, b.pos);
            EXPECT_EQ(a.k, b.k);
            EXPECT_EQ(a.v, b.v);
        }
    }
    EXPECT_GT(satellites, 0);
    EXPECT_NE(ch.rt->policy().report().find("spill chunk"), std::string::npos) << ch.rt->policy().report();
}

TEST_F(HeteroCacheSpill, BadSpillIsRejected) {
    auto p = policy_create("heterocache:taxonomy=" + tax_ + ",spill=later");
    ASSERT_FALSE(p.ok());
    EXPECT_NE(p.status().message().find("spill"), std::string::npos) << p.status().message();
}

}  // namespace
}  // namespace hkv
