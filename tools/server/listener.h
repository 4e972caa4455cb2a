// server/listener.h — the server's sockets: accepting, reading requests, worker threads, draining.
//
// cpp-httplib 0.11 (Debian's) gives each accepted connection a worker thread that then waits for
// the request: a client sending one header line every few seconds holds that worker, and a dozen
// such clients starve /health. It also sets SO_REUSEPORT (a second server on the same port starts
// and shares the traffic), listens with a backlog of 5, reads a chunked body whole before any
// limit applies, and waits for in-flight requests without a deadline when stopped. So the
// listener owns the sockets and uses httplib only to parse, route and answer a complete request:
//
//   gate thread (run())   poll() over the listening socket and every connection that is between
//                         requests: reads bytes as they arrive into a RequestFramer
//                         (server/http_framer.h), which enforces the head/body limits while
//                         reading; answers 400/408/413/415/417/431/501/505 itself (then closes
//                         after a short drain so the client sees the answer); a request that is not
//                         complete within request_timeout_ms of its first byte gets 408; an idle
//                         keep-alive connection is closed after idle_timeout_ms.
//   workers               take complete requests only (so no worker ever waits for a slow client's
//                         bytes): n_workers for requests with a body (completions, which may wait
//                         for a slot and generate), n_light_workers for bodiless ones (/health,
//                         /metrics, /v1/models), so a probe never queues behind generations.
//                         The handler writes the response through a Stream that serves the
//                         buffered request and writes to the socket with write_timeout_ms.
//   limits                max_connections open at once (past it the longest-waiting unfinished
//                         connection is dropped to admit the new one); max_buffered_bytes of
//                         partial requests over all connections (past it, connections in their
//                         body are not read until others finish: TCP flow control holds them).
//   stop()                stops accepting and closes connections that are between requests; the
//                         requests being handled finish (drain) until drain_timeout_ms, then they
//                         are cancelled: cancelled() turns true (generations poll it through
//                         connection_alive() / the stream's is_writable()) and their sockets are
//                         shut down; run() returns when every worker is idle. A second stop()
//                         cancels at once.
// The listening socket has SO_REUSEADDR only (binding a port in use fails) and the given backlog.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "heterokv/status.h"
#include "server/http_framer.h"

namespace httplib {
class Stream;
}

namespace hkv::server {

struct ListenerOptions {
    std::string host = "127.0.0.1";
    int port = 0;                        // 0: any free port
    int backlog = 1024;                  // listen(2) backlog (the kernel caps it at somaxconn)
    int32_t max_connections = 512;       // open connections (also capped by RLIMIT_NOFILE)
    int32_t request_timeout_ms = 10000;  // from a request's first byte to its last
    int32_t idle_timeout_ms = 5000;      // a connection waiting for its next request
    int32_t write_timeout_ms = 10000;    // each write of a response
    int32_t drain_timeout_ms = 10000;    // stop(): how long running requests may finish
    int32_t n_workers = 4;               // threads for requests with a body
    int32_t n_light_workers = 2;         // threads for requests without a body
    int32_t max_requests_per_connection = 1000;
    int32_t send_buffer_bytes = 0;       // SO_SNDBUF of each connection (0: the kernel's, autotuned):
                                         // bounds the kernel memory a client that does not read holds
    size_t max_buffered_bytes = 16 << 20;
    FramerLimits limits;
};

class Listener {
public:
    // Handles one complete request: reads it from the stream, writes the answer; returns false if
    // the connection must close (write failure). close_connection: answer with "Connection: close";
    // connection_closed: set when the client asked to close.
    using Handler = std::function<bool(httplib::Stream& strm, bool close_connection, bool& connection_closed)>;
    // The body of an error answer the listener writes itself (content type application/json);
    // also the place to count it.
    using ErrorBody = std::function<std::string(int status, const std::string& message)>;

    // Creates, binds and listens (so connections queue in the backlog until run()). Errors name the
    // address ("127.0.0.1:8080: Address already in use").
    static Expected<std::unique_ptr<Listener>> open(const ListenerOptions& options);
    ~Listener();
    int port() const;
    // Serves until stop() and the drain are over. Call once.
    Status run(const Handler& handler, const ErrorBody& error_body);
    // Thread-safe, from any thread (a signal watcher). See the top of this file.
    void stop();
    bool stopping() const;
    bool cancelled() const;
    // On a worker thread while it handles a request: false once the client has gone (closed or
    // reset its connection) or the server cancels running requests. True on other threads.
    static bool connection_alive();

private:
    Listener();
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace hkv::server
