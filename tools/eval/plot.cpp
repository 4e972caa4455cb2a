// tools/eval/plot.cpp — SVG and PNG rendering of heatmaps and line charts (see plot.h).
#include "eval/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include <zlib.h>

#include "eval/font5x7.h"
#include "heterokv/file_io.h"

namespace hkv::eval {
namespace {

struct Rgb {
    uint8_t r, g, b;
};

// 0 -> red, 0.5 -> yellow, 1 -> green (the usual needle-in-a-haystack palette); NaN -> grey.
Rgb value_color(double v) {
    if (std::isnan(v)) return {200, 200, 200};
    v = std::clamp(v, 0.0, 1.0);
    if (v < 0.5) return {220, uint8_t(60 + 340 * v), 60};
    return {uint8_t(220 - 340 * (v - 0.5)), 230, uint8_t(60 + 40 * (v - 0.5))};
}

const Rgb kSeriesColors[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40}, {148, 103, 189},
                             {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};

std::string hex(Rgb c) {
    char b[8];
    std::snprintf(b, sizeof(b), "#%02x%02x%02x", c.r, c.g, c.b);
    return b;
}

std::string esc(const std::string& s) {
    std::string o;
    for (char c : s) {
        if (c == '<') o += "&lt;";
        else if (c == '>') o += "&gt;";
        else if (c == '&') o += "&amp;";
        else o += c;
    }
    return o;
}

// ---- raster canvas ----
struct Canvas {
    Image img;
    Canvas(int w, int h) {
        img.width = w;
        img.height = h;
        img.rgb.assign(size_t(w) * size_t(h) * 3, 255);
    }
    void px(int x, int y, Rgb c) {
        if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
        uint8_t* p = img.rgb.data() + (size_t(y) * size_t(img.width) + size_t(x)) * 3;
        p[0] = c.r, p[1] = c.g, p[2] = c.b;
    }
    void rect(int x0, int y0, int w, int h, Rgb c) {
        for (int y = y0; y < y0 + h; ++y)
            for (int x = x0; x < x0 + w; ++x) px(x, y, c);
    }
    void line(int x0, int y0, int x1, int y1, Rgb c, int thick = 1) {
        const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
        const int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
        int err = dx + dy;
        for (;;) {
            rect(x0 - thick / 2, y0 - thick / 2, thick, thick, c);
            if (x0 == x1 && y0 == y1) break;
            const int e2 = 2 * err;
            if (e2 >= dy) err += dy, x0 += sx;
            if (e2 <= dx) err += dx, y0 += sy;
        }
    }
    // Text at (x, y) top-left, scale s; returns the width drawn.
    int text(int x, int y, const std::string& s, Rgb c, int scale = 2) {
        int cx = x;
        for (char ch : s) {
            const Glyph& g = font_glyph(ch);
            for (int r = 0; r < 7; ++r)
                for (int b = 0; b < 5; ++b)
                    if (g.rows[r] & (0x10 >> b)) rect(cx + b * scale, y + r * scale, scale, scale, c);
            cx += 6 * scale;
        }
        return cx - x;
    }
    static int text_width(const std::string& s, int scale = 2) { return int(s.size()) * 6 * scale; }
};

constexpr Rgb kBlack{0, 0, 0};
constexpr Rgb kGrid{220, 220, 220};

// Layout shared by SVG and raster heatmaps.
struct HeatLayout {
    int left = 120, top = 60, cell_w = 60, cell_h = 36, right = 40, bottom = 70;
    int width(size_t cols) const { return left + int(cols) * cell_w + right; }
    int height(size_t rows) const { return top + int(rows) * cell_h + bottom; }
};

// The default layout, widened for long tick labels (char_w: pixels per character of the font).
HeatLayout heat_layout(const Heatmap& h, int char_w) {
    HeatLayout L;
    for (const std::string& t : h.y_ticks) L.left = std::max(L.left, 16 + int(t.size()) * char_w);
    for (const std::string& t : h.x_ticks) L.cell_w = std::max(L.cell_w, 8 + int(t.size()) * char_w);
    return L;
}

// Axis range for line charts.
struct Range {
    double lo, hi;
    bool log;
    double map(double v, double a, double b) const {
        const double t = log ? (std::log2(v) - std::log2(lo)) / (std::log2(hi) - std::log2(lo)) : (v - lo) / (hi - lo);
        return a + (b - a) * (std::isfinite(t) ? t : 0.5);
    }
};

void chart_ranges(const LineChart& c, Range* xr, Range* yr) {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (const auto& s : c.series) {
        for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
            if (!std::isfinite(s.y[i])) continue;
            x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
            const double e = i < s.y_err.size() && std::isfinite(s.y_err[i]) ? s.y_err[i] : 0.0;
            y0 = std::min(y0, s.y[i] - e), y1 = std::max(y1, s.y[i] + e);
        }
    }
    if (!std::isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
    if (x1 == x0) x1 = x0 + 1;
    if (y0 > 0 && y0 < 0.5 * y1) y0 = 0;
    if (y1 == y0) y1 = y0 + 1;
    const double pad = 0.05 * (y1 - y0);
    *xr = {x0, x1, c.log_x && x0 > 0};
    *yr = {y0 - (y0 == 0 ? 0 : pad), y1 + pad, false};
}

// The x values of every series, sorted, without those that would print within 48 px of the previous
// label (close values, e.g. KV bytes of policies matched to the same memory).
std::vector<double> x_ticks(const LineChart& c, const Range& xr, double a, double b) {
    std::vector<double> xs, kept;
    for (const auto& s : c.series) xs.insert(xs.end(), s.x.begin(), s.x.end());
    std::sort(xs.begin(), xs.end());
    xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
    for (double v : xs) {
        if (kept.empty() || xr.map(v, a, b) - xr.map(kept.back(), a, b) >= 48.0) kept.push_back(v);
    }
    return kept;
}

std::string fmt(double v) {
    char b[32];
    if (std::fabs(v) >= 1000 || v == std::floor(v)) std::snprintf(b, sizeof(b), "%.0f", v);
    else std::snprintf(b, sizeof(b), "%.2f", v);
    return b;
}

// ---- PNG ----
void put_be32(std::vector<uint8_t>& v, uint32_t x) {
    for (int s = 24; s >= 0; s -= 8) v.push_back(uint8_t(x >> s));
}

void chunk(std::vector<uint8_t>& out, const char* type, const std::vector<uint8_t>& data) {
    put_be32(out, uint32_t(data.size()));
    std::vector<uint8_t> td(type, type + 4);
    td.insert(td.end(), data.begin(), data.end());
    out.insert(out.end(), td.begin(), td.end());
    put_be32(out, uint32_t(crc32(0L, td.data(), uInt(td.size()))));
}

}  // namespace

std::string heatmap_svg(const Heatmap& h) {
    const HeatLayout L = heat_layout(h, 7);
    const size_t rows = h.y_ticks.size(), cols = h.x_ticks.size();
    const int W = std::max(L.width(cols), int(h.title.size()) * 9 + 40), H = L.height(rows);
    std::ostringstream o;
    o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H
      << "' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n";
    o << "<text x='" << W / 2 << "' y='24' text-anchor='middle' font-size='15'>" << esc(h.title) << "</text>\n";
    for (size_t r = 0; r < rows; ++r) {
        for (size_t c = 0; c < cols; ++c) {
            const double v = r < h.value.size() && c < h.value[r].size() ? h.value[r][c] : NAN;
            const int x = L.left + int(c) * L.cell_w, y = L.top + int(r) * L.cell_h;
            o << "<rect x='" << x << "' y='" << y << "' width='" << L.cell_w << "' height='" << L.cell_h << "' fill='"
              << hex(value_color(v)) << "' stroke='white'/>";
            if (!std::isnan(v)) {
                o << "<text x='" << x + L.cell_w / 2 << "' y='" << y + L.cell_h / 2 + 4 << "' text-anchor='middle'>"
                  << int(std::lround(100 * v)) << "</text>";
            }
            o << "\n";
        }
        o << "<text x='" << L.left - 8 << "' y='" << L.top + int(r) * L.cell_h + L.cell_h / 2 + 4
          << "' text-anchor='end'>" << esc(h.y_ticks[r]) << "</text>\n";
    }
    for (size_t c = 0; c < cols; ++c) {
        o << "<text x='" << L.left + int(c) * L.cell_w + L.cell_w / 2 << "' y='" << L.top + int(rows) * L.cell_h + 18
          << "' text-anchor='middle'>" << esc(h.x_ticks[c]) << "</text>\n";
    }
    o << "<text x='" << L.left + int(cols) * L.cell_w / 2 << "' y='" << H - 16 << "' text-anchor='middle'>"
      << esc(h.x_label) << "</text>\n";
    o << "<text x='16' y='" << L.top + int(rows) * L.cell_h / 2 << "' text-anchor='middle' transform='rotate(-90 16 "
      << L.top + int(rows) * L.cell_h / 2 << ")'>" << esc(h.y_label) << "</text>\n</svg>\n";
    return o.str();
}

Image heatmap_image(const Heatmap& h) {
    const HeatLayout L = heat_layout(h, Canvas::text_width("x"));
    const size_t rows = h.y_ticks.size(), cols = h.x_ticks.size();
    const int w = std::max({L.width(cols), Canvas::text_width(h.title) + 40,
                            L.left + Canvas::text_width(h.x_label) + 20});
    Canvas cv(w, L.height(rows));
    cv.text((cv.img.width - Canvas::text_width(h.title)) / 2, 16, h.title, kBlack);
    for (size_t r = 0; r < rows; ++r) {
        for (size_t c = 0; c < cols; ++c) {
            const double v = r < h.value.size() && c < h.value[r].size() ? h.value[r][c] : NAN;
            const int x = L.left + int(c) * L.cell_w, y = L.top + int(r) * L.cell_h;
            cv.rect(x + 1, y + 1, L.cell_w - 2, L.cell_h - 2, value_color(v));
            if (!std::isnan(v)) {
                const std::string t = std::to_string(int(std::lround(100 * v)));
                cv.text(x + (L.cell_w - Canvas::text_width(t)) / 2, y + L.cell_h / 2 - 7, t, kBlack);
            }
        }
        const std::string& t = h.y_ticks[r];
        cv.text(L.left - 8 - Canvas::text_width(t), L.top + int(r) * L.cell_h + L.cell_h / 2 - 7, t, kBlack);
    }
    for (size_t c = 0; c < cols; ++c) {
        const std::string& t = h.x_ticks[c];
        cv.text(L.left + int(c) * L.cell_w + (L.cell_w - Canvas::text_width(t)) / 2, L.top + int(rows) * L.cell_h + 8, t,
                kBlack);
    }
    cv.text(L.left + (int(cols) * L.cell_w - Canvas::text_width(h.x_label)) / 2, cv.img.height - 28, h.x_label, kBlack);
    cv.text(4, L.top - 20, h.y_label, kBlack);
    return cv.img;
}

std::string line_chart_svg(const LineChart& c) {
    const int W = 720, H = 440, l = 80, r = 180, t = 50, b = 60;
    Range xr, yr;
    chart_ranges(c, &xr, &yr);
    std::ostringstream o;
    o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H
      << "' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n";
    o << "<text x='" << (l + W - r) / 2 << "' y='24' text-anchor='middle' font-size='15'>" << esc(c.title) << "</text>\n";
    o << "<rect x='" << l << "' y='" << t << "' width='" << W - l - r << "' height='" << H - t - b
      << "' fill='none' stroke='black'/>\n";
    for (int i = 0; i <= 4; ++i) {
        const double yv = yr.lo + (yr.hi - yr.lo) * i / 4.0;
        const double y = yr.map(yv, H - b, t);
        o << "<line x1='" << l << "' x2='" << W - r << "' y1='" << y << "' y2='" << y << "' stroke='#ddd'/>"
          << "<text x='" << l - 6 << "' y='" << y + 4 << "' text-anchor='end'>" << fmt(yv) << "</text>\n";
    }
    const std::vector<double> xs = x_ticks(c, xr, l, W - r);
    for (double xv : xs) {
        o << "<text x='" << xr.map(xv, l, W - r) << "' y='" << H - b + 18 << "' text-anchor='middle'>" << fmt(xv)
          << "</text>\n";
    }
    for (size_t si = 0; si < c.series.size(); ++si) {
        const auto& s = c.series[si];
        const std::string col = hex(kSeriesColors[si % 10]);
        o << "<polyline fill='none' stroke='" << col << "' stroke-width='2' points='";
        for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
            if (std::isfinite(s.y[i])) o << xr.map(s.x[i], l, W - r) << "," << yr.map(s.y[i], H - b, t) << " ";
        }
        o << "'/>\n";
        for (size_t i = 0; i < s.y_err.size() && i < s.x.size() && i < s.y.size(); ++i) {
            if (!std::isfinite(s.y[i]) || !(s.y_err[i] > 0)) continue;
            const double x = xr.map(s.x[i], l, W - r);
            o << "<line x1='" << x << "' x2='" << x << "' y1='" << yr.map(s.y[i] - s.y_err[i], H - b, t) << "' y2='"
              << yr.map(s.y[i] + s.y_err[i], H - b, t) << "' stroke='" << col << "'/>\n";
        }
        o << "<text x='" << W - r + 12 << "' y='" << t + 16 + 18 * int(si) << "' fill='" << col << "'>"
          << esc(s.name) << "</text>\n";
    }
    o << "<text x='" << (l + W - r) / 2 << "' y='" << H - 16 << "' text-anchor='middle'>" << esc(c.x_label)
      << "</text>\n<text x='18' y='" << (t + H - b) / 2 << "' text-anchor='middle' transform='rotate(-90 18 "
      << (t + H - b) / 2 << ")'>" << esc(c.y_label) << "</text>\n</svg>\n";
    return o.str();
}

Image line_chart_image(const LineChart& c) {
    const int W = 720, H = 440, l = 80, r = 200, t = 50, b = 60;
    Range xr, yr;
    chart_ranges(c, &xr, &yr);
    Canvas cv(W, H);
    cv.text((l + W - r - Canvas::text_width(c.title)) / 2, 14, c.title, kBlack);
    for (int i = 0; i <= 4; ++i) {
        const double yv = yr.lo + (yr.hi - yr.lo) * i / 4.0;
        const int y = int(yr.map(yv, H - b, t));
        cv.line(l, y, W - r, y, kGrid);
        const std::string s = fmt(yv);
        cv.text(l - 6 - Canvas::text_width(s), y - 7, s, kBlack);
    }
    cv.line(l, t, W - r, t, kBlack);
    cv.line(l, H - b, W - r, H - b, kBlack);
    cv.line(l, t, l, H - b, kBlack);
    cv.line(W - r, t, W - r, H - b, kBlack);
    const std::vector<double> xs = x_ticks(c, xr, l, W - r);
    for (double xv : xs) {
        const std::string s = fmt(xv);
        cv.text(int(xr.map(xv, l, W - r)) - Canvas::text_width(s) / 2, H - b + 8, s, kBlack);
    }
    for (size_t si = 0; si < c.series.size(); ++si) {
        const auto& s = c.series[si];
        const Rgb col = kSeriesColors[si % 10];
        int px = -1, py = -1;
        for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
            if (!std::isfinite(s.y[i])) continue;
            const int x = int(xr.map(s.x[i], l, W - r)), y = int(yr.map(s.y[i], H - b, t));
            if (px >= 0) cv.line(px, py, x, y, col, 2);
            cv.rect(x - 3, y - 3, 7, 7, col);
            if (i < s.y_err.size() && s.y_err[i] > 0) {
                const int y_lo = int(yr.map(s.y[i] - s.y_err[i], H - b, t)), y_hi = int(yr.map(s.y[i] + s.y_err[i], H - b, t));
                cv.line(x, y_lo, x, y_hi, col);
                cv.line(x - 4, y_lo, x + 4, y_lo, col), cv.line(x - 4, y_hi, x + 4, y_hi, col);
            }
            px = x, py = y;
        }
        cv.rect(W - r + 10, t + 6 + 20 * int(si), 12, 12, col);
        cv.text(W - r + 28, t + 6 + 20 * int(si), s.name, kBlack);
    }
    cv.text((l + W - r - Canvas::text_width(c.x_label)) / 2, H - 28, c.x_label, kBlack);
    cv.text(4, 30, c.y_label, kBlack);
    return cv.img;
}

std::vector<uint8_t> png_encode(const Image& img) {
    std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    std::vector<uint8_t> ihdr;
    put_be32(ihdr, uint32_t(img.width));
    put_be32(ihdr, uint32_t(img.height));
    ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // 8-bit, RGB, deflate, no filter method, no interlace
    chunk(out, "IHDR", ihdr);
    // raw scanlines: filter byte 0 + row
    std::vector<uint8_t> raw;
    const size_t row = size_t(img.width) * 3;
    raw.reserve((row + 1) * size_t(img.height));
    for (int32_t y = 0; y < img.height; ++y) {
        raw.push_back(0);
        raw.insert(raw.end(), img.rgb.begin() + long(size_t(y) * row), img.rgb.begin() + long(size_t(y + 1) * row));
    }
    // zlib stream (deflate, best compression: plots are mostly flat colour)
    uLongf zlen = compressBound(uLong(raw.size()));
    std::vector<uint8_t> z(zlen);
    if (compress2(z.data(), &zlen, raw.data(), uLong(raw.size()), 9) != Z_OK) return {};
    z.resize(zlen);
    chunk(out, "IDAT", z);
    chunk(out, "IEND", {});
    return out;
}

Status write_file(const std::string& path, const std::string& data) {
    return file_write_atomic(path, data);  // a device or FIFO is refused, never replaced
}

Status write_file(const std::string& path, const std::vector<uint8_t>& data) {
    return write_file(path, std::string(data.begin(), data.end()));
}

}  // namespace hkv::eval
