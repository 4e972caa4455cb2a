// Needle-in-a-haystack on the retrieval model (../shared; skipped when absent): with the full cache
// the needle's value is retrieved; a StreamingLLM window that drops the needle (query-agnostic
// protocol: compressed before the question) cannot retrieve it; results are deterministic.
#include <gtest/gtest.h>

#include "eval/niah.h"
#include "test_util.h"

namespace hkv::eval {
namespace {

const std::string kModel = test::shared_path("models/retrieval-1.4M.gguf");
const std::string kEssays = test::shared_path("data/haystack/essays");

NiahConfig config() {
    NiahConfig c;
    for (const char* f : {"addiction.txt", "aord.txt", "apple.txt", "avg.txt"}) c.haystack_files.push_back(kEssays + "/" + f);
    c.lengths = {1024};
    c.depths = {0.2, 0.5};
    c.trials = 2;
    return c;
}

TEST(Niah, FullCacheRetrievesAndWindowDoesNot) {
    HKV_REQUIRE_SHARED(kModel);
    HKV_REQUIRE_SHARED(kEssays + "/aord.txt");
    auto model = model_load(kModel);
    ASSERT_TRUE(model.ok()) << model.status().to_string();
    ContextParams cp;
    cp.n_threads = 2;
    auto full = niah_run(*model, cp, "full", config());
    ASSERT_TRUE(full.ok()) << full.status().to_string();
    EXPECT_GE(full->accuracy(), 3.0 / 4.0);
    auto win = niah_run(*model, cp, "streaming:budget=64", config());
    ASSERT_TRUE(win.ok()) << win.status().to_string();
    EXPECT_LE(win->accuracy(), 1.0 / 4.0);
    EXPECT_LT(win->cells[0].kv_bytes, full->cells[0].kv_bytes / 4);
    auto again = niah_run(*model, cp, "full", config());
    ASSERT_TRUE(again.ok());
    for (size_t i = 0; i < full->cells.size(); ++i) EXPECT_EQ(again->cells[i].answers, full->cells[i].answers);
}

TEST(Niah, ClearErrors) {
    HKV_REQUIRE_SHARED(kModel);
    auto model = model_load(kModel);
    ASSERT_TRUE(model.ok());
    NiahConfig c = config();
    c.haystack_files = {"/nonexistent/haystack.txt"};
    EXPECT_EQ(niah_run(*model, {}, "full", c).status().code(), StatusCode::kNotFound);
    c = config();
    c.lengths = {20};
    EXPECT_EQ(niah_run(*model, {}, "full", c).status().code(), StatusCode::kInvalidArgument);
    c = config();
    EXPECT_EQ(niah_run(*model, {}, "bogus:x=1", c).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hkv::eval
