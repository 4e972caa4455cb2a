// Unit tests for the KV store's position lane at both widths (kv/pos_vec.h): 16-bit when the
// context's n_ctx <= 65536, int32 otherwise. Every store operation that moves positions (append,
// compaction, drop_from, drop_before, cold-tier refresh, import_head) gives the same positions and
// rows at both widths, the accounting counts 2 or 4 bytes a slot, and a position a 16-bit lane
// cannot hold is a clear error, never a wrapped value.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

#include "kv/kv_store.h"

namespace hkv {
namespace {

// 1 layer x 2 heads x head_dim 32 f16 (or q4_0), pages of 16 slots; n_ctx picks the lane width.
KvStoreConfig cfg_of(int32_t n_ctx, DType t = DType::kF16, bool score_lane = false) {
    KvStoreConfig c;
    c.n_layer = 2, c.n_head_kv = 2, c.head_dim = 32, c.page_size = 16;
    c.k_type = c.v_type = t;
    c.score_lane = score_lane;
    c.n_ctx = n_ctx;
    return c;
}

std::vector<int32_t> all_pos(const KvStore& kv, int32_t il, int32_t ih) {
    const PosLane p = kv.positions(il, ih);
    EXPECT_EQ(p.size(), size_t(kv.n_slot(il, ih)));
    return std::vector<int32_t>(p.begin(), p.end());
}

// n rows of head_dim 32 whose first value is the row's position (to follow rows through moves).
Status fill(KvStore& kv, int32_t il, int32_t ih, const std::vector<int32_t>& pos) {
    std::vector<float> k(pos.size() * 32, 0.25f), v(pos.size() * 32, -0.5f);
    for (size_t i = 0; i < pos.size(); ++i) k[i * 32] = float(pos[i] % 1000);
    return kv.append(il, ih, int32_t(pos.size()), k.data(), 32, v.data(), 32, pos.data());
}

class PosLaneWidth : public ::testing::TestWithParam<int32_t> {  // the config's n_ctx
protected:
    bool narrow() const { return GetParam() > 0 && GetParam() <= 65536; }
    size_t width() const { return narrow() ? 2 : 4; }
};

TEST_P(PosLaneWidth, WidthFollowsTheContextLength) {
    const KvStoreConfig c = cfg_of(GetParam());
    EXPECT_EQ(KvStore::pos_bytes(c), width());
    // f16 rows of 32: 64 + 64 bytes a slot, and the lane
    EXPECT_EQ(KvStore::page_cost(c), 16u * (128u + width()));
    EXPECT_EQ(KvStore::page_cost(cfg_of(GetParam(), DType::kQ4_0, true)), 16u * (36u + width() + 4u));
    auto kv = KvStore::create(c);
    ASSERT_TRUE(kv.ok());
    EXPECT_EQ((*kv)->positions(0, 0).narrow(), narrow());
}

TEST_P(PosLaneWidth, AppendCompactDropAndAccounting) {
    auto made = KvStore::create(cfg_of(GetParam(), DType::kQ4_0, true));
    ASSERT_TRUE(made.ok());
    KvStore& kv = **made;
    std::vector<int32_t> pos(40);
    std::iota(pos.begin(), pos.end(), 65000);  // up to 65039: the top of the 16-bit range
    ASSERT_TRUE(fill(kv, 1, 1, pos).ok());
    EXPECT_EQ(all_pos(kv, 1, 1), pos);
    // 40 slots: 3 pages of 16 q4_0 rows (18 + 18 bytes) and 40 lanes (position + score)
    EXPECT_EQ(kv.bytes_in_use(), 3u * 16u * 36u + 40u * (width() + 4u));
    EXPECT_EQ(kv.bytes_reserved(), kv.bytes_in_use());
    // compaction keeps positions with their rows
    const std::vector<int32_t> keep = {0, 3, 17, 20, 33, 39};
    ASSERT_TRUE(kv.compact(1, 1, keep.data(), int32_t(keep.size())).ok());
    std::vector<int32_t> want;
    for (int32_t s : keep) want.push_back(pos[size_t(s)]);
    EXPECT_EQ(all_pos(kv, 1, 1), want);
    EXPECT_EQ(kv.view(1, 1).pos[5], 65039);
    // one short page of 8 slots (tail granule) and 6 lanes
    EXPECT_EQ(kv.bytes_in_use(), 8u * 36u + 6u * (width() + 4u));
    // rewind: drop_from removes the positions >= 65020
    kv.drop_from(65020);
    EXPECT_EQ(all_pos(kv, 1, 1), (std::vector<int32_t>{65000, 65003, 65017}));
    EXPECT_EQ(kv.bytes_in_use(), 8u * 36u + 3u * (width() + 4u));
    kv.clear();
    EXPECT_EQ(kv.bytes_in_use(), 0u);
}

TEST_P(PosLaneWidth, DropBeforeAndRefreshMovePositions) {
    auto made = KvStore::create(cfg_of(GetParam()));
    ASSERT_TRUE(made.ok());
    KvStore& kv = **made;
    std::vector<int32_t> pos(50);
    std::iota(pos.begin(), pos.end(), 0);
    ASSERT_TRUE(fill(kv, 0, 0, pos).ok());
    EXPECT_EQ(kv.drop_before(0, 33), 32);  // two whole pages leave the window
    EXPECT_EQ(all_pos(kv, 0, 0), std::vector<int32_t>(pos.begin() + 32, pos.end()));
    // overwrite_slots (a cold-tier refresh) writes positions too
    const std::vector<uint8_t> k(2 * kv.k_row_bytes(0, 0)), v(2 * kv.v_row_bytes(0, 0));
    const int32_t moved[2] = {40, 41};
    ASSERT_TRUE(kv.overwrite_slots(0, 0, 0, 2, k.data(), v.data(), moved).ok());
    EXPECT_EQ(kv.positions(0, 0)[0], 40);
    EXPECT_EQ(kv.positions(0, 0)[1], 41);
}

TEST_P(PosLaneWidth, ImportHeadRoundTrip) {
    auto a = KvStore::create(cfg_of(GetParam()));
    ASSERT_TRUE(a.ok());
    const std::vector<int32_t> pos = {0, 7, 300, 4096, 65535};
    ASSERT_TRUE(fill(**a, 1, 0, pos).ok());
    // what a saved context holds: int32 positions and raw rows, read back into a store of either width
    std::vector<int32_t> saved(pos.size());
    (*a)->positions(1, 0).copy(0, pos.size(), saved.data());
    EXPECT_EQ(saved, pos);
    std::vector<uint8_t> k, v;
    for (int32_t s = 0; s < int32_t(pos.size()); ++s) {
        k.insert(k.end(), (*a)->k_row(1, 0, s), (*a)->k_row(1, 0, s) + (*a)->k_row_bytes(1, 0));
        v.insert(v.end(), (*a)->v_row(1, 0, s), (*a)->v_row(1, 0, s) + (*a)->v_row_bytes(1, 0));
    }
    for (int32_t n_ctx : {65536, 70000}) {
        auto b = KvStore::create(cfg_of(n_ctx));
        ASSERT_TRUE(b.ok());
        ASSERT_TRUE((*b)->import_head(1, 0, int32_t(pos.size()), k.data(), v.data(), saved.data(), nullptr, true).ok());
        EXPECT_EQ(all_pos(**b, 1, 0), pos);
        for (int32_t s = 0; s < int32_t(pos.size()); ++s) {
            EXPECT_EQ(0, std::memcmp((*b)->k_row(1, 0, s), (*a)->k_row(1, 0, s), (*a)->k_row_bytes(1, 0)));
        }
    }
}

TEST_P(PosLaneWidth, PositionsBeyondTheLaneAreErrors) {
    auto made = KvStore::create(cfg_of(GetParam()));
    ASSERT_TRUE(made.ok());
    KvStore& kv = **made;
    const std::vector<int32_t> big = {65534, 65535, 65536};
    const Status st = fill(kv, 0, 1, big);
    if (narrow()) {
        ASSERT_EQ(st.code(), StatusCode::kInvalidArgument);
        EXPECT_NE(st.message().find("does not fit the 16-bit position lane"), std::string::npos) << st.message();
        EXPECT_EQ(kv.n_slot(0, 1), 0);  // nothing appended, nothing wrapped
        EXPECT_EQ(kv.bytes_in_use(), 0u);
        const std::vector<uint8_t> k(kv.k_row_bytes(0, 1)), v(kv.v_row_bytes(0, 1));
        const int32_t p = 70000;
        EXPECT_EQ(kv.import_head(0, 1, 1, k.data(), v.data(), &p, nullptr, false).code(),
                  StatusCode::kInvalidArgument);
        const int32_t neg = -1;
        EXPECT_EQ(fill(kv, 0, 1, {neg}).code(), StatusCode::kInvalidArgument);
        ASSERT_TRUE(fill(kv, 0, 1, {5}).ok());
        EXPECT_EQ(kv.overwrite_slots(0, 1, 0, 1, k.data(), v.data(), &p).code(), StatusCode::kInvalidArgument);
        EXPECT_EQ(kv.positions(0, 1)[0], 5);
    } else {
        ASSERT_TRUE(st.ok()) << st.to_string();
        EXPECT_EQ(all_pos(kv, 0, 1), big);
    }
}

// 512 and 65536: 16-bit; 65537 and 0 (no bound): int32
INSTANTIATE_TEST_SUITE_P(Widths, PosLaneWidth, ::testing::Values(512, 65536, 65537, 0));

TEST(PosLane, ViewReadsBothWidthsAlike) {
    const std::vector<int32_t> p32 = {3, 9, 65535};
    const std::vector<uint16_t> p16 = {3, 9, 65535};
    const PosLane a(p32), b(p16.data(), p16.size());
    EXPECT_FALSE(a.narrow());
    EXPECT_TRUE(b.narrow());
    EXPECT_EQ(std::vector<int32_t>(a.begin(), a.end()), std::vector<int32_t>(b.begin(), b.end()));
    EXPECT_EQ(std::lower_bound(b.begin(), b.end(), 10) - b.begin(), 2);
    EXPECT_EQ(std::upper_bound(b.begin(), b.end(), 9) - b.begin(), 2);
    int32_t buf[2];
    EXPECT_EQ(a.rows(1, 2, buf), p32.data() + 1);  // an int32 lane is read in place
    const int32_t* w = b.rows(1, 2, buf);
    EXPECT_EQ(w, buf);
    EXPECT_EQ(w[1], 65535);
    EXPECT_EQ(b.back(), 65535);
}

}  // namespace
}  // namespace hkv
