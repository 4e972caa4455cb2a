// Unit tests for the paged per-head KV store: append, views, compaction, accounting, limits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "backend/cpu/quant.h"
#include "core/fp16.h"
#include "core/thread_pool.h"
#include "kv/cold_tier.h"
#include "kv/kv_store.h"

namespace hkv {
namespace {

KvStoreConfig small_cfg(DType t = DType::kF32, int32_t page = 4) {
    KvStoreConfig c;
    c.n_layer = 2;
    c.n_head_kv = 3;
    c.head_dim = 8;
    c.page_size = page;
    c.k_type = c.v_type = t;
    return c;
}

// Fills n rows [n, head_dim] with value base + row + col/100.
std::vector<float> rows(int n, int hd, float base) {
    std::vector<float> v(size_t(n) * size_t(hd));
    for (int r = 0; r < n; ++r)
        for (int c = 0; c < hd; ++c) v[size_t(r * hd + c)] = base + float(r) + float(c) / 100.0f;
    return v;
}

float read_k(const KvStore& kv, int il, int ih, int s) {
    const AttnKvHead h = kv.view(il, ih);
    const int ps = kv.config().page_size;
    const float* page = static_cast<const float*>(h.k_pages[s / ps]);
    return page[size_t(s % ps) * size_t(kv.config().head_dim)];
}

TEST(KvStore, AppendViewAndExactAccounting) {
    auto kv = KvStore::create(small_cfg());
    ASSERT_TRUE(kv.ok());
    KvStore& s = **kv;
    EXPECT_EQ(s.bytes_in_use(), 0u);
    auto k = rows(10, 8, 0.0f), v = rows(10, 8, 100.0f);
    std::vector<int32_t> pos(10);
    std::iota(pos.begin(), pos.end(), 0);
    ASSERT_TRUE(s.append(1, 2, 10, k.data(), 8, v.data(), 8, pos.data()).ok());
    EXPECT_EQ(s.n_slot(1, 2), 10);
    EXPECT_EQ(s.n_slot(0, 0), 0);
    // 10 slots at page size 4 -> 3 K pages + 3 V pages of 4*8*4 bytes, plus 10 positions.
    EXPECT_EQ(s.page_bytes(0, 0), 4u * 8u * 4u);
    EXPECT_EQ(s.bytes_in_use(), 6u * 128u + 10u * 4u);
    EXPECT_LE(s.bytes_in_use(), 3u * KvStore::page_cost(s.config()));
    for (int i = 0; i < 10; ++i) EXPECT_EQ(read_k(s, 1, 2, i), float(i));
    const AttnKvHead h = s.view(1, 2);
    EXPECT_EQ(h.n_slot, 10);
    EXPECT_EQ(h.pos[9], 9);
    EXPECT_EQ(static_cast<const float*>(h.v_pages[2])[8], 100.0f + 9.0f);
}

TEST(KvStore, CompactKeepsChosenSlotsInOrderAndFreesPages) {
    auto kv = KvStore::create(small_cfg());
    KvStore& s = **kv;
    auto k = rows(16, 8, 0.0f);
    std::vector<int32_t> pos(16);
    std::iota(pos.begin(), pos.end(), 100);
    ASSERT_TRUE(s.append(0, 1, 16, k.data(), 8, k.data(), 8, pos.data()).ok());
    const size_t before = s.bytes_in_use();
    std::vector<int32_t> keep = {0, 3, 7, 15};
    ASSERT_TRUE(s.compact(0, 1, keep.data(), 4).ok());
    EXPECT_EQ(s.n_slot(0, 1), 4);
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(read_k(s, 0, 1, i), float(keep[size_t(i)]));
        EXPECT_EQ(s.positions(0, 1)[i], 100 + keep[size_t(i)]);
    }
    EXPECT_EQ(s.bytes_in_use(), 2u * s.page_bytes(0, 0) + 4u * 4u);  // 1 K + 1 V page, 1 page of positions
    EXPECT_LT(s.bytes_in_use(), before);
    // Not ascending / out of range: rejected, head unchanged.
    std::vector<int32_t> bad = {2, 1};
    EXPECT_FALSE(s.compact(0, 1, bad.data(), 2).ok());
    std::vector<int32_t> oob = {0, 9};
    EXPECT_FALSE(s.compact(0, 1, oob.data(), 2).ok());
    EXPECT_EQ(s.n_slot(0, 1), 4);
}

TEST(KvStore, DropFromRemovesSuffixEverywhere) {
    auto kv = KvStore::create(small_cfg());
    KvStore& s = **kv;
    auto k = rows(9, 8, 0.0f);
    std::vector<int32_t> pos(9);
    std::iota(pos.begin(), pos.end(), 0);
    for (int il = 0; il < 2; ++il)
        for (int ih = 0; ih < 3; ++ih) ASSERT_TRUE(s.append(il, ih, 9, k.data(), 8, k.data(), 8, pos.data()).ok());
    s.drop_from(5);
    for (int il = 0; il < 2; ++il)
        for (int ih = 0; ih < 3; ++ih) EXPECT_EQ(s.n_slot(il, ih), 5);
    EXPECT_EQ(s.slots_total(), 30);
}

// A sliding-window layer's slots that left the window: whole leading pages are freed (never the
// last page), the rows left keep their values and positions, the score lane moves with them.
TEST(KvStore, DropBeforeFreesLeadingPagesOfOneLayer) {
    KvStoreConfig cfg = small_cfg();
    cfg.score_lane = true;
    auto kv = KvStore::create(cfg);
    ASSERT_TRUE(kv.ok());
    KvStore& s = **kv;
    const int hd = cfg.head_dim;
    const auto k = rows(14, hd, 100.0f), v = rows(14, hd, 200.0f);
    std::vector<int32_t> pos(14);
    std::iota(pos.begin(), pos.end(), 10);  // positions 10..23, pages of 4: [10..13] [14..17] [18..21] [22, 23]
    for (int il = 0; il < 2; ++il)
        for (int ih = 0; ih < 3; ++ih) ASSERT_TRUE(s.append(il, ih, 14, k.data(), hd, v.data(), hd, pos.data()).ok());
    for (int i = 0; i < 14; ++i) s.scores(0, 1)[i] = float(i);
    const size_t before = s.bytes_in_use();
    const uint64_t epoch = s.epoch();
    EXPECT_EQ(s.drop_before(0, 10), 0);  // nothing is older
    EXPECT_EQ(s.epoch(), epoch);
    EXPECT_EQ(s.drop_before(0, 17), 3 * 4);  // page [14..17] still holds 17: only the first page goes
    for (int ih = 0; ih < 3; ++ih) {
        ASSERT_EQ(s.n_slot(0, ih), 10);
        EXPECT_EQ(s.positions(0, ih)[0], 14);
        EXPECT_FLOAT_EQ(read_k(s, 0, ih, 0), 104.0f);
        EXPECT_EQ(s.n_slot(1, ih), 14);  // the other layer is untouched
    }
    EXPECT_FLOAT_EQ(s.scores(0, 1)[0], 4.0f);
    EXPECT_NE(s.epoch(), epoch);
    EXPECT_EQ(s.bytes_in_use(), before - 3 * (2 * s.page_bytes(0, 0) + 4 * (sizeof(int32_t) + sizeof(float))));
    EXPECT_EQ(s.drop_before(0, 1000), 3 * 8);  // everything is old: the last page stays
    for (int ih = 0; ih < 3; ++ih) {
        ASSERT_EQ(s.n_slot(0, ih), 2);
        EXPECT_EQ(s.positions(0, ih)[1], 23);
        EXPECT_FLOAT_EQ(read_k(s, 0, ih, 1), 113.0f);
    }
    // freed pages are reused by the next append: reserved grows by the new slots' position and
    // score entries only, not by a page
    const size_t reserved = s.bytes_reserved();
    ASSERT_TRUE(s.append(0, 0, 4, k.data(), hd, v.data(), hd, pos.data()).ok());
    EXPECT_EQ(s.bytes_reserved(), reserved + 4 * (sizeof(int32_t) + sizeof(float)));
}

TEST(KvStore, F16StorageRoundsLikeFp16) {
    auto kv = KvStore::create(small_cfg(DType::kF16));
    KvStore& s = **kv;
    std::vector<float> k(8, 0.1f);
    int32_t p = 0;
    ASSERT_TRUE(s.append(0, 0, 1, k.data(), 8, k.data(), 8, &p).ok());
    const uint16_t* row = static_cast<const uint16_t*>(s.view(0, 0).k_pages[0]);
    EXPECT_EQ(row[0], fp32_to_fp16(0.1f));
    EXPECT_EQ(s.page_bytes(0, 0), 4u * 8u * 2u);
}

TEST(KvStore, MemoryLimitIsEnforcedWithoutPartialAppend) {
    KvStoreConfig c = small_cfg();
    c.score_lane = true;
    auto k = rows(12, 8, 0.0f);
    std::vector<int32_t> pos(12);
    std::iota(pos.begin(), pos.end(), 0);
    {  // the limit covers the position and score lanes too (issue 24 item 10): K+V pages alone fit,
       // the lanes do not
        KvStoreConfig pages_only = c;
        pages_only.max_bytes = 4 * 128;
        auto kv = KvStore::create(pages_only);
        EXPECT_EQ((*kv)->append(0, 0, 8, k.data(), 8, k.data(), 8, pos.data()).code(), StatusCode::kOutOfMemory);
        EXPECT_EQ((*kv)->bytes_in_use(), 0u);
    }
    c.max_bytes = int64_t(2 * KvStore::page_cost(c));  // room for 2 head pages: K, V, positions, scores
    EXPECT_EQ(KvStore::page_cost(c), 2u * 128u + 4u * (4u + 4u));
    auto kv = KvStore::create(c);
    KvStore& s = **kv;
    ASSERT_TRUE(s.append(0, 0, 8, k.data(), 8, k.data(), 8, pos.data()).ok());
    EXPECT_EQ(int64_t(s.bytes_in_use()), c.max_bytes);
    Status st = s.append(0, 1, 1, k.data(), 8, k.data(), 8, pos.data());
    EXPECT_EQ(st.code(), StatusCode::kOutOfMemory);
    EXPECT_EQ(s.n_slot(0, 1), 0);
    // Freed pages make room again.
    std::vector<int32_t> keep = {0};
    ASSERT_TRUE(s.compact(0, 0, keep.data(), 1).ok());
    EXPECT_TRUE(s.append(0, 1, 1, k.data(), 8, k.data(), 8, pos.data()).ok());
}

// A head of n slots never costs more than ceil(n / page_size) * page_cost (whole K and V pages and
// the lanes of page_size slots: what the engine's kv_bytes_bound counts) and never less than its
// rows and lanes, through appends one slot at a time (decode), compaction (short last pages),
// truncation and clear.
TEST(KvStore, AccountingIsBoundedByHeadPages) {
    KvStoreConfig c = small_cfg(DType::kF16, 16);  // tail granule 8: compacted heads get short pages
    c.score_lane = true;
    auto kv = KvStore::create(c);
    KvStore& s = **kv;
    const size_t slot_bytes = 2u * 8u * 2u + 4u + 4u;  // K and V rows, position, score
    auto pages = [&] {
        size_t n = 0;
        for (int il = 0; il < c.n_layer; ++il)
            for (int ih = 0; ih < c.n_head_kv; ++ih) n += size_t((s.n_slot(il, ih) + c.page_size - 1) / c.page_size);
        return n;
    };
    auto check = [&](const char* what) {
        EXPECT_LE(s.bytes_in_use(), pages() * KvStore::page_cost(c)) << what;
        EXPECT_GE(s.bytes_in_use(), size_t(s.slots_total()) * slot_bytes) << what;
        EXPECT_GE(s.bytes_reserved(), s.bytes_in_use()) << what;
    };
    auto k = rows(40, 8, 0.0f);
    std::vector<int32_t> pos(40);
    std::iota(pos.begin(), pos.end(), 0);
    ASSERT_TRUE(s.append(0, 0, 21, k.data(), 8, k.data(), 8, pos.data()).ok());
    check("prefill");
    for (int i = 21; i < 40; ++i) {
        ASSERT_TRUE(s.append(0, 0, 1, k.data() + i * 8, 8, k.data() + i * 8, 8, pos.data() + i).ok());
        ASSERT_TRUE(s.append(1, 2, 1, k.data() + i * 8, 8, k.data() + i * 8, 8, pos.data() + i).ok());
        check("decode");
    }
    std::vector<int32_t> keep = {1, 5, 9, 20, 30};
    ASSERT_TRUE(s.compact(0, 0, keep.data(), 5).ok());
    check("compact");
    s.drop_from(35);
    check("drop_from");
    s.clear();
    check("clear");
    EXPECT_EQ(s.bytes_in_use(), 0u);
}

// write_row (merging policies): overwrites one slot's K and V in the store's type, keeps its
// position, bumps the epoch, rejects slots and heads outside the cache.
TEST(KvStore, WriteRowOverwritesOneSlotInItsType) {
    for (DType t : {DType::kF32, DType::kF16, DType::kBF16}) {
        auto kv = KvStore::create(small_cfg(t));
        ASSERT_TRUE(kv.ok());
        KvStore& s = **kv;
        auto k = rows(6, 8, 0.0f), v = rows(6, 8, 100.0f);
        std::vector<int32_t> pos = {3, 4, 7, 8, 9, 12};
        ASSERT_TRUE(s.append(0, 1, 6, k.data(), 8, v.data(), 8, pos.data()).ok());
        const uint64_t e0 = s.epoch();
        const std::vector<float> nk = {0.5f, -1.25f, 2, 3, 4, 5, 6, 7}, nv = {-8, 9, 10, 11, 12, 13, 14, 15.5f};
        ASSERT_TRUE(s.write_row(0, 1, 5, nk.data(), nv.data()).ok());
        EXPECT_GT(s.epoch(), e0);
        const AttnKvHead h = s.view(0, 1);
        std::vector<float> got(8);
        for (int kind = 0; kind < 2; ++kind) {
            const void* page = (kind == 0 ? h.k_pages : h.v_pages)[5 / 4];
            for (int d = 0; d < 8; ++d) {
                const size_t i = size_t(5 % 4) * 8 + size_t(d);
                got[size_t(d)] = t == DType::kF32 ? static_cast<const float*>(page)[i]
                                 : t == DType::kF16 ? fp16_to_fp32(static_cast<const uint16_t*>(page)[i])
                                                    : bf16_to_fp32(static_cast<const uint16_t*>(page)[i]);
            }
            EXPECT_EQ(got, kind == 0 ? nk : nv) << dtype_name(t);  // values exact in every type
        }
        if (t == DType::kF32) {
            for (int i = 0; i < 5; ++i) EXPECT_EQ(read_k(s, 0, 1, i), float(i));  // others untouched
        }
        EXPECT_EQ(s.positions(0, 1)[5], 12);
        EXPECT_FALSE(s.write_row(0, 1, 6, nk.data(), nv.data()).ok());
        EXPECT_FALSE(s.write_row(0, 1, -1, nk.data(), nv.data()).ok());
        EXPECT_FALSE(s.write_row(2, 0, 0, nk.data(), nv.data()).ok());
        EXPECT_FALSE(s.write_row(0, 3, 0, nk.data(), nv.data()).ok());
    }
}

// Compressed heads: after a compaction the last page is short (rows rounded up to the granule) and
// grows granule by granule as rows are appended; heads never compacted keep whole pages. Every
// slot keeps its row through the moves, and bytes_in_use follows the short pages exactly.
TEST(KvStore, CompactedHeadsHoldShortLastPages) {
    KvStoreConfig c = small_cfg(DType::kF32, 16);
    c.tail_granule = 4;
    auto kv = KvStore::create(c);
    ASSERT_TRUE(kv.ok());
    KvStore& s = **kv;
    const size_t row = 8 * 4;  // head_dim 8, f32
    auto k = rows(64, 8, 0.0f);
    std::vector<int32_t> pos(64);
    std::iota(pos.begin(), pos.end(), 0);
    ASSERT_TRUE(s.append(0, 0, 40, k.data(), 8, k.data(), 8, pos.data()).ok());
    ASSERT_TRUE(s.append(0, 1, 5, k.data(), 8, k.data(), 8, pos.data()).ok());  // never compacted
    EXPECT_EQ(s.bytes_in_use(), 2 * (3 + 1) * s.page_bytes(0, 0) + 45 * 4);
    std::vector<int32_t> keep(21);
    std::iota(keep.begin(), keep.end(), 19);  // slots 19..39
    ASSERT_TRUE(s.compact(0, 0, keep.data(), 21).ok());
    // head (0,0): one whole page + a short page of 8 rows for its 5 last rows
    EXPECT_EQ(s.bytes_in_use(), 2 * (16 + 8) * row + 2 * s.page_bytes(0, 0) + 26 * 4);
    for (int i = 0; i < 21; ++i) EXPECT_EQ(read_k(s, 0, 0, i), float(19 + i));
    auto check_tail = [&](int n_expect, size_t last_rows_cap) {
        EXPECT_EQ(s.n_slot(0, 0), n_expect);
        const size_t pages = size_t((n_expect + 15) / 16);
        EXPECT_EQ(s.bytes_in_use(), 2 * ((pages - 1) * 16 + last_rows_cap) * row + 2 * s.page_bytes(0, 0) +
                                        size_t(n_expect + 5) * 4);
        for (int i = 0; i < 21; ++i) EXPECT_EQ(read_k(s, 0, 0, i), float(19 + i));
        for (int i = 21; i < n_expect; ++i) EXPECT_EQ(read_k(s, 0, 0, i), float(40 + i - 21));
    };
    auto more = rows(64, 8, 40.0f);
    int n = 21;
    auto add = [&](int m) {
        ASSERT_TRUE(s.append(0, 0, m, more.data() + size_t(n - 21) * 8, 8, more.data() + size_t(n - 21) * 8, 8,
                             pos.data()).ok());
        n += m;
    };
    add(1);
    check_tail(22, 8);   // 6 rows in the short page of 8
    add(3);
    check_tail(25, 12);  // 9 rows: grown to 12
    add(8);
    check_tail(33, 4);   // the short page became whole; a new short page of 4 holds row 32
    add(15);
    check_tail(48, 16);  // exactly three whole pages
    // A compaction to 3 slots leaves one short page of 4 rows.
    std::vector<int32_t> three = {0, 1, 47};
    ASSERT_TRUE(s.compact(0, 0, three.data(), 3).ok());
    EXPECT_EQ(s.bytes_in_use(), 2 * 4 * row + 2 * s.page_bytes(0, 0) + 8 * 4);
    EXPECT_EQ(read_k(s, 0, 0, 2), float(40 + 47 - 21));
    s.clear();
    EXPECT_EQ(s.bytes_in_use(), 0u);
    EXPECT_EQ(s.bytes_reserved() % s.page_bytes(0, 0), 0u);  // only pool pages remain
}

// The memory limit counts short pages at their size: a compacted head frees room to the byte.
TEST(KvStore, MemoryLimitCountsShortPages) {
    KvStoreConfig c = small_cfg(DType::kF32, 16);
    c.tail_granule = 4;
    // one whole page + one 4-row page, K and V, and the positions of the 20 slots they end with
    c.max_bytes = 2 * 16 * 8 * 4 + 2 * 4 * 8 * 4 + 20 * 4;
    auto kv = KvStore::create(c);
    KvStore& s = **kv;
    auto k = rows(16, 8, 0.0f);
    std::vector<int32_t> pos(16);
    std::iota(pos.begin(), pos.end(), 0);
    ASSERT_TRUE(s.append(0, 0, 16, k.data(), 8, k.data(), 8, pos.data()).ok());
    EXPECT_EQ(s.append(0, 1, 1, k.data(), 8, k.data(), 8, pos.data()).code(), StatusCode::kOutOfMemory);
    std::vector<int32_t> keep = {3, 5};
    ASSERT_TRUE(s.compact(0, 0, keep.data(), 2).ok());  // -> one 4-row page
    ASSERT_TRUE(s.append(0, 1, 16, k.data(), 8, k.data(), 8, pos.data()).ok());
    EXPECT_EQ(s.append(0, 0, 3, k.data(), 8, k.data(), 8, pos.data()).code(), StatusCode::kOutOfMemory);
    EXPECT_EQ(s.n_slot(0, 0), 2);
    EXPECT_EQ(read_k(s, 0, 0, 1), 5.0f);
    ASSERT_TRUE(s.append(0, 0, 2, k.data(), 8, k.data(), 8, pos.data()).ok());  // fills its 4 rows
}

// apply (the only way a policy's plan reaches the cache): merged rows and their score lanes
// before the compaction, which keeps the chosen slots.
TEST(KvStore, ApplyWritesRowsThenCompacts) {
    KvStoreConfig c = small_cfg();
    c.score_lane = true;
    auto kv = KvStore::create(c);
    ASSERT_TRUE(kv.ok());
    KvStore& s = **kv;
    auto k = rows(8, 8, 0.0f), v = rows(8, 8, 100.0f);
    std::vector<int32_t> pos(8);
    std::iota(pos.begin(), pos.end(), 0);
    for (int ih = 0; ih < 3; ++ih) ASSERT_TRUE(s.append(1, ih, 8, k.data(), 8, v.data(), 8, pos.data()).ok());
    const std::vector<float> nk(8, 42.0f), nv(8, -1.0f);
    const RowWrite w[1] = {RowWrite{1, 6, nk.data(), nv.data(), 3.5f}};
    std::vector<int32_t> keep = {-1, -1, -1, -1, 0, 2, 6, -1, -1, -1, -1, -1}, n_keep = {-1, 3, 8};
    LayerPlan plan;
    plan.stride = 4;
    plan.keep = keep;
    plan.n_keep = n_keep;
    plan.writes = w;
    ASSERT_TRUE(s.apply(1, plan).ok());
    EXPECT_EQ(s.n_slot(1, 0), 8);  // -1: untouched
    EXPECT_EQ(s.n_slot(1, 2), 8);  // n_keep = n: untouched
    ASSERT_EQ(s.n_slot(1, 1), 3);
    EXPECT_EQ(std::vector<int32_t>(s.positions(1, 1).begin(), s.positions(1, 1).end()), (std::vector<int32_t>{0, 2, 6}));
    EXPECT_EQ(read_k(s, 1, 1, 2), 42.0f);  // the merged row moved with its slot
    EXPECT_EQ(s.scores(1, 1)[2], 3.5f);
    keep[4] = 2, keep[5] = 1;  // not ascending
    n_keep = {-1, 2, -1};
    EXPECT_EQ(s.apply(1, LayerPlan{4, keep, n_keep, {}, {}}).code(), StatusCode::kInvalidArgument);
}

// The cold tier belongs to the store: spills copy a head's newest rows into it before the plan's
// compaction, refreshes gather rows back in the background and land before the next attention,
// and drop_from / clear cut it with the cache.
class ColdGatherModes : public ::testing::TestWithParam<bool> {};  // KvStoreConfig::cold_async

TEST_P(ColdGatherModes, ColdTierSpillRefreshAndRewind) {
    KvStoreConfig cfg = small_cfg();
    cfg.cold_async = GetParam();
    auto kv = KvStore::create(cfg);
    ASSERT_TRUE(kv.ok());
    KvStore& s = **kv;
    auto k = rows(12, 8, 0.0f), v = rows(12, 8, 100.0f);
    std::vector<int32_t> pos(12);
    std::iota(pos.begin(), pos.end(), 0);
    ASSERT_TRUE(s.append(0, 1, 8, k.data(), 8, v.data(), 8, pos.data()).ok());
    EXPECT_EQ(s.cold_tier(), nullptr);
    // spill + compaction to slots {1, 4, 7} in one plan: the tier gets all 8 rows
    const ColdOp spill[1] = {ColdOp{ColdOpKind::kSpill, 1}};
    std::vector<int32_t> keep(3 * 8, 0), n_keep = {-1, 3, -1};
    keep[8] = 1, keep[9] = 4, keep[10] = 7;
    ASSERT_TRUE(s.apply(0, LayerPlan{8, keep, n_keep, {}, spill}).ok());
    ASSERT_NE(s.cold_tier(), nullptr);
    EXPECT_EQ(s.cold_rows(0, 1), 8);
    EXPECT_EQ(s.cold_rows(0, 0), 0);
    EXPECT_EQ(s.n_slot(0, 1), 3);
    // 4 more tokens (positions 8..11) then a spill: only the new rows go
    ASSERT_TRUE(s.append(0, 1, 4, k.data() + 8 * 8, 8, v.data() + 8 * 8, 8, pos.data() + 8).ok());
    n_keep = {-1, -1, -1};
    ASSERT_TRUE(s.apply(0, LayerPlan{8, keep, n_keep, {}, spill}).ok());
    EXPECT_EQ(s.cold_rows(0, 1), 12);
    // a refresh of slots [0, 2) from tier rows {2, 5}: pending until apply_pending
    const std::vector<int32_t> rows_wanted = {2, 5};
    const ColdOp refresh[1] = {ColdOp{ColdOpKind::kRefresh, 1, 0, rows_wanted}};
    ASSERT_TRUE(s.apply(0, LayerPlan{8, keep, n_keep, {}, refresh}).ok());
    EXPECT_EQ(s.positions(0, 1)[0], 1);
    EXPECT_EQ(s.apply(0, LayerPlan{8, keep, n_keep, {}, refresh}).code(), StatusCode::kInternal);  // one in flight
    ASSERT_TRUE(s.apply_pending(0).ok());
    EXPECT_EQ(std::vector<int32_t>(s.positions(0, 1).begin(), s.positions(0, 1).begin() + 3), (std::vector<int32_t>{2, 5, 7}));
    EXPECT_EQ(read_k(s, 0, 1, 0), 2.0f);
    EXPECT_EQ(read_k(s, 0, 1, 1), 5.0f);
    EXPECT_EQ(s.cold_stats().refreshes, 1);
    EXPECT_EQ(s.cold_stats().bytes_gathered, 2 * 2 * 8 * 4);
    ASSERT_TRUE(s.apply_pending(0).ok());  // nothing pending: a no-op
    // rewinding to position 10 drops the tier's rows 10, 11 and a pending refresh
    const std::vector<int32_t> other = {3, 6};
    const ColdOp refresh2[1] = {ColdOp{ColdOpKind::kRefresh, 1, 0, other}};
    ASSERT_TRUE(s.apply(0, LayerPlan{8, keep, n_keep, {}, refresh2}).ok());
    s.drop_from(10);
    EXPECT_EQ(s.cold_rows(0, 1), 10);
    ASSERT_TRUE(s.apply_pending(0).ok());
    EXPECT_EQ(s.positions(0, 1)[0], 2);  // the dropped refresh never landed
    s.clear();
    EXPECT_EQ(s.cold_rows(0, 1), 0);
    EXPECT_EQ(s.cold_stats().refreshes, 0);
    // a spill whose rows are not the head's newest at consecutive positions is a bug in the plan
    const std::vector<int32_t> odd = {0, 1, 5};
    ASSERT_TRUE(s.append(0, 1, 3, k.data(), 8, v.data(), 8, odd.data()).ok());
    EXPECT_EQ(s.apply(0, LayerPlan{8, keep, n_keep, {}, spill}).code(), StatusCode::kInternal);
}

INSTANTIATE_TEST_SUITE_P(KvStore, ColdGatherModes, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "IoThread" : "Fence"; });

// A refresh of many rows (several of the fence's 256-row units, two heads, 16-bit positions, a
// score lane) lands the same bytes whether the I/O thread gathers it or the fence copies it over
// a pool; at the fence a bad row or a failing tier is an error that leaves the slots untouched.
TEST(KvStore, ColdRefreshAtTheFenceEqualsTheIoThread) {
    const int32_t n = 700;
    auto k = rows(n, 8, 0.0f), v = rows(n, 8, 1000.0f);
    std::vector<int32_t> pos(static_cast<size_t>(n)), all(static_cast<size_t>(n));
    std::iota(pos.begin(), pos.end(), 0);
    std::iota(all.begin(), all.end(), 0);
    std::vector<int32_t> wanted;  // 350 of the 700 rows, ascending
    for (int32_t r = 1; r < n; r += 2) wanted.push_back(r);
    ThreadPool pool(2);
    std::vector<std::vector<uint8_t>> got;  // [mode] every K and V byte and position of both heads
    for (bool async : {true, false}) {
        KvStoreConfig cfg = small_cfg(DType::kF16, 64);
        cfg.cold_async = async;
        cfg.n_ctx = 4096;  // 16-bit positions
        cfg.score_lane = true;
        auto kv = KvStore::create(cfg);
        ASSERT_TRUE(kv.ok());
        KvStore& s = **kv;
        const ColdOp spill[2] = {ColdOp{ColdOpKind::kSpill, 0}, ColdOp{ColdOpKind::kSpill, 2}};
        for (int32_t ih : {0, 2}) ASSERT_TRUE(s.append(1, ih, n, k.data(), 8, v.data(), 8, pos.data()).ok());
        std::vector<int32_t> keep(3 * size_t(n), 0), n_keep = {400, -1, 400};
        for (int32_t i = 0; i < 400; ++i) keep[size_t(i)] = keep[2 * size_t(n) + size_t(i)] = i;
        ASSERT_TRUE(s.apply(1, LayerPlan{n, keep, n_keep, {}, spill}).ok());
        s.scores(1, 0)[5] = 7.0f;
        const ColdOp refresh[2] = {ColdOp{ColdOpKind::kRefresh, 0, 0, wanted}, ColdOp{ColdOpKind::kRefresh, 2, 10, wanted}};
        n_keep = {-1, -1, -1};
        if (!async) {  // a row the tier does not hold: refused at the fence, nothing written
            std::vector<int32_t> bad = wanted;
            bad.back() = n;
            const ColdOp wrong[1] = {ColdOp{ColdOpKind::kRefresh, 0, 0, bad}};
            ASSERT_TRUE(s.apply(1, LayerPlan{n, keep, n_keep, {}, wrong}).ok());
            EXPECT_EQ(s.apply_pending(1, &pool).code(), StatusCode::kInvalidArgument);
            EXPECT_EQ(s.positions(1, 0)[0], 0);
            EXPECT_EQ(s.cold_stats().refreshes, 0);
        }
        ASSERT_TRUE(s.apply(1, LayerPlan{n, keep, n_keep, {}, refresh}).ok());
        ASSERT_TRUE(s.apply_pending(1, &pool).ok());
        EXPECT_EQ(s.cold_stats().refreshes, 1);
        EXPECT_EQ(s.cold_stats().bytes_gathered, 2 * 350 * 2 * 8 * 2);
        EXPECT_EQ(s.scores(1, 0)[5], 0.0f);  // a refreshed slot's lane restarts
        std::vector<uint8_t> bytes;
        for (int32_t ih : {0, 2}) {
            for (int32_t slot = 0; slot < s.n_slot(1, ih); ++slot) {
                const uint8_t* kr = s.k_row(1, ih, slot);
                const uint8_t* vr = s.v_row(1, ih, slot);
                bytes.insert(bytes.end(), kr, kr + s.k_row_bytes(1, ih));
                bytes.insert(bytes.end(), vr, vr + s.v_row_bytes(1, ih));
                const int32_t p = s.positions(1, ih)[size_t(slot)];
                bytes.insert(bytes.end(), reinterpret_cast<const uint8_t*>(&p), reinterpret_cast<const uint8_t*>(&p) + 4);
            }
        }
        EXPECT_EQ(s.positions(1, 0)[0], 1);
        EXPECT_EQ(s.positions(1, 0)[349], 699);
        EXPECT_EQ(s.positions(1, 2)[10], 1);
        got.push_back(std::move(bytes));
        // a failing tier: the refresh is an I/O error, in both modes
        const_cast<ColdTier*>(s.cold_tier())->inject_gather_failure(true);
        ASSERT_TRUE(s.apply(1, LayerPlan{n, keep, n_keep, {}, refresh}).ok());
        EXPECT_EQ(s.apply_pending(1, &pool).code(), StatusCode::kIoError);
    }
    ASSERT_EQ(got[0].size(), got[1].size());
    EXPECT_TRUE(got[0] == got[1]);
}

TEST(KvStore, RejectsBadConfig) {
    KvStoreConfig c = small_cfg();
    c.page_size = 0;
    EXPECT_FALSE(KvStore::create(c).ok());
    c = small_cfg();
    c.k_type = DType::kQ4_0;  // head_dim 8: not whole blocks of 32
    EXPECT_EQ(KvStore::create(c).status().code(), StatusCode::kUnsupported);
    c = small_cfg();
    c.v_type = DType::kQ5_0;  // not a cache type
    EXPECT_EQ(KvStore::create(c).status().code(), StatusCode::kUnsupported);
    c = small_cfg();
    c.n_head_kv = 0;
    EXPECT_FALSE(KvStore::create(c).ok());
}

// Quantized rows (issue 19): q8_0 K and q4_0 V pages hold llama.cpp's blocks (the bytes shrink
// accordingly), compaction moves whole blocks bit for bit, write_row requantizes, the cold tier
// stores and returns the quantized rows (fewer bytes than f16).
TEST(KvStore, QuantizedRowsCompactWriteAndSpill) {
    KvStoreConfig c;
    c.n_layer = 1, c.n_head_kv = 2, c.head_dim = 64, c.page_size = 16;
    c.k_type = DType::kQ8_0, c.v_type = DType::kQ4_0;
    auto st = KvStore::create(c);
    ASSERT_TRUE(st.ok()) << st.status().to_string();
    KvStore& s = **st;
    EXPECT_EQ(s.k_row_bytes(0, 0), 2u * 34u);
    EXPECT_EQ(s.v_row_bytes(0, 0), 2u * 18u);
    EXPECT_EQ(KvStore::page_cost(c), 16u * (68u + 36u + 4u));
    const int n = 40;
    std::vector<float> k(size_t(n) * 64), v(k.size());
    for (size_t i = 0; i < k.size(); ++i) k[i] = std::sin(float(i) * 0.37f) * 3.0f, v[i] = std::cos(float(i) * 0.11f);
    std::vector<int32_t> pos(static_cast<size_t>(n));
    std::iota(pos.begin(), pos.end(), 0);
    ASSERT_TRUE(s.append(0, 0, n, k.data(), 64, v.data(), 64, pos.data()).ok());
    EXPECT_EQ(s.bytes_in_use(), 3u * 16u * (68u + 36u) + size_t(n) * 4u);  // 3 whole pages (never compacted)
    std::vector<uint8_t> qk(68), qv(36);
    for (int i = 0; i < n; ++i) {
        quantize_row_ref(DType::kQ8_0, k.data() + i * 64, qk.data(), 64);
        quantize_row_ref(DType::kQ4_0, v.data() + i * 64, qv.data(), 64);
        ASSERT_EQ(std::memcmp(s.k_row(0, 0, i), qk.data(), 68), 0) << i;
        ASSERT_EQ(std::memcmp(s.v_row(0, 0, i), qv.data(), 36), 0) << i;
    }
    // compaction: slots 3, 17, 39 move to 0, 1, 2 bit for bit; the last page shrinks to 8 rows
    std::vector<uint8_t> k17(s.k_row(0, 0, 17), s.k_row(0, 0, 17) + 68), v39(s.v_row(0, 0, 39), s.v_row(0, 0, 39) + 36);
    const int32_t keep[] = {3, 17, 39};
    ASSERT_TRUE(s.compact(0, 0, keep, 3).ok());
    EXPECT_EQ(std::memcmp(s.k_row(0, 0, 1), k17.data(), 68), 0);
    EXPECT_EQ(std::memcmp(s.v_row(0, 0, 2), v39.data(), 36), 0);
    EXPECT_EQ(s.bytes_in_use(), 8u * (68u + 36u) + 3u * 4u);
    // write_row (EMS merges): the f32 row is requantized in place
    ASSERT_TRUE(s.write_row(0, 0, 1, v.data(), k.data()).ok());
    quantize_row_ref(DType::kQ8_0, v.data(), qk.data(), 64);
    quantize_row_ref(DType::kQ4_0, k.data(), qv.data(), 64);
    EXPECT_EQ(std::memcmp(s.k_row(0, 0, 1), qk.data(), 68), 0);
    EXPECT_EQ(std::memcmp(s.v_row(0, 0, 1), qv.data(), 36), 0);
    // cold tier: head 1's rows spilled as they are (68 + 36 bytes a row, not 2 x 128)
    ASSERT_TRUE(s.append(0, 1, n, k.data(), 64, v.data(), 64, pos.data()).ok());
    std::vector<int32_t> keep_all(16 * 2), n_keep = {-1, -1};
    const ColdOp spill[] = {ColdOp{ColdOpKind::kSpill, 1, 0, {}}};
    ASSERT_TRUE(s.apply(0, LayerPlan{16, keep_all, n_keep, {}, spill}).ok());
    EXPECT_EQ(s.cold_stats().bytes_stored, int64_t(n) * (68 + 36));
    std::vector<int32_t> idx = {5, 6};
    std::vector<uint8_t> gk(2 * 68), gv(2 * 36);
    std::vector<int32_t> gp(2);
    ASSERT_TRUE(s.cold_tier()->gather(0, 1, idx.data(), 2, gk.data(), gv.data(), gp.data()).ok());
    EXPECT_EQ(std::memcmp(gk.data() + 68, s.k_row(0, 1, 6), 68), 0);
    EXPECT_EQ(std::memcmp(gv.data(), s.v_row(0, 1, 5), 36), 0);
    EXPECT_EQ(gp, (std::vector<int32_t>{5, 6}));
}

// Per-head precision (issue 19 item 5): heads of one store with different K/V types hold their own
// row sizes (a q8_0 head really takes q8_0 bytes), in pools of their own, compact and spill their own
// rows bit for bit, and the bounds count each head at its types.
TEST(KvStore, PerHeadTypes) {
    KvStoreConfig c;
    c.n_layer = 1, c.n_head_kv = 3, c.head_dim = 64, c.page_size = 16;
    c.head_types = {{DType::kF16, DType::kF16}, {DType::kQ8_0, DType::kQ8_0}, {DType::kQ4_0, DType::kQ8_0}};
    auto st = KvStore::create(c);
    ASSERT_TRUE(st.ok()) << st.status().to_string();
    KvStore& s = **st;
    const size_t kr[3] = {128, 68, 36}, vr[3] = {128, 68, 68};  // row bytes of each head
    const int n = 40;
    std::vector<float> k(size_t(n) * 64), v(k.size());
    for (size_t i = 0; i < k.size(); ++i) k[i] = std::sin(float(i) * 0.37f) * 3.0f, v[i] = std::cos(float(i) * 0.11f);
    std::vector<int32_t> pos(static_cast<size_t>(n));
    std::iota(pos.begin(), pos.end(), 0);
    size_t want = 0;
    for (int32_t ih = 0; ih < 3; ++ih) {
        ASSERT_TRUE(s.append(0, ih, n, k.data(), 64, v.data(), 64, pos.data()).ok());
        EXPECT_EQ(s.k_row_bytes(0, ih), kr[ih]);
        EXPECT_EQ(s.v_row_bytes(0, ih), vr[ih]);
        EXPECT_EQ(s.view(0, ih).k_type, c.head_types[size_t(ih)].k);
        EXPECT_EQ(s.view(0, ih).v_type, c.head_types[size_t(ih)].v);
        EXPECT_EQ(KvStore::page_cost(c, 0, ih), 16u * (kr[ih] + vr[ih] + 4u));
        want += 3u * 16u * (kr[ih] + vr[ih]) + size_t(n) * 4u;  // 3 whole pages of its own rows
        EXPECT_EQ(s.bytes_in_use(), want) << ih;
    }
    EXPECT_EQ(KvStore::page_cost(c), KvStore::page_cost(c, 0, 0));  // the largest head's
    EXPECT_EQ(s.bytes_reserved(), want);
    // each head's rows are its types' encoding of the same input
    std::vector<uint8_t> row(128);
    quantize_row_ref(DType::kQ4_0, k.data() + 7 * 64, row.data(), 64);
    EXPECT_EQ(std::memcmp(s.k_row(0, 2, 7), row.data(), 36), 0);
    quantize_row_ref(DType::kQ8_0, v.data() + 7 * 64, row.data(), 64);
    EXPECT_EQ(std::memcmp(s.v_row(0, 2, 7), row.data(), 68), 0);
    EXPECT_EQ(std::memcmp(s.v_row(0, 1, 7), row.data(), 68), 0);
    EXPECT_EQ(fp16_to_fp32(reinterpret_cast<const uint16_t*>(s.k_row(0, 0, 7))[0]), fp16_to_fp32(fp32_to_fp16(k[7 * 64])));
    // the cold tier stores head 2's rows at 36 + 68 bytes a row, as the head holds them
    std::vector<int32_t> keep_all(16 * 3), n_keep = {-1, -1, -1};
    const ColdOp spill[] = {ColdOp{ColdOpKind::kSpill, 2, 0, {}}};
    ASSERT_TRUE(s.apply(0, LayerPlan{16, keep_all, n_keep, {}, spill}).ok());
    EXPECT_EQ(s.cold_stats().bytes_stored, int64_t(n) * (36 + 68));
    std::vector<uint8_t> gk(36), gv(68);
    int32_t gp = 0;
    const int32_t idx = 17;
    ASSERT_TRUE(s.cold_tier()->gather(0, 2, &idx, 1, gk.data(), gv.data(), &gp).ok());
    EXPECT_EQ(std::memcmp(gk.data(), s.k_row(0, 2, 17), 36), 0);
    EXPECT_EQ(std::memcmp(gv.data(), s.v_row(0, 2, 17), 68), 0);
    EXPECT_EQ(gp, 17);
    // compaction moves each head's rows bit for bit; short last pages at each head's row size
    std::vector<uint8_t> k17(s.k_row(0, 2, 17), s.k_row(0, 2, 17) + 36);
    const int32_t keep[] = {3, 17, 39};
    for (int32_t ih = 0; ih < 3; ++ih) ASSERT_TRUE(s.compact(0, ih, keep, 3).ok());
    EXPECT_EQ(std::memcmp(s.k_row(0, 2, 1), k17.data(), 36), 0);
    size_t after = 0;
    for (int32_t ih = 0; ih < 3; ++ih) after += 8u * (kr[ih] + vr[ih]) + 3u * 4u;
    EXPECT_EQ(s.bytes_in_use(), after);
    // the freed whole pages went to each head's own pool: a new head-2 page reuses head 2's pool
    const size_t reserved = s.bytes_reserved();
    std::vector<int32_t> pos2(20);
    std::iota(pos2.begin(), pos2.end(), n);
    ASSERT_TRUE(s.append(0, 2, 20, k.data(), 64, v.data(), 64, pos2.data()).ok());
    // 23 rows: the short page grows into a whole page from the pool (no new allocation), a new short
    // last page of 8 rows replaces the old one; only the 20 lanes are new
    EXPECT_EQ(s.bytes_reserved(), reserved + 20u * 4u);
    // bad tables: the wrong size, a type the head size cannot hold
    KvStoreConfig bad = c;
    bad.head_types.pop_back();
    EXPECT_EQ(KvStore::create(bad).status().code(), StatusCode::kInvalidArgument);
    bad = c;
    bad.head_dim = 8;
    bad.head_types = {{DType::kF16, DType::kF16}, {DType::kF16, DType::kF16}, {DType::kF16, DType::kQ8_0}};
    EXPECT_EQ(KvStore::create(bad).status().code(), StatusCode::kUnsupported);
}

}  // namespace
}  // namespace hkv
