// server/http_framer.h — incremental HTTP/1.1 request framing with limits enforced while reading.
//
// The listener (server/listener.h) feeds each connection's bytes as they arrive; RequestFramer finds
// where the request head ends and how long the body is (Content-Length, or a chunked body that it
// decodes), and refuses as early as it can:
//   head (request line + headers, or chunked trailers) over max_head_bytes      -> 431
//   Content-Length over max_body_bytes (before reading any of the body)          -> 413
//   a chunked body whose decoded size passes max_body_bytes (at that chunk)      -> 413
//   malformed request line, header line, chunk size, bare LF line ends,
//   Content-Length with Transfer-Encoding, conflicting Content-Lengths           -> 400
//   Transfer-Encoding other than chunked                                          -> 501
//   Content-Encoding other than identity (no decompression bombs)                 -> 415
//   Expect other than 100-continue                                                -> 417
//   HTTP version other than 1.0 / 1.1                                             -> 505
// Nothing is buffered beyond the current head line plus the decoded body (at most max_body_bytes).
// A complete request comes out as a canonical one for the HTTP library: the request line, the
// header lines other than Transfer-Encoding / Content-Length / Expect / Content-Encoding, then
// "Content-Length: N", a blank line and the N body bytes; so the library never decodes chunks,
// never reads until EOF and never decompresses. No sockets, no allocation beyond the limits;
// fuzzed by tests/fuzz/fuzz_request.cpp. Not thread-safe (one per connection).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace hkv::server {

struct FramerLimits {
    size_t max_head_bytes = 16 * 1024;   // request line + header lines (and, separately, trailers)
    size_t max_body_bytes = 1 << 20;     // decoded body
};

class RequestFramer {
public:
    explicit RequestFramer(const FramerLimits& limits) : lim_(limits) {}

    // Consumes bytes of `in` up to the end of the current request and returns how many it used
    // (the rest is the start of the next request on the connection). Call again with more bytes
    // while !done() && !failed(); after either, feed() consumes nothing.
    size_t feed(std::string_view in);

    bool done() const { return state_ == State::kDone; }
    bool failed() const { return state_ == State::kError; }
    bool started() const { return started_; }         // any byte of this request was consumed
    bool head_done() const { return head_done_; }
    // The head asked "Expect: 100-continue" and the body has not started: the listener sends
    // "100 Continue" once (then call continue_sent()).
    bool wants_continue() const { return expect_continue_ && head_done_ && !continue_sent_ && !done() && !failed(); }
    void continue_sent() { continue_sent_ = true; }
    // The HTTP status of a failure (400, 413, 415, 417, 431, 501, 505) and what was wrong.
    int error_status() const { return error_status_; }
    const std::string& error_message() const { return error_; }
    const std::string& method() const { return method_; }
    const std::string& target() const { return target_; }
    size_t body_bytes() const { return body_.size(); }
    // Bytes held for this request (canonical head + body + the partial line).
    size_t buffered_bytes() const { return head_.size() + body_.size() + line_.size(); }
    // After done(): the canonical request (see the top of this file). Leaves the framer empty.
    std::string take_request();
    // Ready for the next request on the same connection.
    void reset();

private:
    enum class State { kHead, kBody, kChunkSize, kChunkData, kChunkEnd, kTrailers, kDone, kError };
    bool fail(int status, std::string msg);
    // One complete line of the head / of the trailers (without its CRLF).
    bool head_line(std::string_view line);
    bool end_of_head();
    bool chunk_size_line(std::string_view line);
    // Appends to line_ up to and including '\n'; returns true when line_ holds a whole line.
    bool take_line(std::string_view in, size_t* pos, size_t max_line);

    FramerLimits lim_;
    State state_ = State::kHead;
    bool started_ = false, head_done_ = false;
    bool expect_continue_ = false, continue_sent_ = false;
    bool chunked_ = false, has_length_ = false, saw_request_line_ = false;
    uint64_t content_length_ = 0;
    uint64_t chunk_left_ = 0;
    size_t head_bytes_ = 0;     // bytes of the head (or of the trailers) consumed so far
    int error_status_ = 0;
    std::string error_;
    std::string method_, target_;
    std::string line_;          // the partial line being read
    std::string head_;          // canonical head being built
    std::string body_;          // decoded body
};

}  // namespace hkv::server
