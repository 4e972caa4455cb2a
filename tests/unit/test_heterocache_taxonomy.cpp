// Unit tests for HeteroCache's taxonomy files and budget rule (policy/heterocache_taxonomy.h):
// the reference's shipped taxonomies load with the counts the methods doc gives; hostile files are
// rejected with the field named; save -> load round-trips; the budget matches get_compress_len.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "policy/heterocache_taxonomy.h"
#include "test_util.h"

namespace hkv {
namespace {

// 2 layers x 4 KV heads: layer 0 = pivot 0 with satellites 1, 2 + anchor 3; layer 1 = volatile 0,
// anchors 1..3.
const char* kSmall = R"({
 "meta": {"type_map": {"anchor": 1, "volatile": 2, "pivot": 3, "satellite": 4}},
 "classification_matrix": [[3, 4, 4, 1], [2, 1, 1, 1]],
 "allocation_matrix": [[-1, 0.5, 1.5, 1.0], [-1, 1.0, 2.0, 0.25]],
 "leader_member_relations": [{"0": [2, 1]}, {}]
})";

std::string error_of(const std::string& text) {
    auto t = taxonomy_from_json(text);
    EXPECT_FALSE(t.ok()) << "accepted: " << text;
    return t.ok() ? "" : t.status().message();
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
    const size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) s.replace(at, from.size(), to);
    return s;
}

TEST(HcTaxonomy, ParsesSmall) {
    auto t = taxonomy_from_json(kSmall);
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    EXPECT_EQ(t->n_layer, 2);
    EXPECT_EQ(t->n_head_kv, 4);
    EXPECT_EQ(t->role_of(0, 0), HeadRole::kPivot);
    EXPECT_EQ(t->role_of(1, 0), HeadRole::kVolatile);
    EXPECT_EQ(t->n_full(), 2);
    EXPECT_EQ(t->count(HeadRole::kAnchor), 4);
    ASSERT_EQ(t->clusters[0].size(), 1u);
    EXPECT_EQ(t->clusters[0][0].satellites, (std::vector<int32_t>{1, 2}));  // sorted on load
    EXPECT_EQ(t->pivot_of(0, 2), 0);
    EXPECT_EQ(t->pivot_of(0, 3), -1);
    EXPECT_TRUE(taxonomy_check_shape(*t, 2, 4).ok());
    EXPECT_FALSE(taxonomy_check_shape(*t, 16, 8).ok());
}

// A file whose type_map numbers the roles differently is remapped, not misread.
TEST(HcTaxonomy, RemapsTypeMap) {
    std::string text = replace(kSmall, "{\"anchor\": 1, \"volatile\": 2, \"pivot\": 3, \"satellite\": 4}",
                               "{\"Stable_Unique\": 4, \"Decaying_Unique\": 3, \"Similar_Leader\": 2, \"Similar_Member\": 1}");
    text = replace(text, "[[3, 4, 4, 1], [2, 1, 1, 1]]", "[[2, 1, 1, 4], [3, 4, 4, 4]]");
    auto t = taxonomy_from_json(text);
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    auto ref = taxonomy_from_json(kSmall);
    ASSERT_TRUE(ref.ok());
    EXPECT_EQ(t->role, ref->role);
}

TEST(HcTaxonomy, RejectsHostileFiles) {
    EXPECT_NE(error_of("{").find("not valid JSON"), std::string::npos);
    EXPECT_NE(error_of("[]").find("object"), std::string::npos);
    EXPECT_NE(error_of("{}").find("classification_matrix"), std::string::npos);
    // role out of range, fractional role
    EXPECT_NE(error_of(replace(kSmall, "[2, 1, 1, 1]", "[5, 1, 1, 1]")).find("1..4"), std::string::npos);
    EXPECT_NE(error_of(replace(kSmall, "[2, 1, 1, 1]", "[2.5, 1, 1, 1]")).find("1..4"), std::string::npos);
    // ragged rows, wrong layer count
    EXPECT_NE(error_of(replace(kSmall, "[2, 1, 1, 1]", "[2, 1, 1]")).find("heads"), std::string::npos);
    EXPECT_NE(error_of(replace(kSmall, "[{\"0\": [2, 1]}, {}]", "[{\"0\": [2, 1]}]")).find("layer objects"),
              std::string::npos);
    // a full head with a finite ratio, a compressed head with ratio <= 0 or -1
    EXPECT_NE(error_of(replace(kSmall, "[[-1, 0.5", "[[0.7, 0.5")).find("allocation"), std::string::npos);
    EXPECT_NE(error_of(replace(kSmall, "0.25]", "0]")).find("allocation"), std::string::npos);
    // satellite not in any cluster; satellite in a cluster of a non-pivot; pivot without satellites
    EXPECT_NE(error_of(replace(kSmall, "[2, 1]", "[2]")).find("appears in 0 clusters"), std::string::npos);
    EXPECT_NE(error_of(replace(kSmall, "{\"0\": [2, 1]}", "{\"3\": [2, 1]}")).find("leads a cluster"),
              std::string::npos);
    EXPECT_NE(error_of(replace(kSmall, "[2, 1]", "[]")).find("no satellites"), std::string::npos);
    // out-of-range and duplicated satellites, bad keys
    EXPECT_NE(error_of(replace(kSmall, "[2, 1]", "[2, 1, 9]")).find("out of range"), std::string::npos);
    EXPECT_NE(error_of(replace(kSmall, "[2, 1]", "[2, 1, 1]")).find("ascending"), std::string::npos);
    EXPECT_NE(error_of(replace(kSmall, "{\"0\":", "{\"x\":")).find("not a head index"), std::string::npos);
    // type_map: unknown names, two roles on one number
    EXPECT_NE(error_of(replace(kSmall, "\"anchor\": 1", "\"anker\": 1")).find("unknown role"), std::string::npos);
    EXPECT_NE(error_of(replace(kSmall, "\"anchor\": 1", "\"anchor\": 2")).find("one to one"), std::string::npos);
}

TEST(HcTaxonomy, SaveLoadRoundTrip) {
    auto t = taxonomy_from_json(kSmall);
    ASSERT_TRUE(t.ok());
    t->stability = {0.9, 0.8, 0.7, 0.6, 0.1, 0.55, 0.65, 0.75};
    t->source = "unit test";
    test::TempDir dir;
    const std::string path = dir.file("tax.json");
    ASSERT_TRUE(taxonomy_save(*t, path).ok());
    auto u = taxonomy_load(path);
    ASSERT_TRUE(u.ok()) << u.status().to_string();
    EXPECT_EQ(u->role, t->role);
    EXPECT_EQ(u->ratio, t->ratio);
    EXPECT_EQ(u->stability, t->stability);
    EXPECT_EQ(u->source, "unit test");
    ASSERT_EQ(u->clusters.size(), 2u);
    EXPECT_EQ(u->clusters[0][0].pivot, 0);
    EXPECT_EQ(u->clusters[0][0].satellites, t->clusters[0][0].satellites);
    EXPECT_FALSE(taxonomy_load(dir.file("missing.json")).ok());
}

// A calibrated taxonomy of a model with local layers writes their heads volatile: counted, they would
// make the full heads exceed the ratio; the budget counts the global layers only.
TEST(HcTaxonomy, BudgetOverTheGlobalLayers) {
    auto t = taxonomy_from_json(R"({"meta": {"type_map": {"anchor": 1, "volatile": 2, "pivot": 3, "satellite": 4}},
        "classification_matrix": [[2, 2, 2, 2], [2, 1, 1, 1]],
        "allocation_matrix": [[-1, -1, -1, -1], [-1, 1.0, 2.0, 0.25]], "leader_member_relations": [{}, {}]})");
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    EXPECT_FALSE(heterocache_budget(*t, 0.5, 1000).ok());  // 5 of 8 heads full > 0.5 * 8
    Taxonomy marked = *t;
    marked.local_layers = {1, 0};
    ASSERT_TRUE(taxonomy_validate(marked).ok());
    auto b = heterocache_budget(marked, 0.5, 1000);
    ASSERT_TRUE(b.ok()) << b.status().to_string();
    EXPECT_EQ(b->base, 333);  // N_total 4, N_full 1: floor((2 - 1) * 1000 / 3)
    EXPECT_EQ(b->cap[t->at(1, 2)], 666);
    EXPECT_EQ(b->cap[t->at(0, 1)], 1000);
    // saved and read back; a local layer with a non-volatile head, or flags of another length, is an error
    auto back = taxonomy_from_json(taxonomy_to_json(marked));
    ASSERT_TRUE(back.ok()) << back.status().to_string();
    EXPECT_EQ(back->local_layers, marked.local_layers);
    marked.local_layers = {0, 1};
    EXPECT_NE(taxonomy_validate(marked).message().find("layer 1 is local but head 1 is anchor"), std::string::npos)
        << taxonomy_validate(marked).message();
    marked.local_layers = {1};
    EXPECT_FALSE(taxonomy_validate(marked).ok());
}

TEST(HcTaxonomy, BudgetFollowsReference) {
    auto t = taxonomy_from_json(kSmall);
    ASSERT_TRUE(t.ok());
    // N_total 8, N_full 2, cr 0.5, L 1000: base = floor((4 - 2) * 1000 / 6) = 333
    auto b = heterocache_budget(*t, 0.5, 1000);
    ASSERT_TRUE(b.ok()) << b.status().to_string();
    EXPECT_EQ(b->base, 333);
    EXPECT_EQ(b->cap[t->at(0, 0)], 1000);  // pivot: full
    EXPECT_EQ(b->cap[t->at(0, 1)], 166);   // floor(333 * 0.5)
    EXPECT_EQ(b->cap[t->at(0, 2)], 499);   // floor(333 * 1.5)
    EXPECT_EQ(b->cap[t->at(1, 2)], 666);   // floor(333 * 2.0)
    EXPECT_EQ(b->cap[t->at(1, 3)], 83);    // floor(333 * 0.25)
    // caps never exceed L
    auto big = heterocache_budget(*t, 1.0, 10);
    ASSERT_TRUE(big.ok());
    for (int64_t c : big->cap) EXPECT_LE(c, 10);
    // cr * N_total <= N_full is impossible; cr outside (0, 1] too
    auto bad = heterocache_budget(*t, 0.25, 1000);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.status().message().find("ratio > 0.250"), std::string::npos) << bad.status().message();
    EXPECT_FALSE(heterocache_budget(*t, 0.0, 1000).ok());
    EXPECT_FALSE(heterocache_budget(*t, 1.5, 1000).ok());
    EXPECT_FALSE(heterocache_budget(*t, 0.5, 0).ok());
}

// The reference's shipped taxonomies load, with the role counts the methods doc tabulates.
TEST(HcTaxonomy, LoadsShippedTaxonomies) {
    struct Case {
        const char* file;
        int layers, anchor, vol, pivot, sat;
    } cases[] = {
        {"Head_Analysis_llama-3.1-8b-instruct_topk1024_th0.5_sim0.5_step5000.json", 32, 10, 17, 33, 196},
        {"Head_Analysis_deepseek-r1-distill-llama-8b_topk1024_th0.5_sim0.4_step5000.json", 32, 0, 5, 32, 219},
        {"Head_Analysis_qwen2.5-14b-instruct_topk1024_th0.4_sim0.5_step5000.json", 48, 37, 25, 55, 267},
    };
    for (const Case& c : cases) {
        const std::string path = test::shared_path(std::string("data/heterocache-taxonomies/") + c.file);
        HKV_REQUIRE_SHARED(path);
        auto t = taxonomy_load(path);
        ASSERT_TRUE(t.ok()) << t.status().to_string();
        EXPECT_EQ(t->n_layer, c.layers) << c.file;
        EXPECT_EQ(t->n_head_kv, 8) << c.file;
        EXPECT_EQ(t->count(HeadRole::kAnchor), c.anchor) << c.file;
        EXPECT_EQ(t->count(HeadRole::kVolatile), c.vol) << c.file;
        EXPECT_EQ(t->count(HeadRole::kPivot), c.pivot) << c.file;
        EXPECT_EQ(t->count(HeadRole::kSatellite), c.sat) << c.file;
        // the mean ratio over compressed heads is 1 (inverse-stability weights normalised)
        double sum = 0;
        int n = 0;
        for (size_t i = 0; i < t->ratio.size(); ++i) {
            if (t->ratio[i] > 0) sum += t->ratio[i], ++n;
        }
        EXPECT_NEAR(sum / n, 1.0, 1e-6) << c.file;
    }
}

}  // namespace
}  // namespace hkv
