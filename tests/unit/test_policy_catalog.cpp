// Unit tests of the policy catalog (`heterokv policies`, policy_catalog()) against the policies
// themselves, and of the size options every policy takes: ratio= (the fraction of the prompt kept,
// resolved at plan time) and compression_ratio= (kvpress's: the fraction removed); the default
// window shrinking under small budgets (a budget sweep from 16 up).
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>

#include "heterokv/policy.h"
#include "policy/heterocache.h"
#include "policy/spec.h"
#include "policy_test_util.h"
#include "test_util.h"

namespace hkv {
namespace {

using test::error_of;
using test::make;

const ModelShape kShape{2, 8, 4, 16, 8192};

// A spec that sizes `name`'s policy with `size` ("budget=64", "ratio=0.5"); heterocache gets a
// structural taxonomy of kShape's shape, dynsplit fixed-length blocks.
std::string spec_for(const std::string& name, const std::string& size, const std::string& tax) {
    if (name == "full") return name;
    if (name == "heterocache") return name + ":taxonomy=" + tax + (size.rfind("budget", 0) == 0 ? "" : "," + size);
    if (name == "dynsplit") return name + ":split=fixed," + size;  // kShape has no tokenizer delimiters
    return name + ":" + size;
}

struct Catalog : ::testing::Test {
    test::TempDir dir;
    std::string tax;
    void SetUp() override {
        tax = dir.file("tax.json");
        ASSERT_TRUE(taxonomy_save(taxonomy_structural(kShape.n_layer, kShape.n_head_kv), tax).ok());
    }
};

TEST_F(Catalog, EveryPolicyIsDocumentedAndItsDocumentMatchesItsBehaviour) {
    const auto docs = policy_catalog();
    const auto entries = policy_entries();
    ASSERT_EQ(docs.size(), entries.size());
    for (size_t i = 0; i < docs.size(); ++i) {
        const PolicyDoc& d = docs[i];
        const std::string name(d.name);
        SCOPED_TRACE(name);
        EXPECT_EQ(name, entries[i].name);
        EXPECT_FALSE(d.method.empty());
        EXPECT_FALSE(d.keeps.empty());
        EXPECT_FALSE(d.decoding.empty());
        EXPECT_FALSE(d.use.empty());
        auto p = policy_create(spec_for(name, "budget=64", tax));
        ASSERT_TRUE(p.ok()) << p.status().to_string();
        const PolicyInfo info = (*p)->info();
        EXPECT_EQ(d.decode, info.decode);
        EXPECT_EQ(d.sparse, info.select_pages);
        // every key the factory reads is documented (one documented key each, no duplicates)
        std::set<std::string> documented;
        for (const PolicyOptionDoc& o : d.options) {
            EXPECT_TRUE(documented.insert(std::string(o.key)).second) << o.key;
            EXPECT_FALSE(o.def.empty()) << o.key;
            EXPECT_FALSE(o.meaning.empty()) << o.key;
        }
        auto parsed = PolicySpec::parse(spec_for(name, "budget=64", tax));
        ASSERT_TRUE(parsed.ok());
        PolicySpec spec = std::move(parsed).value();
        ASSERT_TRUE(entries[i].create(spec).ok());
        for (const std::string& key : spec.read_keys()) EXPECT_TRUE(documented.count(key)) << "undocumented: " << key;
        // and every documented key is an option: an invalid value is rejected as that option's
        // value (or by a rule between options), never as an unknown option
        for (const std::string& key : documented) {
            if (key == "budget" || key == "taxonomy" || key == "ratio" || key == "compression_ratio") continue;
            const std::string bad = spec_for(name, "budget=64", tax) + "," + key + "=@";
            auto q = policy_create(bad);
            ASSERT_FALSE(q.ok()) << bad;
            EXPECT_EQ(q.status().message().find("unknown option"), std::string::npos) << q.status().message();
        }
        if (name != "full") {
            EXPECT_TRUE(documented.count("ratio") && documented.count("compression_ratio"));
        }
    }
}

// ratio=F resolves against the prompt at begin(): floor(F * n) slots, raised to what the window and
// sinks need; compression_ratio=F is ratio=1-F; the budget is planned per prompt.
TEST_F(Catalog, RatioIsTheFractionOfThePromptKeptForEveryPolicy) {
    for (const PolicyDoc& d : policy_catalog()) {
        const std::string name(d.name);
        if (name == "full") continue;
        SCOPED_TRACE(name);
        const bool hc = name == "heterocache";  // its full heads hold a quarter of kShape's KV
        for (const std::string& size : {std::string(hc ? "ratio=0.6,weights=uniform" : "ratio=0.25"),
                                        std::string(hc ? "compression_ratio=0.4,weights=uniform" : "compression_ratio=0.75")}) {
            auto p = policy_create(spec_for(name, size, tax));
            ASSERT_TRUE(p.ok()) << p.status().to_string();
            KvBudget b;
            ASSERT_TRUE(policy_plan(**p, kShape, Segment{0, 0, 4000}, b).ok());
            if (hc) {
                // its own ratio: the fraction of the full prompt KV kept hot, full heads included
                int64_t kept = 0;
                for (int32_t v : b.n_keep) kept += v < 0 ? 4000 : v;
                EXPECT_NEAR(double(kept) / (4000.0 * double(b.n_keep.size())), 0.6, 0.03);
                continue;
            }
            // the plan of budget=floor(0.25 * 4000), and a new sequence re-plans for its own prompt
            auto q1000 = policy_create(spec_for(name, "budget=1000", tax));
            ASSERT_TRUE(q1000.ok());
            KvBudget b1000;
            ASSERT_TRUE(policy_plan(**q1000, kShape, Segment{0, 0, 4000}, b1000).ok());
            EXPECT_EQ(b.n_keep, b1000.n_keep);
            ASSERT_TRUE(policy_plan(**p, kShape, Segment{0, 0, 400}, b).ok());
            // the same object as a budget spec: the same info, the same plan
            auto q = policy_create(spec_for(name, "budget=100", tax));
            ASSERT_TRUE(q.ok());
            KvBudget bq;
            ASSERT_TRUE(policy_plan(**q, kShape, Segment{0, 0, 400}, bq).ok());
            EXPECT_EQ(b.n_keep, bq.n_keep);
            EXPECT_EQ((*p)->info().decode_slack, (*q)->info().decode_slack);
            EXPECT_EQ((*p)->info().stats.size(), (*q)->info().stats.size());
        }
    }
}

TEST_F(Catalog, RatioOnAShortPromptKeepsWhatTheWindowNeeds) {
    // snapkv's window is 32: 0.1 of 100 tokens (10) is raised to 33, the smallest budget that keeps
    // the window with the same statistics (the runtime reads info() once)
    auto p = make("snapkv:ratio=0.1");
    ASSERT_TRUE(p);
    KvBudget b;
    ASSERT_TRUE(policy_plan(*p, kShape, Segment{0, 0, 100}, b).ok());
    EXPECT_EQ(b.at(0, 0), 33);
    EXPECT_EQ(p->info().stats.at(0).n_query, 32);
    EXPECT_NE(p->report().find("of a 100-token prompt: budget=33"), std::string::npos) << p->report();
    // an explicit window: budget >= window + 1
    auto q = make("snapkv:ratio=0.1,window=8");
    ASSERT_TRUE(q);
    ASSERT_TRUE(policy_plan(*q, kShape, Segment{0, 0, 50}, b).ok());
    EXPECT_EQ(b.at(0, 0), 9);
    // streaming: 0.5 of 6 tokens is 3 slots (its 4 default sinks need 5)
    auto s = make("streaming:ratio=0.5");
    ASSERT_TRUE(policy_plan(*s, kShape, Segment{0, 0, 6}, b).ok());
    EXPECT_EQ(b.at(0, 0), 5);
    // ratio=1 keeps the whole prompt
    auto all = make("h2o:ratio=1");
    ASSERT_TRUE(policy_plan(*all, kShape, Segment{0, 0, 777}, b).ok());
    EXPECT_EQ(b.at(1, 3), 777);
}

TEST_F(Catalog, SizeOptionErrorsAreClear) {
    EXPECT_NE(error_of("snapkv:budget=64,ratio=0.5").find("give one of budget=N, ratio=F or compression_ratio=F"),
              std::string::npos);
    EXPECT_NE(error_of("snapkv:ratio=0.5,compression_ratio=0.5").find("give one of"), std::string::npos);
    EXPECT_NE(error_of("snapkv:ratio=0").find("keeps nothing"), std::string::npos);
    EXPECT_NE(error_of("snapkv:ratio=1.5").find("out of range [0, 1]"), std::string::npos);
    EXPECT_NE(error_of("snapkv:compression_ratio=1").find("removes everything"), std::string::npos);
    EXPECT_NE(error_of("snapkv:ratio=0.5,window=x").find("window='x' is not an integer"), std::string::npos);
    EXPECT_NE(error_of("full:ratio=0.5").find("unknown option 'ratio'"), std::string::npos);
    EXPECT_NE(error_of("snapkv").find("or ratio=F"), std::string::npos);
    EXPECT_NE(error_of("heterocache:taxonomy=" + tax + ",ratio=0.5,compression_ratio=0.5").find("give one of"),
              std::string::npos);
}

// A budget sweep reaches 16 and 32 with the default window 32: the default shrinks to half of
// what the sinks leave; a window given explicitly is checked as given, and the error names the fix.
TEST(PolicyWindow, DefaultWindowShrinksUnderSmallBudgets) {
    for (const char* name : {"snapkv", "pyramidkv", "adakv", "chunkkv", "ems", "dynsplit"}) {
        for (int budget : {16, 32}) {
            auto p = make(std::string(name) + ":budget=" + std::to_string(budget));
            ASSERT_TRUE(p) << name << " " << budget;
            for (const StatRequest& r : p->info().stats) {
                if (r.kind == StatKind::kAttention) {
                    EXPECT_LT(r.n_query, budget) << name;
                }
            }
        }
    }
    EXPECT_EQ(make("snapkv:budget=32")->info().stats.at(0).n_query, 16);
    EXPECT_EQ(make("ems:budget=32")->info().decode_slack, 14);  // (32 - 4 sinks) / 2
    EXPECT_EQ(make("snapkv:budget=33")->info().stats.at(0).n_query, 32);
    EXPECT_NE(error_of("snapkv:budget=32,window=32").find("lower window= or raise budget="), std::string::npos);
    EXPECT_NE(error_of("chunkkv:budget=16,chunk=10").find("lower chunk= or window=, or raise budget="), std::string::npos);
}

}  // namespace
}  // namespace hkv
