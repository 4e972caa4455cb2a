// server/http_framer.cpp — incremental request framing (see http_framer.h).
#include "server/http_framer.h"

#include <cstring>

namespace hkv::server {
namespace {

constexpr size_t kMaxChunkLine = 1024;  // chunk size + extensions

bool is_tchar(unsigned char c) {
    if (c >= '0' && c <= '9') return true;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
    return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != 0;
}

bool is_token(std::string_view s) {
    if (s.empty()) return false;
    for (unsigned char c : s) {
        if (!is_tchar(c)) return false;
    }
    return true;
}

std::string lower(std::string_view s) {
    std::string r(s);
    for (char& c : r) {
        if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    }
    return r;
}

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// A field value may hold visible characters, spaces, tabs and obs-text, no other control bytes.
bool valid_value(std::string_view v) {
    for (unsigned char c : v) {
        if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
    }
    return true;
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

bool RequestFramer::fail(int status, std::string msg) {
    state_ = State::kError;
    error_status_ = status;
    error_ = std::move(msg);
    line_.clear();
    head_.clear();
    body_.clear();
    return false;
}

void RequestFramer::reset() { *this = RequestFramer(lim_); }

std::string RequestFramer::take_request() {
    std::string r;
    if (state_ == State::kDone) {
        r.reserve(head_.size() + body_.size() + 40);
        r += head_;
        r += "Content-Length: " + std::to_string(body_.size()) + "\r\n\r\n";
        r += body_;
    }
    reset();
    return r;
}

bool RequestFramer::take_line(std::string_view in, size_t* pos, size_t max_line) {
    const size_t start = *pos;
    const void* nl = std::memchr(in.data() + start, '\n', in.size() - start);
    const size_t end = nl ? size_t(static_cast<const char*>(nl) - in.data()) + 1 : in.size();
    const size_t n = end - start;
    const bool head = state_ == State::kHead || state_ == State::kTrailers;
    if (head && head_bytes_ + n > lim_.max_head_bytes) {
        return fail(431, state_ == State::kHead
                             ? "request head is larger than " + std::to_string(lim_.max_head_bytes) + " bytes"
                             : "chunked trailers are larger than " + std::to_string(lim_.max_head_bytes) + " bytes");
    }
    if (!head && line_.size() + n > max_line) return fail(400, "chunk size line is too long");
    line_.append(in.data() + start, n);
    if (head) head_bytes_ += n;
    *pos = end;
    return nl != nullptr;
}

bool RequestFramer::head_line(std::string_view l) {
    if (!saw_request_line_) {
        if (l.empty()) return true;  // empty lines before the request line are ignored (RFC 9112 2.2)
        const size_t sp1 = l.find(' ');
        const size_t sp2 = sp1 == std::string_view::npos ? sp1 : l.find(' ', sp1 + 1);
        if (sp2 == std::string_view::npos || l.find(' ', sp2 + 1) != std::string_view::npos) {
            return fail(400, "malformed request line");
        }
        const std::string_view method = l.substr(0, sp1), target = l.substr(sp1 + 1, sp2 - sp1 - 1),
                               version = l.substr(sp2 + 1);
        if (!is_token(method) || method.size() > 32) return fail(400, "malformed request method");
        if (target.empty()) return fail(400, "empty request target");
        for (unsigned char c : target) {
            if (c <= 0x20 || c == 0x7f) return fail(400, "malformed request target");
        }
        if (version != "HTTP/1.1" && version != "HTTP/1.0") {
            if (version.substr(0, 5) == "HTTP/") return fail(505, "HTTP version not supported (1.0 and 1.1 only)");
            return fail(400, "malformed request line");
        }
        method_ = std::string(method);
        target_ = std::string(target);
        head_.append(l).append("\r\n");
        saw_request_line_ = true;
        return true;
    }
    if (l.empty()) return end_of_head();
    if (l.front() == ' ' || l.front() == '\t') return fail(400, "folded header lines are not accepted");
    const size_t colon = l.find(':');
    if (colon == std::string_view::npos || !is_token(l.substr(0, colon))) return fail(400, "malformed header line");
    const std::string name = lower(l.substr(0, colon));
    const std::string_view value = trim_ows(l.substr(colon + 1));
    if (!valid_value(value)) return fail(400, "control characters in header '" + name + "'");
    if (name == "content-length") {
        uint64_t n = 0;
        if (value.empty() || value.size() > 18) return fail(400, "malformed Content-Length");
        for (char c : value) {
            if (c < '0' || c > '9') return fail(400, "malformed Content-Length");
            n = n * 10 + uint64_t(c - '0');
        }
        if (has_length_ && n != content_length_) return fail(400, "conflicting Content-Length headers");
        has_length_ = true;
        content_length_ = n;
        return true;
    }
    if (name == "transfer-encoding") {
        if (lower(value) != "chunked") {
            return fail(501, "Transfer-Encoding '" + std::string(value.substr(0, 64)) + "' is not supported (only chunked)");
        }
        if (chunked_) return fail(400, "Transfer-Encoding chunked given twice");
        chunked_ = true;
        return true;
    }
    if (name == "content-encoding") {
        if (lower(value) != "identity") {
            return fail(415, "Content-Encoding '" + std::string(value.substr(0, 64)) + "' is not supported (send the "
                             "body uncompressed)");
        }
        return true;
    }
    if (name == "expect") {
        if (lower(value) != "100-continue") return fail(417, "only 'Expect: 100-continue' is supported");
        expect_continue_ = true;
        return true;
    }
    head_.append(l.substr(0, colon)).append(": ").append(value).append("\r\n");
    return true;
}

bool RequestFramer::end_of_head() {
    if (chunked_ && has_length_) return fail(400, "both Content-Length and Transfer-Encoding are given");
    if (has_length_ && content_length_ > lim_.max_body_bytes) {
        return fail(413, "request body of " + std::to_string(content_length_) + " bytes exceeds the limit of " +
                             std::to_string(lim_.max_body_bytes) + " bytes");
    }
    head_done_ = true;
    head_bytes_ = 0;  // trailers, if any, have their own allowance
    if (chunked_) {
        state_ = State::kChunkSize;
    } else if (content_length_ > 0) {
        body_.reserve(size_t(content_length_));
        state_ = State::kBody;
    } else {
        state_ = State::kDone;
    }
    return true;
}

bool RequestFramer::chunk_size_line(std::string_view l) {
    uint64_t n = 0;
    size_t i = 0;
    for (; i < l.size() && hex_digit(l[i]) >= 0; ++i) {
        if (n >> 60) return fail(400, "chunk size overflows");
        n = n * 16 + uint64_t(hex_digit(l[i]));
    }
    if (i == 0) return fail(400, "malformed chunk size");
    std::string_view rest = trim_ows(l.substr(i));
    if (!rest.empty() && (rest.front() != ';' || !valid_value(rest))) return fail(400, "malformed chunk size");
    if (n == 0) {
        state_ = State::kTrailers;
        return true;
    }
    if (n > lim_.max_body_bytes - body_.size()) {
        return fail(413, "chunked request body exceeds the limit of " + std::to_string(lim_.max_body_bytes) + " bytes");
    }
    chunk_left_ = n;
    state_ = State::kChunkData;
    return true;
}

size_t RequestFramer::feed(std::string_view in) {
    size_t pos = 0;
    while (pos < in.size() && state_ != State::kDone && state_ != State::kError) {
        started_ = true;
        switch (state_) {
            case State::kBody:
            case State::kChunkData: {
                uint64_t& left = state_ == State::kBody ? content_length_ : chunk_left_;
                const size_t n = size_t(std::min<uint64_t>(left, in.size() - pos));
                body_.append(in.data() + pos, n);
                pos += n;
                left -= n;
                if (left == 0) state_ = state_ == State::kBody ? State::kDone : State::kChunkEnd;
                break;
            }
            default: {  // a line: head, chunk size, chunk end, trailers
                if (!take_line(in, &pos, kMaxChunkLine)) break;
                if (line_.size() < 2 || line_[line_.size() - 2] != '\r') {
                    fail(400, "a line ends with a bare LF (CRLF expected)");
                    break;
                }
                const std::string_view l(line_.data(), line_.size() - 2);
                if (state_ == State::kHead) {
                    head_line(l);
                } else if (state_ == State::kChunkSize) {
                    chunk_size_line(l);
                } else if (state_ == State::kChunkEnd) {
                    if (!l.empty()) fail(400, "chunk data is longer than its size");
                    else state_ = State::kChunkSize;
                } else if (l.empty()) {  // end of the trailers
                    state_ = State::kDone;
                } else {
                    const size_t colon = l.find(':');
                    if (colon == std::string_view::npos || !is_token(l.substr(0, colon))) {
                        fail(400, "malformed trailer line");
                    }
                }
                line_.clear();
                break;
            }
        }
    }
    return pos;
}

}  // namespace hkv::server
