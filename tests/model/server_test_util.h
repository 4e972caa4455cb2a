// tests/model/server_test_util.h — the HTTP server on an ephemeral loopback port, in process, for
// the server tests (test_server_http.cpp, test_server_hardening.cpp, test_server_reuse.cpp,
// test_server_slots.cpp), and greedy completions.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "heterokv/engine.h"
#include "server/http_server.h"
#include "test_util.h"

namespace hkv::server::test {

inline const std::string kModel = hkv::test::shared_path("models/stories260K.gguf");

// A small server: one slot, no queue, one thread, n_ctx tokens of context.
inline ServerOptions small_options(int32_t n_ctx) {
    ServerOptions o;
    o.n_ctx = n_ctx;
    o.n_threads = 1;
    o.n_parallel = 1;
    o.n_queue = 0;
    return o;
}

// A server running on a background thread for the lifetime of the object.
struct Running {
    std::unique_ptr<HttpServer> server;
    std::thread thread;
    std::atomic<bool> finished{false};  // run() returned
    int port = 0;
    explicit Running(ServerOptions o, bool start = true) {
        auto model = model_load(kModel);
        EXPECT_TRUE(model.ok()) << model.status().to_string();
        o.host = "127.0.0.1";
        o.port = 0;
        auto s = HttpServer::create(*model, o);
        EXPECT_TRUE(s.ok()) << s.status().to_string();
        server = std::move(s).value();
        auto p = server->bind();
        EXPECT_TRUE(p.ok());
        port = *p;
        if (start) this->start();
    }
    // Serves on a background thread (a test may look at the bound but not yet serving socket first).
    void start() {
        thread = std::thread([this] {
            EXPECT_TRUE(server->run().ok());
            finished = true;
        });
        httplib::Client c("127.0.0.1", port);
        for (int i = 0; i < 200 && !c.Get("/health"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ~Running() {
        server->stop();
        if (thread.joinable()) thread.join();
    }
    httplib::Client client() const {
        httplib::Client c("127.0.0.1", port);
        c.set_read_timeout(60);
        return c;
    }
};

// A token prompt: BOS, then `n` ids from `first` (stories260K has 512 tokens).
inline nlohmann::json tokens(int32_t first, int32_t n, nlohmann::json head = nlohmann::json::array({1})) {
    for (int32_t i = 0; i < n; ++i) head.push_back(3 + (first + i * 7) % 500);
    return head;
}

// A greedy POST /v1/completions (12 tokens unless the body says), expected to succeed: its body.
inline nlohmann::json complete(httplib::Client& c, nlohmann::json body) {
    body["temperature"] = 0;
    if (!body.contains("max_tokens")) body["max_tokens"] = 12;
    auto res = c.Post("/v1/completions", body.dump(), "application/json");
    EXPECT_TRUE(res);
    if (!res) return nlohmann::json();
    EXPECT_EQ(res->status, 200) << res->body;
    return nlohmann::json::parse(res->body);
}

inline int cached(const nlohmann::json& j) { return j["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(); }

}  // namespace hkv::server::test
