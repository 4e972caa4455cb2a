// RULER generators on synthetic word lists with a stand-in token counter (bytes / 4): the budget is
// respected and nearly filled, output is deterministic with a seed, the prompts follow RULER's
// templates for each task family, and RULER's metrics on small cases.
#include <gtest/gtest.h>

#include <regex>

#include "eval/ruler.h"

namespace hkv::eval {
namespace {

RulerData data() {
    RulerData d;
    for (const char* w : {"apple", "river", "garden", "window", "violin", "castle", "pencil", "forest", "rocket",
                          "lantern", "mirror", "harbor", "blanket", "compass", "feather", "island"}) {
        d.nouns.push_back(w);
    }
    for (int i = 0; i < 500; ++i) d.nouns.push_back("thing" + std::to_string(i));
    for (const char* w : {"quizzical", "dynamic", "wakeful", "cheerful", "brave", "calm"}) d.adjs.push_back(w);
    for (const char* w : {"run", "jump", "swim", "read", "write", "sing", "dance", "cook"}) d.verbs.push_back(w);
    for (int i = 0; i < 400; ++i) d.essay += "Sentence number " + std::to_string(i) + " talks about startups. ";
    return d;
}

const TokenCounter kCount = [](const std::string& s) { return int32_t(s.size() / 4) + 1; };

int count_of(const std::string& hay, const std::string& needle) {
    int n = 0;
    for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
    return n;
}

std::vector<RulerSample> gen(const std::string& name, int32_t len, int32_t n = 3, uint64_t seed = 7) {
    auto t = ruler_task(name);
    EXPECT_TRUE(t.ok());
    auto s = ruler_generate(*t, data(), len, n, seed, kCount);
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    return s.ok() ? *s : std::vector<RulerSample>{};
}

TEST(Ruler, EveryTaskFitsTheBudgetAndIsDeterministic) {
    for (const std::string& name : ruler_task_names()) {
        const auto t = ruler_task(name);
        ASSERT_TRUE(t.ok()) << name;
        const auto a = gen(name, 2048), b = gen(name, 2048), c = gen(name, 2048, 3, 8);
        ASSERT_EQ(a.size(), 3u) << name;
        for (size_t i = 0; i < a.size(); ++i) {
            EXPECT_EQ(a[i].input, b[i].input) << name;
            EXPECT_EQ(a[i].outputs, b[i].outputs) << name;
            EXPECT_EQ(a[i].length, kCount(a[i].input) + t->tokens_to_generate) << name;
            EXPECT_LE(a[i].length, 2048) << name;
            EXPECT_GE(a[i].length, 2048 * 8 / 10) << name;  // the haystack search fills the budget
            EXPECT_FALSE(a[i].outputs.empty()) << name;
            EXPECT_LT(a[i].question_at, a[i].input.size()) << name;
        }
        EXPECT_NE(a[0].input, c[0].input) << name << ": the seed changes the samples";
        EXPECT_NE(a[0].input, a[1].input) << name << ": samples differ";
    }
    EXPECT_EQ(ruler_task("qa_1").status().code(), StatusCode::kInvalidArgument);
}

TEST(Ruler, NiahTemplates) {
    // one value asked: the singular template, the answer prefix ends with "is"
    for (const RulerSample& s : gen("niah_single_1", 1024)) {
        EXPECT_EQ(s.input.rfind("A special magic number is hidden within the following text. Make sure to memorize "
                                "it. I will quiz you about the number afterwards.\n", 0), 0u);
        ASSERT_EQ(s.outputs.size(), 1u);
        EXPECT_EQ(count_of(s.input, "is: " + s.outputs[0] + "."), 1);
        EXPECT_NE(s.input.find("One of the special magic numbers for "), std::string::npos);
        EXPECT_NE(s.input.find("The grass is green. The sky is blue."), std::string::npos);
        EXPECT_TRUE(std::regex_search(s.input, std::regex("\nWhat is the special magic number for [a-z]+-[a-z0-9]+ mentioned "
                                                          "in the provided text\\? The special magic number for [a-z]+-[a-z0-9]+ "
                                                          "mentioned in the provided text is$")));
        EXPECT_EQ(s.input.substr(s.question_at, 9), "\nWhat is ");
        EXPECT_TRUE(std::regex_match(s.outputs[0], std::regex("[1-9][0-9]{6}")));
    }
    const std::regex uuid("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
    for (const RulerSample& s : gen("niah_multikey_3", 1024)) {
        EXPECT_TRUE(std::regex_match(s.outputs.at(0), uuid));
        EXPECT_GT(count_of(s.input, "One of the special magic uuids for "), 3);  // the haystack is needles
        EXPECT_EQ(s.input.find("The grass"), std::string::npos);
    }
    for (const RulerSample& s : gen("niah_multivalue", 2048)) {  // 4 values for one key: the plural template
        EXPECT_EQ(s.outputs.size(), 4u);
        EXPECT_EQ(s.input.rfind("Some special magic numbers are hidden", 0), 0u);
        const std::string tail = "mentioned in the provided text are";
        EXPECT_EQ(s.input.rfind(tail), s.input.size() - tail.size());
        for (const std::string& v : s.outputs) EXPECT_EQ(count_of(s.input, v), 1);
    }
    for (const RulerSample& s : gen("niah_multiquery", 2048)) {  // 4 keys asked: "a, b, c, and d"
        EXPECT_EQ(s.outputs.size(), 4u);
        EXPECT_TRUE(std::regex_search(s.input, std::regex("for [a-z0-9-]+, [a-z0-9-]+, [a-z0-9-]+, and [a-z0-9-]+ mentioned")));
    }
}

TEST(Ruler, NiahPhrasingOverride) {
    auto t = ruler_task("niah_single_2");
    ASSERT_TRUE(t.ok());
    t->needle = " The special magic {type_v} for {key} is: {value}. ";
    t->question = "\nWhat is the special magic {type_v} for {query}? The special magic {type_v} for {query} is:";
    auto s = ruler_generate(*t, data(), 1024, 2, 1, kCount);
    ASSERT_TRUE(s.ok());
    for (const RulerSample& x : *s) {
        EXPECT_EQ(count_of(x.input, " The special magic number for "), 2);  // needle + question's answer prefix
        EXPECT_EQ(x.input.find("One of the"), std::string::npos);
        EXPECT_EQ(x.input.substr(x.input.size() - 4), " is:");
    }
}

TEST(Ruler, VariableTrackingCommonAndFrequentWords) {
    for (const RulerSample& s : gen("vt", 2048)) {
        ASSERT_EQ(s.outputs.size(), 5u);  // num_hops + 1 variables
        for (const std::string& v : s.outputs) EXPECT_GE(count_of(s.input, "VAR " + v + " = "), 1);
        EXPECT_NE(s.input.find("variables are assgined the value"), std::string::npos);
        EXPECT_EQ(count_of(s.input, "Memorize and track the chain(s)"), 2);  // one-shot example + task
        EXPECT_EQ(s.input.substr(s.question_at, 11), "\nQuestion: ");
    }
    for (const RulerSample& s : gen("cwe", 2048)) {
        ASSERT_EQ(s.outputs.size(), 10u);
        const std::string task = s.input.substr(s.input.rfind("Below is a numbered list"));
        for (const std::string& w : s.outputs) {  // below 4096 tokens the common words repeat 6 times
            EXPECT_EQ(count_of(task, ". " + w + " ") + count_of(task, ". " + w + "\n"), 6) << w;
        }
        EXPECT_EQ(count_of(s.input, "Question: What are the 10 most common words in the above list?"), 2);
    }
    for (const RulerSample& s : gen("fwe", 2048)) {
        ASSERT_EQ(s.outputs.size(), 3u);
        const int c1 = count_of(s.input, " " + s.outputs[0] + " "), c3 = count_of(s.input, " " + s.outputs[2] + " ");
        EXPECT_GT(c1, c3);  // Zipf: rank 2 appears more often than rank 4
        EXPECT_GT(count_of(s.input, " ... "), c1);  // rank 1 is the noise "..."
    }
}

TEST(Ruler, TooSmallBudgetIsAnError) {
    auto t = ruler_task("cwe");
    ASSERT_TRUE(t.ok());
    auto s = ruler_generate(*t, data(), 100, 1, 1, kCount);
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(ruler_generate(*t, data(), 2048, 0, 1, kCount).status().code(), StatusCode::kInvalidArgument);
}

TEST(Ruler, Metrics) {
    EXPECT_EQ(ruler_postprocess("\x01 foo\tbar \n"), "foo\nbar");
    EXPECT_EQ(ruler_string_match_all("ABC def", {"abc", "xyz"}), 0.5);
    EXPECT_EQ(ruler_string_match_all("ABC def xyz", {"abc", "xyz"}), 1.0);
    EXPECT_EQ(ruler_string_match_part("ABC def", {"abc", "xyz"}), 1.0);
    EXPECT_EQ(ruler_string_match_part("nothing", {"abc", "xyz"}), 0.0);
    RulerResult r;
    r.scores = {1.0, 0.5, 0.0, 0.5};
    EXPECT_DOUBLE_EQ(r.score(), 50.0);
}

}  // namespace
}  // namespace hkv::eval
