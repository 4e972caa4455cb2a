// RequestFramer (server/http_framer.h): complete requests in any split, limits while reading,
// the canonical request handed to httplib, and every refusal with its status.
#include <gtest/gtest.h>

#include <string>

#include "server/http_framer.h"

namespace hkv::server {
namespace {

struct Framed {
    RequestFramer f;
    std::string request, rest;
    explicit Framed(const FramerLimits& lim = FramerLimits{}) : f(lim) {}
    // Feeds `in` in pieces of `step` bytes; stops at the end of the request or at an error.
    void feed(const std::string& in, size_t step) {
        size_t pos = 0;
        while (pos < in.size() && !f.done() && !f.failed()) {
            const std::string piece = in.substr(pos, step);
            pos += f.feed(piece);
        }
        rest = in.substr(pos);
        if (f.done()) request = f.take_request();
    }
};

const std::string kHead = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n";

TEST(HttpFramer, ContentLengthInAnySplit) {
    const std::string req = kHead + "Content-Length: 5\r\n\r\nhello" + "GET /health HTTP/1.1\r\n\r\n";
    for (size_t step : {1, 2, 7, 1000}) {
        Framed fr;
        fr.feed(req, step);
        ASSERT_TRUE(fr.f.done() || !fr.request.empty()) << step;
        EXPECT_EQ(fr.request, kHead + "Content-Length: 5\r\n\r\nhello") << step;
        EXPECT_EQ(fr.rest, "GET /health HTTP/1.1\r\n\r\n") << step;  // the next request, untouched
    }
}

TEST(HttpFramer, ChunkedIsDecodedIntoAContentLength) {
    const std::string req = kHead + "Transfer-Encoding: chunked\r\n\r\n" + "3\r\nabc\r\n" + "A;ext=1\r\n0123456789\r\n" +
                            "0\r\nX-Trailer: t\r\n\r\n";
    for (size_t step : {1, 3, 4096}) {
        Framed fr;
        fr.feed(req, step);
        EXPECT_EQ(fr.request, kHead + "Content-Length: 13\r\n\r\nabc0123456789") << step;
        EXPECT_TRUE(fr.rest.empty());
    }
}

TEST(HttpFramer, BodyLimitHoldsWhileReading) {
    FramerLimits lim;
    lim.max_body_bytes = 8;
    {  // declared too large: refused at the end of the head, before any body byte
        Framed fr(lim);
        fr.feed(kHead + "Content-Length: 9\r\n\r\n", 5);
        EXPECT_TRUE(fr.f.failed());
        EXPECT_EQ(fr.f.error_status(), 413);
    }
    {  // chunked: refused at the chunk that passes the limit, the rest never read
        Framed fr(lim);
        fr.feed(kHead + "Transfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n4\r\n", 1);
        EXPECT_TRUE(fr.f.failed());
        EXPECT_EQ(fr.f.error_status(), 413);
        EXPECT_NE(fr.f.error_message().find("limit of 8 bytes"), std::string::npos);
        EXPECT_LE(fr.f.buffered_bytes(), 8u);
    }
    {  // exactly at the limit: fine
        Framed fr(lim);
        fr.feed(kHead + "Transfer-Encoding: chunked\r\n\r\n8\r\nabcdefgh\r\n0\r\n\r\n", 3);
        EXPECT_TRUE(fr.request.find("Content-Length: 8\r\n\r\nabcdefgh") != std::string::npos);
    }
}

TEST(HttpFramer, HeadLimitAndDeadlineState) {
    FramerLimits lim;
    lim.max_head_bytes = 64;
    Framed fr(lim);
    EXPECT_FALSE(fr.f.started());
    fr.feed("GET / HTTP/1.1\r\n", 4);
    EXPECT_TRUE(fr.f.started());
    EXPECT_FALSE(fr.f.head_done());
    fr.feed("X-Long: " + std::string(100, 'a') + "\r\n", 10);
    EXPECT_TRUE(fr.f.failed());
    EXPECT_EQ(fr.f.error_status(), 431);
}

TEST(HttpFramer, ExpectContinue) {
    Framed fr;
    fr.feed(kHead + "Expect: 100-continue\r\nContent-Length: 2\r\n\r\n", 1000);
    EXPECT_TRUE(fr.f.wants_continue());
    fr.f.continue_sent();
    EXPECT_FALSE(fr.f.wants_continue());
    fr.feed("ok", 1);
    EXPECT_EQ(fr.request.find("Expect"), std::string::npos);
    EXPECT_NE(fr.request.find("Content-Length: 2\r\n\r\nok"), std::string::npos);
}

TEST(HttpFramer, RefusalsHaveTheirStatus) {
    const struct {
        std::string in;
        int status;
    } cases[] = {
        {"GARBAGE\r\n\r\n", 400},
        {"GET / HTTP/2.0\r\n\r\n", 505},
        {"GET /\x01 HTTP/1.1\r\n\r\n", 400},
        {"GET / HTTP/1.1\n\n", 400},                                              // bare LF
        {"GET / HTTP/1.1\r\n folded\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nNo colon\r\n\r\n", 400},
        {kHead + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},  // smuggling
        {kHead + "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
        {kHead + "Content-Length: -1\r\n\r\n", 400},
        {kHead + "Transfer-Encoding: gzip, chunked\r\n\r\n", 501},
        {kHead + "Content-Encoding: gzip\r\nContent-Length: 1\r\n\r\n", 415},
        {kHead + "Expect: something\r\n\r\n", 417},
        {kHead + "Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
        {kHead + "Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\n", 400},
        {kHead + "Transfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", 400},            // data longer than its size
    };
    for (const auto& c : cases) {
        Framed fr;
        fr.feed(c.in, 3);
        EXPECT_TRUE(fr.f.failed()) << c.in;
        EXPECT_EQ(fr.f.error_status(), c.status) << c.in << " -> " << fr.f.error_message();
        EXPECT_FALSE(fr.f.error_message().empty());
    }
}

TEST(HttpFramer, ResetServesTheNextRequest) {
    Framed fr;
    fr.feed("\r\nGET /a HTTP/1.1\r\n\r\n", 100);  // a stray CRLF before a request is allowed
    EXPECT_EQ(fr.request, "GET /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(fr.f.method(), "");  // take_request() left the framer empty
    fr.feed("GET /b HTTP/1.0\r\n\r\n", 100);
    EXPECT_EQ(fr.request, "GET /b HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
}

}  // namespace
}  // namespace hkv::server
