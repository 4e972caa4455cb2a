// Unit tests for tools/eval/plot: the PNG encoder produces a valid file (checked by parsing it back:
// signature, chunk CRCs (bitwise reference), zlib stream, Adler-32) whose pixels are what was drawn; SVGs carry
// every label and one cell per value.
#include <gtest/gtest.h>

#include <cmath>
#include <array>
#include <cstring>

#include <zlib.h>

#include "eval/plot.h"

namespace hkv::eval {
namespace {

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

uint32_t crc_ref(const uint8_t* p, size_t n) {  // bitwise CRC-32, independent of the table version
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; ++i) {
        c ^= p[i];
        for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

// Parses our PNG back into RGB pixels; fails the test on any structural error.
Image decode(const std::vector<uint8_t>& png) {
    Image img;
    const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    EXPECT_EQ(std::memcmp(png.data(), sig, 8), 0);
    size_t pos = 8;
    std::vector<uint8_t> z;
    while (pos + 12 <= png.size()) {
        const uint32_t len = be32(&png[pos]);
        const std::string type(reinterpret_cast<const char*>(&png[pos + 4]), 4);
        EXPECT_EQ(be32(&png[pos + 8 + len]), crc_ref(&png[pos + 4], len + 4)) << type;
        const uint8_t* d = &png[pos + 8];
        if (type == "IHDR") {
            img.width = int32_t(be32(d));
            img.height = int32_t(be32(d + 4));
            EXPECT_EQ(d[8], 8);
            EXPECT_EQ(d[9], 2);
        } else if (type == "IDAT") {
            z.insert(z.end(), d, d + len);
        }
        pos += 12 + len;
    }
    EXPECT_EQ(pos, png.size());
    // zlib stream: inflate with zlib itself, then check the Adler-32 trailer independently
    EXPECT_EQ((z[0] * 256 + z[1]) % 31, 0);
    std::vector<uint8_t> raw(size_t(img.width * 3 + 1) * size_t(img.height));
    uLongf rlen = uLongf(raw.size());
    EXPECT_EQ(uncompress(raw.data(), &rlen, z.data(), uLong(z.size())), Z_OK);
    EXPECT_EQ(rlen, raw.size());
    uint32_t a = 1, b = 0;
    for (uint8_t v : raw) a = (a + v) % 65521, b = (b + a) % 65521;
    EXPECT_EQ(be32(&z[z.size() - 4]), (b << 16) | a);
    const size_t row = size_t(img.width) * 3;
    EXPECT_EQ(raw.size(), (row + 1) * size_t(img.height));
    for (int32_t y = 0; y < img.height; ++y) {
        EXPECT_EQ(raw[size_t(y) * (row + 1)], 0);
        img.rgb.insert(img.rgb.end(), raw.begin() + long(size_t(y) * (row + 1) + 1),
                       raw.begin() + long(size_t(y + 1) * (row + 1)));
    }
    return img;
}

Heatmap sample() {
    Heatmap h;
    h.title = "NIAH full";
    h.x_label = "context tokens";
    h.y_label = "depth";
    h.x_ticks = {"512", "1024", "2048"};
    h.y_ticks = {"0%", "50%", "100%"};
    h.value = {{1.0, 1.0, 0.0}, {1.0, 0.5, 0.0}, {1.0, 1.0, NAN}};
    return h;
}

TEST(Plot, PngRoundTripsPixels) {
    const Image img = heatmap_image(sample());
    ASSERT_GT(img.width, 100);
    const Image back = decode(png_encode(img));
    EXPECT_EQ(back.width, img.width);
    EXPECT_EQ(back.height, img.height);
    EXPECT_EQ(back.rgb, img.rgb);
}

TEST(Plot, HeatmapCellsHaveValueColours) {
    const Image img = heatmap_image(sample());
    auto pixel = [&](int x, int y) {
        const uint8_t* p = img.rgb.data() + (size_t(y) * size_t(img.width) + size_t(x)) * 3;
        return std::array<int, 3>{p[0], p[1], p[2]};
    };
    // cell corners (away from the centred labels): row 0 col 0 = 1.0 (green), row 0 col 2 = 0.0 (red)
    const auto green = pixel(120 + 4, 60 + 4), red = pixel(120 + 2 * 60 + 4, 60 + 4), grey = pixel(120 + 2 * 60 + 4, 60 + 2 * 36 + 4);
    EXPECT_GT(green[1], green[0]);
    EXPECT_GT(red[0], red[1]);
    EXPECT_EQ(grey[0], grey[1]);
}

TEST(Plot, SvgHasEveryLabelAndCell) {
    const std::string svg = heatmap_svg(sample());
    for (const char* s : {"NIAH full", "context tokens", "depth", "512", "2048", "50%"}) {
        EXPECT_NE(svg.find(s), std::string::npos) << s;
    }
    size_t cells = 0;
    for (size_t p = svg.find("<rect x="); p != std::string::npos; p = svg.find("<rect x=", p + 1)) ++cells;
    EXPECT_EQ(cells, 9u);
    LineChart c;
    c.title = "accuracy vs budget";
    c.log_x = true;
    c.series = {{"snapkv", {64, 128, 256}, {0.2, 0.6, 0.9}}, {"streaming", {64, 128, 256}, {0.1, 0.2, 0.4}}};
    const std::string l = line_chart_svg(c);
    EXPECT_NE(l.find("snapkv"), std::string::npos);
    EXPECT_EQ(decode(png_encode(line_chart_image(c))).width, 720);
}

TEST(Plot, ErrorBarsAreDrawnAndWidenTheRange) {
    LineChart c;
    c.series = {{"a", {100, 200}, {0.5, 0.6}, {0.1, 0.0}}};
    const std::string svg = line_chart_svg(c);
    size_t bars = 0;
    for (size_t p = svg.find("<line x1="); p != std::string::npos; p = svg.find("<line x1=", p + 1)) ++bars;
    c.series[0].y_err.clear();
    const std::string plain = line_chart_svg(c);
    size_t lines = 0;
    for (size_t p = plain.find("<line x1="); p != std::string::npos; p = plain.find("<line x1=", p + 1)) ++lines;
    EXPECT_EQ(bars, lines + 1) << "one bar: the point with error 0 has none";
    EXPECT_NE(svg.find(">0.39<"), std::string::npos) << "the y axis reaches 0.5 - 0.1 (less 5% padding)";
    const Image with = line_chart_image({"", "", "", false, {{"a", {100, 200}, {0.5, 0.6}, {0.1, 0.0}}}});
    const Image without = line_chart_image({"", "", "", false, {{"a", {100, 200}, {0.5, 0.6}}}});
    EXPECT_NE(with.rgb, without.rgb);
}

}  // namespace
}  // namespace hkv::eval
