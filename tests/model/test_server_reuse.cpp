// Server prompt reuse with stories260K: a slot keeps its last request's context, a request sharing
// a prefix evaluates only the rest (usage.prompt_tokens_details.cached_tokens) and answers what it
// answers without reuse; cache_prompt: false and policies that change the cache do not reuse; kept
// contexts give their room back under a KV budget.
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "server/http_server.h"
#include "server_test_util.h"
#include "test_util.h"

namespace hkv::server {
namespace {

using json = nlohmann::json;
using test::kModel;
using test::Running;

using test::cached;
using test::complete;
using test::tokens;

TEST(ServerReuse, SharedPrefixIsReusedAndAnswersTheSame) {
    HKV_REQUIRE_SHARED(kModel);
    Running r(test::small_options(512));
    auto c = r.client();
    const json a = tokens(0, 300);
    json b = tokens(0, 250);
    for (int32_t i = 0; i < 40; ++i) b.push_back(11 + i);  // the same 251 tokens, then others

    const json first = complete(c, {{"prompt", a}});
    EXPECT_EQ(cached(first), 0);
    const json again = complete(c, {{"prompt", b}});
    EXPECT_EQ(cached(again), 251);
    EXPECT_EQ(again["usage"]["prompt_tokens"], 291);
    // The same request without reuse (and the slot's context dropped for it) answers the same text.
    const json fresh = complete(c, {{"prompt", b}, {"cache_prompt", false}});
    EXPECT_EQ(cached(fresh), 0);
    EXPECT_EQ(fresh["choices"][0]["text"], again["choices"][0]["text"]);
    // The whole previous request, prompt and answer, is a prefix of the next conversation turn.
    const json third = complete(c, {{"prompt", b}, {"max_tokens", 4}});
    EXPECT_EQ(cached(third), 290);  // all but the last prompt token, which must be evaluated
    EXPECT_EQ(third["choices"][0]["text"].get<std::string>(),
              fresh["choices"][0]["text"].get<std::string>().substr(0, third["choices"][0]["text"].get<std::string>().size()));
}

TEST(ServerReuse, PoliciesThatChangeTheCacheDoNotReuse) {
    HKV_REQUIRE_SHARED(kModel);
    Running r(test::small_options(512));
    auto c = r.client();
    const json a = tokens(0, 200);
    complete(c, {{"prompt", a}, {"kv_policy", "snapkv:budget=64"}});
    EXPECT_EQ(cached(complete(c, {{"prompt", a}, {"kv_policy", "snapkv:budget=64"}})), 0);
    complete(c, {{"prompt", a}});
    EXPECT_EQ(cached(complete(c, {{"prompt", a}, {"kv_policy", "full"}})), 200);  // the default spec
    EXPECT_EQ(cached(complete(c, {{"prompt", a}, {"kv_policy", "streaming:budget=64"}})), 0);
}

TEST(ServerReuse, KeptContextsGiveTheirRoomBackUnderABudget) {
    HKV_REQUIRE_SHARED(kModel);
    ServerOptions o = test::small_options(512);
    o.n_parallel = 2;
    o.n_queue = 2;
    o.kv_budget_bytes = 300 * 1024;  // one 300-token request (~230 KiB) at a time
    Running r(o);
    auto c = r.client();
    complete(c, {{"prompt", tokens(0, 300)}});
    auto m = c.Get("/metrics");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->body.find("heterokv_kv_bytes_kept 0\n"), std::string::npos);  // slot 0 keeps its context
    // Another prompt goes to the other slot and needs the kept context's room: it is dropped, not 503.
    const json other_prompt = tokens(100, 300, json::array());  // no BOS: no common prefix at all
    const json other = complete(c, {{"prompt", other_prompt}});
    EXPECT_EQ(cached(other), 0);
    EXPECT_EQ(cached(complete(c, {{"prompt", other_prompt}})), 299);
    EXPECT_EQ(cached(complete(c, {{"prompt", tokens(0, 300)}})), 0);  // that context was dropped
}

}  // namespace
}  // namespace hkv::server
