// Saved slots in the server (POST /slots/{id}?action=save|restore|erase, --slot-save-path) with
// stories260K: a slot's kept context saved by one server is restored by another on the same folder
// (two replicas sharing it), and a request sharing its prefix then reuses it (cached_tokens) and
// answers the same greedy text as without reuse; erase drops it; off without the folder (501); bad
// names, absent, damaged and special files, another policy, a busy or unknown slot are errors with
// their reason, never a crash or a hang.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>

#include <fstream>
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

json tokens(int32_t n) { return test::tokens(0, n); }

// POST /slots/{slot}?action=...: {status, body}.
std::pair<int, json> slot(httplib::Client& c, int id, const std::string& action, const json& body) {
    auto res = c.Post("/slots/" + std::to_string(id) + "?action=" + action, body.is_null() ? "" : body.dump(),
                      "application/json");
    EXPECT_TRUE(res);
    if (!res) return {0, json()};
    return {res->status, json::parse(res->body, nullptr, false)};
}

std::string message(const json& j) { return j.contains("error") ? j["error"]["message"].get<std::string>() : j.dump(); }

ServerOptions with_dir(const std::string& dir) {
    ServerOptions o = test::small_options(512);
    o.slot_save_path = dir;
    return o;
}

TEST(ServerHttp, SlotActionsAreOffWithoutSavePath) {
    HKV_REQUIRE_SHARED(kModel);
    Running r(test::small_options(512));
    auto c = r.client();
    const auto [st, body] = slot(c, 0, "save", {{"filename", "a.bin"}});
    EXPECT_EQ(st, 501);
    EXPECT_NE(message(body).find("--slot-save-path"), std::string::npos) << body.dump();
}

TEST(ServerHttp, SlotSavedByOneReplicaIsRestoredByAnotherAndReused) {
    HKV_REQUIRE_SHARED(kModel);
    hkv::test::TempDir dir;
    const json doc = tokens(300);
    json question = doc;
    for (int32_t i = 0; i < 20; ++i) question.push_back(11 + i);
    int n_saved = 0;
    std::string answer_a;
    {
        Running a(with_dir(dir.path.string()));
        auto c = a.client();
        EXPECT_EQ(cached(complete(c, {{"prompt", doc}})), 0);
        const auto [st, body] = slot(c, 0, "save", {{"filename", "doc.bin"}});
        ASSERT_EQ(st, 200) << body.dump();
        n_saved = body["n_saved"].get<int>();
        EXPECT_EQ(n_saved, 300 + 1 + 11);  // BOS + prompt + the generated tokens but the last
        EXPECT_GT(body["n_written"].get<int64_t>(), 0);
        answer_a = complete(c, {{"prompt", question}, {"cache_prompt", false}})["choices"][0]["text"];
    }
    Running b(with_dir(dir.path.string()));  // another process on the shared folder
    auto c = b.client();
    const auto [st, body] = slot(c, 0, "restore", {{"filename", "doc.bin"}});
    ASSERT_EQ(st, 200) << body.dump();
    EXPECT_EQ(body["n_restored"].get<int>(), n_saved);
    EXPECT_GT(body["n_read"].get<int64_t>(), 0);
    const json reused = complete(c, {{"prompt", question}});
    EXPECT_GE(cached(reused), 301);
    EXPECT_EQ(reused["choices"][0]["text"], answer_a);  // the same greedy text as without the saved slot
    const json fresh = complete(c, {{"prompt", question}, {"cache_prompt", false}});
    EXPECT_EQ(fresh["choices"][0]["text"], answer_a);
    // erase: the slot keeps nothing, the next request evaluates everything
    ASSERT_EQ(slot(c, 0, "restore", {{"filename", "doc.bin"}}).first, 200);
    const auto [se, erased] = slot(c, 0, "erase", json());
    EXPECT_EQ(se, 200);
    EXPECT_EQ(erased["n_erased"].get<int>(), n_saved);
    EXPECT_EQ(cached(complete(c, {{"prompt", question}})), 0);
}

TEST(ServerHttp, SlotActionErrorsSayWhy) {
    HKV_REQUIRE_SHARED(kModel);
    hkv::test::TempDir dir;
    Running r(with_dir(dir.path.string()));
    auto c = r.client();
    auto expect = [&](int id, const std::string& action, const json& body, int status, const std::string& text) {
        const auto [st, b] = slot(c, id, action, body);
        EXPECT_EQ(st, status) << action << " " << body.dump() << ": " << b.dump();
        EXPECT_NE(message(b).find(text), std::string::npos) << action << " " << body.dump() << ": " << b.dump();
    };
    expect(0, "save", {{"filename", "empty.bin"}}, 400, "keeps no context");
    complete(c, {{"prompt", tokens(100)}});
    for (const char* bad : {"../x.bin", "a/b.bin", "/etc/passwd", ".hidden", "", "x y"}) {
        expect(0, "save", {{"filename", bad}}, 400, "filename");
        expect(0, "restore", {{"filename", bad}}, 400, "filename");
    }
    expect(0, "save", json::object(), 400, "filename");
    expect(0, "save", {{"filename", "a.bin"}, {"path", "/tmp"}}, 400, "unknown field 'path'");
    expect(0, "save", {{"filename", 7}}, 400, "must be a string");
    expect(3, "save", {{"filename", "a.bin"}}, 400, "no slot 3");
    expect(0, "fly", {{"filename", "a.bin"}}, 400, "unknown action 'fly'");
    expect(0, "restore", {{"filename", "absent.bin"}}, 404, "absent.bin");
    // a directory and a FIFO where a file is expected: refused, never opened
    ASSERT_EQ(::mkdir(dir.file("d.bin").c_str(), 0700), 0);
    expect(0, "save", {{"filename", "d.bin"}}, 400, "d.bin");
    expect(0, "restore", {{"filename", "d.bin"}}, 400, "d.bin");
    ASSERT_EQ(::mkfifo(dir.file("f.bin").c_str(), 0600), 0);
    expect(0, "restore", {{"filename", "f.bin"}}, 400, "f.bin");
    // damaged, not a saved state, another policy
    ASSERT_EQ(slot(c, 0, "save", {{"filename", "ok.bin"}}).first, 200);
    std::string bytes = hkv::test::read_file(dir.file("ok.bin"));
    std::ofstream(dir.file("cut.bin"), std::ios::binary) << bytes.substr(0, bytes.size() / 2);
    expect(0, "restore", {{"filename", "cut.bin"}}, 400, "truncated");
    std::ofstream(dir.file("junk.bin"), std::ios::binary) << "not a state at all";
    expect(0, "restore", {{"filename", "junk.bin"}}, 400, "not a heterokv saved context");
    expect(0, "restore", {{"filename", "ok.bin"}, {"kv_policy", "snapkv:budget=64"}}, 400,
           "made with policy 'full'; this context runs 'snapkv:budget=64'");
    // what the slot kept survives the failed restores
    const json again = complete(c, {{"prompt", tokens(100)}});
    EXPECT_EQ(cached(again), 100);
}

}  // namespace
}  // namespace hkv::server
