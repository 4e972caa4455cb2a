// Unit tests for tools/eval/plot: 1-2-5 ticks on linear and log axes, the colour-blind-safe palettes,
// and the figures: SVG with every label, one cell per value and a colour scale; PNG through cairo of the
// requested size with the drawn colours (decoded back with cairo), or a clear error without cairo.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#ifdef HKV_HAVE_CAIRO
#include <cairo.h>
#endif

#include "eval/plot.h"
#include "eval/plot_scale.h"

namespace hkv::eval {
namespace {

TEST(PlotTicks, NiceStepIsOneTwoFive) {
    EXPECT_DOUBLE_EQ(nice_step(105, 5), 50);  // 105/20 = 5.25 > 5 intervals; 50 gives 2.1
    EXPECT_DOUBLE_EQ(nice_step(100, 5), 20);
    EXPECT_DOUBLE_EQ(nice_step(1, 5), 0.2);
    EXPECT_DOUBLE_EQ(nice_step(0.37, 4), 0.1);
    EXPECT_DOUBLE_EQ(nice_step(7, 5), 2);
    for (double span : {0.003, 0.7, 1.0, 26.25, 105.0, 4321.0, 1e7}) {
        const double s = nice_step(span, 5);
        const double m = s / std::pow(10.0, std::floor(std::log10(s) + 1e-12));
        EXPECT_TRUE(std::fabs(m - 1) < 1e-9 || std::fabs(m - 2) < 1e-9 || std::fabs(m - 5) < 1e-9) << span << " " << s;
        EXPECT_LE(span / s, 5 + 1e-9) << span;
        EXPECT_GT(span / s, 1.0) << span;
    }
}

TEST(PlotTicks, NiceTicksEncloseTheRange) {
    const std::vector<double> t = nice_ticks(0, 105, 5);  // the old axis printed 26.25, 52.50, 78.75
    EXPECT_EQ(t, (std::vector<double>{0, 50, 100, 150}));
    EXPECT_EQ(nice_ticks(0, 1, 5), (std::vector<double>{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1}));
    const std::vector<double> k = nice_ticks(0.012, 0.087, 5);
    EXPECT_LE(k.front(), 0.012);
    EXPECT_GE(k.back(), 0.087);
    EXPECT_EQ(tick_labels(k, false).front(), "0.00");
    EXPECT_EQ(tick_labels(nice_ticks(0, 1, 5), false),
              (std::vector<std::string>{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}));
    EXPECT_EQ(tick_labels(nice_ticks(-3, 3, 3), false), (std::vector<std::string>{"-4", "-2", "0", "2", "4"}));
    EXPECT_EQ(tick_label(0.25, 0.25), "0.25");
    EXPECT_EQ(tick_label(150, 50), "150");
}

TEST(PlotTicks, LogTicksFollowTheValues) {
    // budgets in slots: powers of two
    EXPECT_EQ(log_ticks(64, 512, true), (std::vector<double>{64, 128, 256, 512}));
    EXPECT_TRUE(all_powers_of_two({64, 128, 1024}));
    EXPECT_FALSE(all_powers_of_two({64, 96}));
    EXPECT_FALSE(all_powers_of_two({0.5, 1}));
    // KiB over two decades: 1-2-5
    EXPECT_EQ(log_ticks(3, 700, false), (std::vector<double>{5, 10, 20, 50, 100, 200, 500}));
    EXPECT_EQ(tick_labels({0.5, 1, 2, 5}, true), (std::vector<std::string>{"0.5", "1", "2", "5"}));
    // many decades: only the powers of ten
    EXPECT_EQ(log_ticks(1, 1e6, false), (std::vector<double>{1, 10, 100, 1000, 1e4, 1e5, 1e6}));
    // a narrow span (200 .. 260 KiB): linear 1-2-5 ticks inside it, at least two
    const std::vector<double> n = log_ticks(200, 260, false);
    ASSERT_GE(n.size(), 2u);
    for (double v : n) EXPECT_TRUE(v >= 200 && v <= 260) << v;
    EXPECT_DOUBLE_EQ(n[1] - n[0], 10.0);  // 1-2-5 steps, about six intervals
}

TEST(PlotPalette, OkabeItoAndViridis) {
    EXPECT_EQ(hex_color(series_color(0)), "#0072b2");
    EXPECT_EQ(hex_color(series_color(1)), "#d55e00");
    EXPECT_EQ(series_color(series_color_count()).r, series_color(0).r);
    for (size_t i = 0; i < series_color_count(); ++i) {
        for (size_t j = i + 1; j < series_color_count(); ++j) EXPECT_NE(hex_color(series_color(i)), hex_color(series_color(j)));
    }
    EXPECT_EQ(hex_color(viridis(0)), "#440154");
    EXPECT_EQ(hex_color(viridis(1)), "#fde725");
    EXPECT_EQ(hex_color(viridis(-1)), "#440154");
    EXPECT_EQ(hex_color(viridis(NAN)), "#440154");
    double last = -1;
    for (int i = 0; i <= 100; ++i) {  // luminance rises monotonically: readable in grey
        const double l = luminance(viridis(i / 100.0));
        EXPECT_GT(l, last) << i;
        last = l;
    }
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

size_t count(const std::string& s, const std::string& what) {
    size_t n = 0;
    for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
    return n;
}

TEST(Plot, HeatmapSvgHasLabelsCellsAndAColourScale) {
    const std::string svg = heatmap_svg(sample());
    for (const char* s : {"NIAH full", "context tokens", "depth", ">512<", ">2048<", ">50%<", "accuracy (%)", ">n/a<",
                          "DejaVu Sans"}) {
        EXPECT_NE(svg.find(s), std::string::npos) << s;
    }
    EXPECT_EQ(count(svg, "fill='#440154'"), 2u) << "the two 0 cells are the bottom of viridis";
    EXPECT_EQ(count(svg, "fill='#fde725'"), 5u) << "the five 1.0 cells are the top";
    for (const char* t : {">0<", ">20<", ">40<", ">60<", ">80<", ">100<"}) EXPECT_NE(svg.find(t), std::string::npos) << t;
    const auto [w, h] = heatmap_size(sample());
    EXPECT_NE(svg.find("width='" + std::to_string(int(w))), std::string::npos);
    EXPECT_NE(svg.find("height='" + std::to_string(int(h))), std::string::npos);
}

TEST(Plot, LongLabelsWidenOrWrapNeverClip) {
    Heatmap h = sample();
    h.x_ticks = {"snapkv:budget=128,window=32", "pyramidkv:budget=128,window=32", "full"};
    h.title = "a very long title that goes on and on about needles in haystacks and the policies that find them";
    const std::string svg = heatmap_svg(h);
    EXPECT_NE(svg.find("rotate(-40"), std::string::npos) << "long column labels are turned";
    const auto [w, ht] = heatmap_size(h);
    EXPECT_LE(w, 600) << "the title wraps instead of widening the figure";
    EXPECT_GE(count(svg, "font-weight='bold'"), 2u) << "two title lines";
    (void)ht;
}

LineChart chart() {
    LineChart c;
    c.title = "accuracy vs budget";
    c.x_label = "budget (slots)";
    c.y_label = "accuracy";
    c.log_x = true;
    c.y_min = 0, c.y_max = 1;
    c.series = {{"full", {64, 512}, {1, 1}}, {"snapkv", {64, 128, 256, 512}, {0.2, 0.6, 0.9, 1.0}},
                {"streaming", {64, 128, 256, 512}, {0.1, 0.2, 0.4, 0.5}, {0.05, 0.05, 0.1, 0.1}}};
    c.series[0].reference = true;
    return c;
}

TEST(Plot, LineChartSvgTicksLegendAndErrorBars) {
    LineChart c = chart();
    const std::string svg = line_chart_svg(c);
    for (const char* s : {">64<", ">128<", ">256<", ">512<", ">0.0<", ">0.2<", ">1.0<", ">snapkv<", ">streaming<",
                          ">full<", "stroke-dasharray", "#0072b2", "#d55e00"}) {
        EXPECT_NE(svg.find(s), std::string::npos) << s;
    }
    c.series[2].y_err.clear();
    const std::string plain = line_chart_svg(c);
    EXPECT_EQ(count(svg, "<polyline"), count(plain, "<polyline") + 4 * 3) << "four bars of three strokes each";
    // an asymmetric interval is drawn too and widens the data range
    c.y_min = c.y_max = NAN;
    c.series[2].y_lo = {0.0, 0.1, 0.3, 0.4};
    c.series[2].y_hi = {0.3, 0.3, 0.5, 1.4};
    const std::string wide = line_chart_svg(c);
    EXPECT_NE(wide.find(">1.5<"), std::string::npos) << "the y axis reaches past the top of the interval (1.4)";
}

TEST(Plot, LongLegendGoesBelowThePlot) {
    LineChart c = chart();
    c.series[1].name = "dynsplit:budget=96,block=16,per_layer=1,window=32 (a long legend label)";
    const std::string svg = line_chart_svg(c);
    EXPECT_NE(svg.find("a long legend label"), std::string::npos);
    // the legend's first sample line starts at the left margin, under the plot
    EXPECT_NE(svg.find("points='10,"), std::string::npos);
}

#ifdef HKV_HAVE_CAIRO
struct Decoded {
    int w = 0, h = 0;
    std::vector<uint32_t> px;  // 0x00RRGGBB
};

Decoded decode(const std::vector<uint8_t>& png) {
    struct Reader {
        const std::vector<uint8_t>* d;
        size_t pos = 0;
    } r{&png};
    cairo_surface_t* s = cairo_image_surface_create_from_png_stream(
        [](void* c, unsigned char* out, unsigned int n) {
            auto* rd = static_cast<Reader*>(c);
            if (rd->pos + n > rd->d->size()) return CAIRO_STATUS_READ_ERROR;
            std::memcpy(out, rd->d->data() + rd->pos, n);
            rd->pos += n;
            return CAIRO_STATUS_SUCCESS;
        },
        &r);
    Decoded d;
    EXPECT_EQ(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
    if (cairo_surface_status(s) == CAIRO_STATUS_SUCCESS) {
        cairo_surface_flush(s);
        d.w = cairo_image_surface_get_width(s), d.h = cairo_image_surface_get_height(s);
        const int stride = cairo_image_surface_get_stride(s);
        const unsigned char* data = cairo_image_surface_get_data(s);
        for (int y = 0; y < d.h; ++y) {
            for (int x = 0; x < d.w; ++x) {
                uint32_t v;
                std::memcpy(&v, data + y * stride + x * 4, 4);
                d.px.push_back(v & 0xffffff);
            }
        }
    }
    cairo_surface_destroy(s);
    return d;
}

TEST(PlotPng, LineChartHasTheRequestedSizeAndColours) {
    ASSERT_TRUE(png_available());
    LineChart c = chart();
    c.width = 500, c.height = 320;
    auto png = line_chart_png(c, 2.0);
    ASSERT_TRUE(png.ok()) << png.status().message();
    const Decoded d = decode(*png);
    EXPECT_EQ(d.w, 1000);
    EXPECT_EQ(d.h, 640);
    size_t blue = 0, vermillion = 0, white = 0;
    for (uint32_t v : d.px) blue += v == 0x0072b2, vermillion += v == 0xd55e00, white += v == 0xffffff;
    EXPECT_GT(blue, 200u) << "the first series in Okabe-Ito blue";
    EXPECT_GT(vermillion, 200u) << "the second in vermillion";
    EXPECT_GT(white, d.px.size() / 2) << "a white background";
    EXPECT_LT(white, d.px.size() - 2000) << "and something drawn on it";
    c.width = 100;
    EXPECT_FALSE(line_chart_png(c).ok()) << "too small to lay out";
}

TEST(PlotPng, HeatmapCellsAndWriteFigure) {
    const Heatmap h = sample();
    auto png = heatmap_png(h, 1.0);
    ASSERT_TRUE(png.ok()) << png.status().message();
    const Decoded d = decode(*png);
    const auto [w, ht] = heatmap_size(h);
    EXPECT_EQ(d.w, int(std::lround(w)));
    EXPECT_EQ(d.h, int(std::lround(ht)));
    size_t top = 0, bottom = 0;
    for (uint32_t v : d.px) top += v == 0xfde725, bottom += v == 0x440154;
    EXPECT_GT(top, 5u * 400u) << "five cells at 1.0";
    EXPECT_GT(bottom, 2u * 400u) << "two cells at 0.0";
    const std::string dir = ::testing::TempDir() + "/hkv_plot_test";
    std::filesystem::create_directories(dir);
    ASSERT_TRUE(write_figure(dir + "/fig", h).ok());
    std::ifstream f(dir + "/fig.png", std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    EXPECT_EQ(decode(bytes).w, 2 * d.w) << "write_figure draws at 2 pixels per point";
    EXPECT_TRUE(std::filesystem::file_size(dir + "/fig.svg") > 100);
    std::filesystem::remove_all(dir);
}
#else
TEST(PlotPng, WithoutCairoPngIsAClearErrorAndSvgIsWritten) {
    EXPECT_FALSE(png_available());
    auto png = line_chart_png(chart());
    ASSERT_FALSE(png.ok());
    EXPECT_EQ(png.status().code(), StatusCode::kUnsupported);
    EXPECT_NE(png.status().message().find("libcairo2-dev"), std::string::npos);
    const std::string dir = ::testing::TempDir() + "/hkv_plot_test_nocairo";
    std::filesystem::create_directories(dir);
    ASSERT_TRUE(write_figure(dir + "/fig", chart()).ok());
    EXPECT_TRUE(std::filesystem::exists(dir + "/fig.svg"));
    EXPECT_FALSE(std::filesystem::exists(dir + "/fig.png"));
    std::filesystem::remove_all(dir);
}
#endif

}  // namespace
}  // namespace hkv::eval
