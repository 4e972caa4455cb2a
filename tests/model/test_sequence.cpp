// The sequence contract (heterokv/policy.h, "The sequence contract"; issue 16 item 4) on
// stories260K (../shared; skipped when absent), for every registered policy (the test fails when a
// policy is registered without a spec here), at budgets small enough that each one compresses:
//  - a second multi-token segment (a question after the compressed prompt) then greedy decoding:
//    positions continue, every head's slots are old survivors or the new segment's tokens, in
//    order, each decode step's token is in every head, no head holds more than its plan (+ the
//    decode allowance the policy declares), the KV bytes stay within kv_bytes_bound for the whole
//    sequence, logits are finite; and where an independent expectation exists it holds: `full`
//    gives the logits of the concatenation evaluated in one segment (bit for bit), `quest` (which
//    acts only while decoding) likewise, streaming keeps exactly its sinks and the latest tokens,
//    snapkv and h2o their windows;
//  - a failed eval (cancelled after some chunks, over the context, over the KV memory limit) in the
//    first or the second segment leaves a context whose rerun gives the logits of a context that
//    never saw the failure, bit for bit — or, for the policies whose state a failed segment's
//    chunks changed beyond what the engine restores, a kFailedPrecondition "reset needed" error on
//    the next eval, after which reset() and a rerun give those logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "engine/policy_check.h"
#include "heterokv/engine.h"
#include "heterokv/policy.h"
#include "policy/spec.h"
#include "story_prompt.h"
#include "test_util.h"

namespace hkv {
namespace {

const std::string kModel = test::shared_path("models/stories260K.gguf");
constexpr int32_t kCtx = 256, kPrompt = 150, kDecode = 6, kBatch = 8, kPage = 16;

// One spec (or more) per registered policy, each compressing a 150-token prompt.
std::map<std::string, std::vector<std::string>> specs() {
    const std::string tax = test::data_path("heterocache/stories260K_topk0.2.json");
    return {
        {"full", {"full"}},
        {"streaming", {"streaming:budget=32"}},
        {"h2o", {"h2o:budget=32", "h2o:budget=32,slack=0"}},
        {"snapkv", {"snapkv:budget=32,window=8"}},
        {"pyramidkv", {"pyramidkv:budget=32,window=8"}},
        {"adakv", {"adakv:budget=32,window=8"}},
        {"chunkkv", {"chunkkv:budget=32,window=8"}},
        {"quest", {"quest:budget=32"}},
        {"knorm", {"knorm:budget=32"}},
        {"tova", {"tova:budget=32,slack=0"}},
        {"ems", {"ems:budget=32,window=8", "ems:budget=32,window=8,decode=0"}},
        {"dynsplit", {"dynsplit:budget=48,window=8", "dynsplit:budget=48,mode=select"}},
        {"heterocache", {"heterocache:taxonomy=" + tax, "heterocache:taxonomy=" + tax + ",spill=chunk"}},
    };
}

ContextParams params(const std::string& spec) {
    return ContextParams{.n_ctx = kCtx, .n_threads = 2, .n_batch = kBatch, .kv_page_size = kPage, .policy = spec};
}

std::vector<int32_t> question(const Model& m) {
    return m.tokenizer().encode(
        "\nQuestion: what did Lily and Tom find under the big tree, and what did Tom say to Lily then? Answer:", false);
}

bool finite(std::span<const float> l) {
    return std::all_of(l.begin(), l.end(), [](float v) { return std::isfinite(v); });
}

// Positions of every head, [n_layer * n_head_kv] -> ascending positions.
std::vector<std::vector<int32_t>> positions(const Context& c) {
    const KvStats s = c.kv_stats();
    std::vector<std::vector<int32_t>> out;
    for (int32_t il = 0; il < s.n_layer; ++il) {
        for (int32_t ih = 0; ih < s.n_head_kv; ++ih) {
            const KvHeadView h = *c.kv_head(il, ih);
            out.emplace_back(h.pos.begin(), h.pos.end());
        }
    }
    return out;
}

// Logits after the question, then after each greedy decode step: [(1 + kDecode) * n_vocab].
struct Trace {
    std::vector<float> logits;
    std::vector<int32_t> tokens;  // the greedy tokens
};

Status decode(Context& c, Trace& t, const std::function<void(int32_t)>& check = {}) {
    t.logits.insert(t.logits.end(), c.logits().begin(), c.logits().end());
    for (int32_t i = 1; i <= kDecode; ++i) {
        const int32_t next = test::argmax(c.logits());
        t.tokens.push_back(next);
        HKV_TRY(c.eval({&next, 1}));
        t.logits.insert(t.logits.end(), c.logits().begin(), c.logits().end());
        if (check) check(i);
    }
    return Status();
}

// How a failed eval is provoked.
enum class Fail { kCancelPrompt, kCancelQuestion, kOverContext, kOverMemory, kObserverAtEnd, kObserverDecode };
const char* fail_name(Fail f) {
    switch (f) {
        case Fail::kCancelPrompt: return "cancelled prompt";
        case Fail::kCancelQuestion: return "cancelled question";
        case Fail::kOverContext: return "question over the context";
        case Fail::kOverMemory: return "question over the memory limit";
        case Fail::kObserverAtEnd: return "question's end failed in layer 1";
        case Fail::kObserverDecode: return "decode step failed in layer 1";
    }
    return "";
}

class Sequence : public ::testing::Test {
protected:
    void SetUp() override {
        if (!test::exists(kModel)) GTEST_SKIP() << "not present: " << kModel;
        model_ = test::load_model(kModel);
        ASSERT_TRUE(model_);
        prompt_ = test::story_prompt(*model_, kPrompt);
        question_ = question(*model_);
        ASSERT_GE(question_.size(), size_t(3 * kBatch)) << "the question spans several chunks";
        std::stringstream names(policy_names());
        for (std::string name; std::getline(names, name, ',');) {
            name.erase(0, name.find_first_not_of(' '));
            EXPECT_TRUE(specs().count(name)) << "policy " << name << " has no spec in this test";
        }
    }
    // prompt, question, greedy decode: the reference trace of spec.
    Trace reference(const std::string& spec) {
        Trace t;
        auto ctx = Context::create(model_, params(spec));
        EXPECT_TRUE(ctx.ok()) << spec << ": " << ctx.status().to_string();
        if (!ctx.ok()) return t;
        EXPECT_TRUE((*ctx)->eval(prompt_).ok());
        EXPECT_TRUE((*ctx)->eval(question_).ok());
        EXPECT_TRUE(decode(**ctx, t).ok()) << spec;
        return t;
    }
    // The KV bytes a context of spec holds after the question's first chunk (the prompt before it).
    int64_t over_memory_limit(const std::string& spec) {
        auto ctx = Context::create(model_, params(spec));
        EXPECT_TRUE(ctx.ok());
        if (!ctx.ok()) return 0;
        EXPECT_TRUE((*ctx)->eval(prompt_).ok());
        int64_t first = 0;
        EXPECT_TRUE((*ctx)->eval(question_, nullptr, [&](int64_t done, int64_t) {
                       if (first == 0) first = (*ctx)->kv_bytes();
                       (void)done;
                   }).ok());
        return first;
    }
    // Provokes failure f on a context of spec, reruns, and compares with ref (see the file comment).
    void fail_and_rerun(const std::string& spec, Fail f, const Trace& ref) {
        SCOPED_TRACE(fail_name(f));
        auto ctx = Context::create(model_, params(spec));
        ASSERT_TRUE(ctx.ok());
        Context& c = **ctx;
        int polls = 0;
        auto cancel_at = [&](int n) { return [&polls, n] { return ++polls == n; }; };
        // an attention observer (Context::set_attn_observer) failing in layer 1 of a segment's
        // last chunk or of a decode step, i.e. after layer 0's hooks ran
        auto fail_in_layer1 = [&c](bool decode) {
            c.set_attn_observer([decode](const AttnObservation& o) {
                return o.il == 1 && o.decode == decode ? Status::internal("observer refuses") : Status();
            });
        };
        const int32_t n12 = kPrompt + int32_t(question_.size());
        Status st;
        if (f == Fail::kCancelPrompt) {
            st = c.eval(prompt_, nullptr, {}, cancel_at(4));
            EXPECT_EQ(st.code(), StatusCode::kCancelled) << st.to_string();
            EXPECT_EQ(c.n_past(), 0);
            EXPECT_EQ(c.kv_stats().slots_total, 0);
            st = c.eval(prompt_);
            if (st.ok()) st = c.eval(question_);
        } else if (f == Fail::kObserverDecode) {
            ASSERT_TRUE(c.eval(prompt_).ok());
            ASSERT_TRUE(c.eval(question_).ok());
            const auto before = positions(c);
            fail_in_layer1(true);
            const int32_t next = test::argmax(c.logits());
            st = c.eval({&next, 1});
            c.set_attn_observer({});
            EXPECT_EQ(st.code(), StatusCode::kInternal) << st.to_string();
            EXPECT_EQ(c.n_past(), n12);
            const bool reset = st.message().find("reset()") != std::string::npos;
            if (!reset) {
                EXPECT_EQ(positions(c), before) << "the slots are the question's";
            }
            // the rerun: the decode trace from the question's logits (stale after a reset)
            st = reset ? c.eval({&next, 1}) : Status();
        } else {
            ASSERT_TRUE(c.eval(prompt_).ok());
            const auto before = positions(c);
            if (f == Fail::kCancelQuestion) {
                st = c.eval(question_, nullptr, {}, cancel_at(3));
                EXPECT_EQ(st.code(), StatusCode::kCancelled) << st.to_string();
            } else if (f == Fail::kOverContext) {
                const std::vector<int32_t> over(size_t(kCtx - kPrompt + 1), question_[0]);
                st = c.eval(over);
                EXPECT_EQ(st.code(), StatusCode::kOutOfRange) << st.to_string();
            } else if (f == Fail::kObserverAtEnd) {
                fail_in_layer1(false);
                st = c.eval(question_);
                c.set_attn_observer({});
                EXPECT_EQ(st.code(), StatusCode::kInternal) << st.to_string();
            } else {
                // room for what the question's first chunk needs (measured on a context without a
                // limit), not for more
                ASSERT_TRUE(c.set_kv_max_bytes(over_memory_limit(spec)).ok());
                st = c.eval(question_);
                ASSERT_TRUE(c.set_kv_max_bytes(0).ok());
                if (st.ok()) {  // the policy compacts every chunk and never needed more
                    oom_fit_.push_back(spec);
                    return;
                }
                EXPECT_EQ(st.code(), StatusCode::kOutOfMemory) << st.to_string();
            }
            EXPECT_EQ(c.n_past(), kPrompt);
            if (st.message().find("reset()") == std::string::npos) {
                EXPECT_EQ(positions(c), before) << "the slots are the prompt's";
            }
            st = c.eval(question_);
        }
        if (st.code() == StatusCode::kFailedPrecondition) {
            EXPECT_NE(st.message().find("reset()"), std::string::npos) << st.message();
            EXPECT_EQ(c.eval(question_).code(), StatusCode::kFailedPrecondition) << "until reset";
            EXPECT_EQ(c.truncate(1).code(), StatusCode::kFailedPrecondition) << "until reset";
            resets_[spec].push_back(fail_name(f));
            c.reset();
            ASSERT_TRUE(c.eval(prompt_).ok());
            st = c.eval(question_);
        }
        ASSERT_TRUE(st.ok()) << st.to_string();
        Trace t;
        ASSERT_TRUE(decode(c, t).ok());
        EXPECT_EQ(t.tokens, ref.tokens);
        EXPECT_TRUE(t.logits == ref.logits) << "the rerun differs from a context that never failed";
    }
    std::shared_ptr<const Model> model_;
    std::vector<int32_t> prompt_, question_;
    std::map<std::string, std::vector<std::string>> resets_;  // spec -> failures that needed a reset
    std::vector<std::string> oom_fit_;                       // specs whose question fitted the limit
};

TEST_F(Sequence, SecondSegmentKeepsTheContractUnderEveryPolicy) {
    const int32_t n1 = kPrompt, n2 = int32_t(question_.size()), n12 = n1 + n2;
    std::vector<int32_t> both = prompt_;
    both.insert(both.end(), question_.begin(), question_.end());
    for (const auto& [name, list] : specs()) {
        for (const std::string& spec : list) {
            SCOPED_TRACE(spec);
            const ContextParams cp = params(spec);
            auto ctx = Context::create(model_, cp);
            ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
            Context& c = **ctx;
            auto pol = policy_create(spec);
            ASSERT_TRUE(pol.ok());
            const PolicyInfo info = (*pol)->info();
            KvBudget plan;  // the plan of the first segment, which the later ones keep
            std::vector<uint8_t> flags;
            ASSERT_TRUE(policy_plan(**pol, policy_shape(*model_, kCtx, &flags), Segment{0, 0, n1}, plan).ok());
            const int64_t bound = *kv_bytes_bound(*model_, cp, n12, kDecode);

            ASSERT_TRUE(c.eval(prompt_).ok());
            const auto after1 = positions(c);
            ASSERT_TRUE(c.eval(question_).ok());
            EXPECT_EQ(c.n_past(), n12);
            EXPECT_TRUE(finite(c.logits()));
            EXPECT_LE(c.kv_bytes(), bound);
            const auto after2 = positions(c);
            bool compressed = false;
            for (size_t h = 0; h < after2.size(); ++h) {
                const auto& p = after2[h];
                const int32_t b = plan.n_keep[h];
                compressed = compressed || int32_t(p.size()) < n12;
                EXPECT_TRUE(std::is_sorted(p.begin(), p.end()) && std::adjacent_find(p.begin(), p.end()) == p.end())
                    << "head " << h;
                if (b > 0) {
                    EXPECT_LE(int32_t(p.size()), b) << "head " << h << " after the question";
                }
                const std::set<int32_t> old(after1[h].begin(), after1[h].end());
                for (int32_t q : p) {
                    EXPECT_TRUE(old.count(q) || (q >= n1 && q < n12)) << "head " << h << " holds position " << q
                                                                      << ", evicted before the question";
                }
                // independent expectations of the positional policies
                if (name == "streaming") {
                    std::vector<int32_t> want = {0, 1, 2, 3};
                    for (int32_t q = n12 - (b - 4); q < n12; ++q) want.push_back(q);
                    EXPECT_EQ(p, want) << "head " << h << ": sinks and the latest tokens";
                }
                const int32_t window = name == "snapkv" ? 8 : name == "h2o" ? 16 : 0;
                for (int32_t q = n12 - window; q < n12; ++q) {
                    EXPECT_TRUE(std::binary_search(p.begin(), p.end(), q)) << "head " << h << " lost window position " << q;
                }
            }
            EXPECT_EQ(compressed, name != "full" && name != "quest" && spec.find("mode=select") == std::string::npos);

            Trace t;
            const int32_t slack = info.decode == DecodeKv::kEvicts ? info.decode_slack : 0;
            EXPECT_TRUE(decode(c, t, [&](int32_t step) {
                EXPECT_LE(c.kv_bytes(), bound) << "step " << step;
                const auto ps = positions(c);
                for (size_t h = 0; h < ps.size(); ++h) {
                    ASSERT_FALSE(ps[h].empty());
                    EXPECT_EQ(ps[h].back(), c.n_past() - 1) << "head " << h << ": the step's token";
                    const int32_t b = plan.n_keep[h];
                    const int32_t allow = info.decode == DecodeKv::kEvicts ? slack : step;
                    if (b > 0) {
                        EXPECT_LE(int32_t(ps[h].size()), b + allow) << "head " << h << " step " << step;
                    }
                }
            }).ok());
            EXPECT_EQ(c.n_past(), n12 + kDecode);
            EXPECT_TRUE(finite(t.logits));

            // full and quest do nothing to the cache at a segment's end: one segment or two is the same
            if (name == "full" || name == "quest") {
                auto one = Context::create(model_, cp);
                ASSERT_TRUE(one.ok());
                ASSERT_TRUE((*one)->eval(both).ok());
                Trace u;
                ASSERT_TRUE(decode(**one, u).ok());
                EXPECT_EQ(u.tokens, t.tokens);
                EXPECT_TRUE(u.logits == t.logits) << "two segments differ from their concatenation";
            }
        }
    }
}

TEST_F(Sequence, FailedEvalLeavesTheContextUsableOrAsksForAReset) {
    for (const auto& [name, list] : specs()) {
        for (const std::string& spec : list) {
            SCOPED_TRACE(spec);
            const Trace ref = reference(spec);
            for (Fail f : {Fail::kCancelPrompt, Fail::kCancelQuestion, Fail::kOverContext, Fail::kOverMemory,
                           Fail::kObserverAtEnd, Fail::kObserverDecode}) {
                fail_and_rerun(spec, f, ref);
            }
        }
    }
    // Which failures need a reset, per spec (every other failure is undone, bit for bit): a failure
    // after a hook ran, i.e. inside a segment's last chunk under every compressing policy, inside a
    // decode step under the policies whose hook ran at layer 0 of that step (h2o and tova at slack
    // 0 are over budget at every step, heterocache's drift monitor runs at every step), and after
    // any prefill chunk under dynsplit and heterocache:spill=chunk (hooks on every chunk; dynsplit's
    // default at=end, like mode=select, lets the cache grow within a segment, so the question meets the
    // memory limit after such a hook ran). A failed
    // first segment (the cancelled prompt) never does; nor does full or quest.
    const std::string end = " question's end failed in layer 1;";
    const std::string want =
        "adakv:budget=32,window=8:" + end + "\n"
        "chunkkv:budget=32,window=8:" + end + "\n"
        "dynsplit:budget=48,mode=select: cancelled question; question over the memory limit;" + end + "\n"
        "dynsplit:budget=48,window=8: cancelled question; question over the memory limit;" + end + "\n"
        "ems:budget=32,window=8:" + end + "\n"
        "ems:budget=32,window=8,decode=0:" + end + "\n"
        "h2o:budget=32:" + end + "\n"
        "h2o:budget=32,slack=0:" + end + " decode step failed in layer 1;\n"
        "heterocache:" + end + " decode step failed in layer 1;\n"
        "heterocache,spill=chunk: cancelled question; question over the memory limit;" + end +
        " decode step failed in layer 1;\n"
        "knorm:budget=32:" + end + "\n"
        "pyramidkv:budget=32,window=8:" + end + "\n"
        "snapkv:budget=32,window=8:" + end + "\n"
        "streaming:budget=32:" + end + "\n"
        "tova:budget=32,slack=0:" + end + " decode step failed in layer 1;\n";
    std::string got;
    for (const auto& [spec, fails] : resets_) {
        got += spec.substr(0, spec.find(":taxonomy")) + (spec.find("spill=chunk") != std::string::npos ? ",spill=chunk" : "") + ":";
        for (const std::string& f : fails) got += " " + f + ";";
        got += "\n";
    }
    EXPECT_EQ(got, want) << got;
    EXPECT_EQ(oom_fit_, std::vector<std::string>()) << "the memory limit did not stop the question";
}

}  // namespace
}  // namespace hkv
