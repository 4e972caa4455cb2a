// The server against hostile clients and careless operators (issue 24), on loopback with stories260K:
// chunked bodies over --max-body-kb (413 while reading), slow-header clients (/health stays
// responsive, 408 after the request timeout), a second server on a port in use, the listen backlog,
// SIGTERM's drain (running requests finish, then are cancelled at the deadline), server options no
// request could use, and request policies that name server files. Every loop and wait is bounded.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "server_test_util.h"

namespace hkv::server {
namespace {

using json = nlohmann::json;
using test::kModel;
using test::Running;
using Clock = std::chrono::steady_clock;

ServerOptions options() { return test::small_options(512); }

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// A raw loopback connection: what a hostile client sends, byte for byte. rcvbuf > 0 shrinks the
// receive buffer (set before connecting) so that a client that does not read holds the server.
struct Raw {
    int fd = -1;
    explicit Raw(int port, int rcvbuf = 0) {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(uint16_t(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    }
    ~Raw() {
        if (fd >= 0) ::close(fd);
    }
    bool send(const std::string& s) const { return ::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == ssize_t(s.size()); }
    // Reads until `until` appears, the peer closes, or timeout_s passes.
    std::string recv(double timeout_s, const std::string& until = "") const {
        std::string out;
        const auto t0 = Clock::now();
        char buf[4096];
        while (seconds_since(t0) < timeout_s) {
            pollfd pf{fd, POLLIN, 0};
            if (::poll(&pf, 1, 50) <= 0) continue;
            const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n <= 0) break;
            out.append(buf, size_t(n));
            if (!until.empty() && out.find(until) != std::string::npos) break;
        }
        return out;
    }
};

std::string head(const std::string& extra) {
    return "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" + extra + "\r\n";
}

std::string chunk(const std::string& data) {
    char len[32];
    std::snprintf(len, sizeof len, "%zx\r\n", data.size());
    return len + data + "\r\n";
}

// Item 1: the limit holds for chunked bodies, while reading (no buffering of the whole body).
TEST(ServerHardening, ChunkedBodyOverTheLimitIs413WhileReading) {
    HKV_REQUIRE_SHARED(kModel);
    ServerOptions o = options();
    o.limits.max_body_bytes = 4096;
    o.limits.max_prompt_bytes = 4096;
    Running r(o);
    {  // 5 KiB in chunks, no terminating chunk: the answer comes before the body ends
        Raw c(r.port);
        ASSERT_TRUE(c.send(head("Transfer-Encoding: chunked\r\n")));
        for (int i = 0; i < 5; ++i) c.send(chunk(std::string(1024, 'x')));
        const std::string res = c.recv(5.0, "}}");
        EXPECT_EQ(res.rfind("HTTP/1.1 413", 0), 0u) << res;
        EXPECT_NE(res.find("exceeds the limit of 4096 bytes"), std::string::npos) << res;
    }
    {  // a declared length over the limit is refused before any of the body is sent
        Raw c(r.port);
        ASSERT_TRUE(c.send(head("Content-Length: 300000000\r\n")));
        const std::string res = c.recv(5.0, "}}");
        EXPECT_EQ(res.rfind("HTTP/1.1 413", 0), 0u) << res;
    }
    {  // a compressed body (a decompression bomb) is refused, not inflated
        Raw c(r.port);
        ASSERT_TRUE(c.send(head("Content-Encoding: gzip\r\nContent-Length: 10\r\n")));
        const std::string res = c.recv(5.0, "}}");
        EXPECT_EQ(res.rfind("HTTP/1.1 415", 0), 0u) << res;
    }
    {  // a valid chunked request within the limit is served, split at odd places
        Raw c(r.port);
        const std::string body = R"({"prompt":"Once upon a time","max_tokens":4,"temperature":0})";
        ASSERT_TRUE(c.send(head("Transfer-Encoding: chunked\r\nConnection: close\r\n") + chunk(body.substr(0, 7))));
        ASSERT_TRUE(c.send(chunk(body.substr(7)) + "0\r\n\r\n"));
        const std::string res = c.recv(10.0);
        EXPECT_EQ(res.rfind("HTTP/1.1 200", 0), 0u) << res;
        EXPECT_NE(res.find("\"completion_tokens\":4"), std::string::npos) << res;
    }
    auto m = r.client().Get("/metrics");
    ASSERT_TRUE(m);
    EXPECT_NE(m->body.find("heterokv_requests_total{path=\"other\",status=\"413\"} 2"), std::string::npos) << m->body;
}

// Item 3: clients that send their head slowly hold no worker; /health answers at once; they get 408.
TEST(ServerHardening, SlowHeaderClientsDoNotStarveHealth) {
    HKV_REQUIRE_SHARED(kModel);
    ServerOptions o = options();
    o.n_parallel = 2;
    o.n_queue = 4;
    o.request_timeout_ms = 2500;
    Running r(o);
    std::vector<std::unique_ptr<Raw>> slow;
    for (int i = 0; i < 24; ++i) {  // more than every worker the server has
        slow.push_back(std::make_unique<Raw>(r.port));
        slow.back()->send("POST /v1/completions HTTP/1.1\r\nHost: x\r\n");
    }
    const auto t0 = Clock::now();
    int probes = 0;
    double worst = 0.0;
    for (int i = 0; i < 8; ++i) {  // ~1.6 s of probes while the slow clients trickle header lines
        for (auto& s : slow) s->send("X-Slow: " + std::to_string(i) + "\r\n");
        httplib::Client c("127.0.0.1", r.port);
        c.set_connection_timeout(1);
        c.set_read_timeout(1);
        const auto p0 = Clock::now();
        auto h = c.Get("/health");
        worst = std::max(worst, seconds_since(p0));
        ASSERT_TRUE(h) << "/health did not answer within 1 s with " << slow.size() << " slow clients";
        EXPECT_EQ(h->status, 200);
        ++probes;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    EXPECT_EQ(probes, 8);
    EXPECT_LT(worst, 0.5);
    // Past the request timeout (2.5 s from the first byte) each slow client gets 408 and is closed.
    const std::string res = slow[0]->recv(std::max(0.5, 5.0 - seconds_since(t0)), "}}");
    EXPECT_EQ(res.rfind("HTTP/1.1 408", 0), 0u) << res;
}

// Item 4: a second server on a port in use fails to start (no SO_REUSEPORT).
TEST(ServerHardening, SecondServerOnAPortInUseFails) {
    HKV_REQUIRE_SHARED(kModel);
    Running a(options());
    auto model = model_load(kModel);
    ASSERT_TRUE(model.ok());
    ServerOptions o = options();
    o.host = "127.0.0.1";
    o.port = a.port;
    auto b = HttpServer::create(*model, o);
    ASSERT_TRUE(b.ok());
    auto p = (*b)->bind();
    ASSERT_FALSE(p.ok()) << "a second server bound port " << a.port;
    EXPECT_NE(p.status().message().find("in use"), std::string::npos) << p.status().to_string();
}

// Item 12: the listen backlog holds many connections that arrive before they are accepted.
TEST(ServerHardening, BacklogHoldsABurstOfConnections) {
    HKV_REQUIRE_SHARED(kModel);
    Running r(options(), /*start=*/false);  // bound and listening, nothing accepted yet
    constexpr int kConns = 64;
    std::vector<int> fds;
    for (int i = 0; i < kConns; ++i) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(uint16_t(r.port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        fds.push_back(fd);
    }
    int established = 0;
    const auto t0 = Clock::now();
    std::vector<bool> done(kConns, false);
    while (established < kConns && seconds_since(t0) < 0.5) {  // SYN retries start after 1 s
        for (int i = 0; i < kConns; ++i) {
            if (done[size_t(i)]) continue;
            pollfd pf{fds[size_t(i)], POLLOUT, 0};
            int err = 0;
            socklen_t len = sizeof err;
            if (::poll(&pf, 1, 0) == 1 && ::getsockopt(pf.fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
                done[size_t(i)] = true;
                ++established;
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (int fd : fds) ::close(fd);
    EXPECT_EQ(established, kConns) << "the backlog held only " << established;  // backlog 5 held 6
    r.start();
    auto h = r.client().Get("/health");
    ASSERT_TRUE(h);
    EXPECT_EQ(h->status, 200);
}

// A streaming request whose client does not read: the server blocks writing it (both socket
// buffers are tiny: ServerOptions::send_buffer_bytes and the client's SO_RCVBUF), so the request
// stays in flight as long as the test wants.
struct StuckStream {
    Raw c;
    explicit StuckStream(int port) : c(port, 2048) {
        const std::string body = R"({"prompt":"Once","max_tokens":480,"ignore_eos":true,"temperature":0,"stream":true})";
        EXPECT_TRUE(c.send(head("Content-Length: " + std::to_string(body.size()) + "\r\n") + body));
    }
};

bool slot_busy(const Running& r) {
    for (int i = 0; i < 200; ++i) {
        auto h = r.client().Get("/health");
        if (h && json::parse(h->body)["slots_active"] == 1) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

// A server with a stuck stream running, and the stop() call's time.
struct StoppedWhileBusy {
    Running r;
    StuckStream s;
    Clock::time_point t0;
    static ServerOptions opts(int32_t drain_ms) {
        ServerOptions o = options();
        o.drain_timeout_ms = drain_ms;
        o.send_buffer_bytes = 4096;
        return o;
    }
    explicit StoppedWhileBusy(int32_t drain_ms) : r(opts(drain_ms)), s(r.port) {
        EXPECT_TRUE(slot_busy(r));
        t0 = Clock::now();
        r.server->stop();
    }
};

// Item 12: stop() lets a running request finish (the client that resumes reading gets [DONE]).
TEST(ServerHardening, StopDrainsARunningRequest) {
    HKV_REQUIRE_SHARED(kModel);
    StoppedWhileBusy b(8000);
    Running& r = b.r;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    // New connections are refused while the running request drains.
    httplib::Client late("127.0.0.1", r.port);
    late.set_connection_timeout(1);
    EXPECT_FALSE(late.Get("/health"));
    EXPECT_FALSE(r.finished) << "the server stopped before its running request finished";
    const std::string res = b.s.c.recv(8.0, "data: [DONE]");
    EXPECT_NE(res.find("data: [DONE]"), std::string::npos) << res.substr(0, 200);
    r.thread.join();
    EXPECT_LT(seconds_since(b.t0), 8.0);
}

// Item 12: past the drain timeout the running request is cancelled and run() returns.
TEST(ServerHardening, StopCancelsRunningRequestsAtTheDeadline) {
    HKV_REQUIRE_SHARED(kModel);
    StoppedWhileBusy b(500);
    b.r.thread.join();  // the old server waited for its write timeout (10 s), or forever
    const double took = seconds_since(b.t0);
    EXPECT_GT(took, 0.4);
    EXPECT_LT(took, 3.0);
}

// Item 6: options no request could use are startup errors, not a 400 on every request.
TEST(ServerHardening, UnusableOptionsFailAtStartup) {
    HKV_REQUIRE_SHARED(kModel);
    auto model = model_load(kModel);
    ASSERT_TRUE(model.ok());
    struct Case {
        const char* what;
        void (*set)(ServerOptions&);
    } cases[] = {
        {"--kv-page-size", [](ServerOptions& o) { o.kv_page_size = 0; }},
        {"--batch-size", [](ServerOptions& o) { o.n_batch = 0; }},
        {"--threads", [](ServerOptions& o) { o.n_threads = 1025; }},
        {"--ctx-size", [](ServerOptions& o) { o.n_ctx = -1; }},
    };
    for (const Case& c : cases) {
        ServerOptions o = options();
        c.set(o);
        auto s = HttpServer::create(*model, o);
        ASSERT_FALSE(s.ok()) << c.what;
        EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
        EXPECT_NE(s.status().message().find(c.what), std::string::npos) << s.status().to_string();
    }
}

}  // namespace
}  // namespace hkv::server
