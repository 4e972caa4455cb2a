// tools/eval/plot.cpp — layout and drawing of heatmaps and line charts (see plot.h); the back ends
// are in plot_canvas.cpp, ticks and colours in plot_scale.cpp.
#include "eval/plot.h"

#include <algorithm>
#include <cstdio>

#include "eval/plot_canvas.h"
#include "heterokv/file_io.h"

namespace hkv::eval {
namespace {

constexpr Rgb kInk{0.10, 0.10, 0.10};
constexpr Rgb kFrame{0.25, 0.25, 0.25};
constexpr Rgb kGridLine{0.88, 0.88, 0.88};
constexpr Rgb kWhite{1, 1, 1};
constexpr Rgb kNoData{0.86, 0.86, 0.86};
constexpr Rgb kReference{0.35, 0.35, 0.35};  // dashed, without markers (the full cache)
constexpr double kTitle = 14, kLabel = 12.5, kTick = 11, kLegend = 11.5, kMargin = 10;

void title_block(Canvas& cv, const std::vector<std::string>& lines, double cx) {
    for (size_t i = 0; i < lines.size(); ++i) {
        cv.text(cx, kMargin + kTitle + double(i) * (kTitle + 4), lines[i], kTitle, kInk, Anchor::kMiddle, 0, true);
    }
}

double title_height(const std::vector<std::string>& lines) {
    return lines.size() == 1 && lines[0].empty() ? kMargin : kMargin + double(lines.size()) * (kTitle + 4) + 8;
}

// ---- heatmap ----

struct HeatLayout {
    double W = 0, H = 0, left = 0, top = 0, cw = 0, ch = 28;
    bool rotate = false;
    double bar_x = 0, bar_h = 0, shift = 0;
    std::vector<std::string> title;
    std::vector<double> bar_ticks;
};

constexpr double kRotate = 40.0;  // degrees of rotated column labels

HeatLayout heat_layout(const Heatmap& h) {
    HeatLayout L;
    const size_t rows = h.y_ticks.size(), cols = h.x_ticks.size();
    double xw = 0, yw = 0;
    for (const std::string& t : h.x_ticks) xw = std::max(xw, text_width(t, kTick));
    for (const std::string& t : h.y_ticks) yw = std::max(yw, text_width(t, kTick));
    L.cw = std::clamp(xw + 14, 46.0, 84.0);
    L.rotate = xw + 14 > 84.0;
    const double sn = std::sin(kRotate * M_PI / 180), cs = std::cos(kRotate * M_PI / 180);
    const double x_tick_h = L.rotate ? xw * sn + kTick * cs + 6 : kTick + 6;
    const double y_label_w = h.y_label.empty() ? 0 : kLabel + 8;
    L.left = kMargin + y_label_w + yw + 8;
    if (L.rotate) L.left = std::max(L.left, kMargin + xw * cs - L.cw / 2);  // the first rotated label
    L.bar_h = std::max(L.ch * double(rows), 110.0);
    L.bar_ticks = {0, 20, 40, 60, 80, 100};
    double bar_tw = 0;
    for (double t : L.bar_ticks) bar_tw = std::max(bar_tw, text_width(tick_label(t, 20), kTick - 1));
    const double grid_right = L.left + L.cw * double(cols);
    L.bar_x = grid_right + 18;
    const double right = L.bar_x + 14 + 4 + bar_tw + 8 + (h.value_label.empty() ? 0 : kLabel + 4) + kMargin;
    const double x_label_w = text_width(h.x_label, kLabel);
    // at least wide enough for the title on one line, up to 520 points (beyond that it wraps)
    const double title_w = std::min(text_width(h.title, kTitle, true) + 2 * kMargin, 520.0);
    L.W = std::max({right, L.left + x_label_w + kMargin, title_w, 320.0});
    L.shift = (L.W - right) / 2;  // a narrow grid is centred under a wide title
    if (L.left + L.shift + x_label_w / 2 > L.W - kMargin) L.shift = 0;
    L.left += L.shift, L.bar_x += L.shift;
    L.title = wrap_text(h.title, kTitle, L.W - 2 * kMargin, true);
    L.top = title_height(L.title);
    const double grid_bottom = L.top + L.ch * double(rows);
    L.H = std::max(grid_bottom + 4 + x_tick_h + (h.x_label.empty() ? 0 : kLabel + 8), L.top + L.bar_h) + kMargin;
    return L;
}

void draw_heatmap(Canvas& cv, const Heatmap& h, const HeatLayout& L) {
    const size_t rows = h.y_ticks.size(), cols = h.x_ticks.size();
    title_block(cv, L.title, L.W / 2);
    for (size_t r = 0; r < rows; ++r) {
        for (size_t c = 0; c < cols; ++c) {
            const double v = r < h.value.size() && c < h.value[r].size() ? h.value[r][c] : NAN;
            const double x = L.left + double(c) * L.cw, y = L.top + double(r) * L.ch;
            const Rgb fill = std::isnan(v) ? kNoData : viridis(v);
            cv.rect(x, y, L.cw, L.ch, fill, true, kWhite, 1.0);
            char b[16];
            std::snprintf(b, sizeof b, "%d", int(std::lround(100 * v)));
            const Rgb ink = std::isnan(v) ? Rgb{0.4, 0.4, 0.4} : luminance(fill) < 0.5 ? kWhite : kInk;
            cv.text(x + L.cw / 2, y + L.ch / 2 + kTick * 0.36, std::isnan(v) ? "n/a" : b, kTick, ink, Anchor::kMiddle);
        }
        cv.text(L.left - 6, L.top + (double(r) + 0.5) * L.ch + kTick * 0.36, h.y_ticks[r], kTick, kInk, Anchor::kEnd);
    }
    const double grid_bottom = L.top + L.ch * double(rows);
    double tick_bottom = grid_bottom + 4 + kTick;
    for (size_t c = 0; c < cols; ++c) {
        const double cx = L.left + (double(c) + 0.5) * L.cw;
        if (L.rotate) {
            cv.text(cx + 3, grid_bottom + 8, h.x_ticks[c], kTick, kInk, Anchor::kEnd, kRotate);
            tick_bottom = std::max(tick_bottom, grid_bottom + 8 + text_width(h.x_ticks[c], kTick) *
                                                                      std::sin(kRotate * M_PI / 180));
        } else {
            cv.text(cx, grid_bottom + 4 + kTick, h.x_ticks[c], kTick, kInk, Anchor::kMiddle);
        }
    }
    if (!h.x_label.empty()) {
        const double grid_mid = L.left + L.cw * double(cols) / 2;
        const double w = text_width(h.x_label, kLabel);
        const double cx = std::clamp(grid_mid, kMargin + w / 2, L.W - kMargin - w / 2);
        cv.text(cx, tick_bottom + 8 + kLabel, h.x_label, kLabel, kInk, Anchor::kMiddle);
    }
    if (!h.y_label.empty()) {
        cv.text(L.shift + kMargin + kLabel, L.top + L.ch * double(rows) / 2, h.y_label, kLabel, kInk, Anchor::kMiddle, 90);
    }
    // colour scale: 0 at the bottom, 100 at the top
    const int steps = 64;
    for (int i = 0; i < steps; ++i) {
        const double y = L.top + L.bar_h * (1.0 - double(i + 1) / steps);
        cv.rect(L.bar_x, y, 14, L.bar_h / steps + 0.3, viridis((i + 0.5) / steps), true, kWhite, 0);
    }
    cv.rect(L.bar_x, L.top, 14, L.bar_h, kWhite, false, kFrame, 0.8);
    double tw = 0;
    for (double t : L.bar_ticks) {
        const double y = L.top + L.bar_h * (1.0 - t / 100.0);
        cv.polyline({{L.bar_x + 14, y}, {L.bar_x + 18, y}}, kFrame, 0.8, 0);
        const std::string s = tick_label(t, 20);
        cv.text(L.bar_x + 20, y + (kTick - 1) * 0.36, s, kTick - 1, kInk, Anchor::kStart);
        tw = std::max(tw, text_width(s, kTick - 1));
    }
    if (!h.value_label.empty()) {
        cv.text(L.bar_x + 20 + tw + 6 + kLabel * 0.8, L.top + L.bar_h / 2, h.value_label, kLabel, kInk, Anchor::kMiddle,
                -90);
    }
}

// ---- line chart ----

struct Axis {
    double lo = 0, hi = 1;  // the drawn range, in transformed units (log when log)
    bool log = false;
    std::vector<double> ticks;
    std::vector<std::string> labels;
    double t(double v) const { return log ? std::log(v) : v; }
    double map(double v, double a, double b) const { return a + (b - a) * (t(v) - lo) / (hi - lo); }
};

double lo_of(const LineChart::Series& s, size_t i) {
    if (i < s.y_lo.size() && std::isfinite(s.y_lo[i])) return s.y_lo[i];
    if (i < s.y_err.size() && std::isfinite(s.y_err[i])) return s.y[i] - s.y_err[i];
    return s.y[i];
}
double hi_of(const LineChart::Series& s, size_t i) {
    if (i < s.y_hi.size() && std::isfinite(s.y_hi[i])) return s.y_hi[i];
    if (i < s.y_err.size() && std::isfinite(s.y_err[i])) return s.y[i] + s.y_err[i];
    return s.y[i];
}

void axes(const LineChart& c, Axis* xa, Axis* ya) {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    std::vector<double> xs;
    const bool log = c.log_x;
    for (const auto& s : c.series) {
        for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
            if (!std::isfinite(s.y[i]) || !std::isfinite(s.x[i]) || (log && !(s.x[i] > 0))) continue;
            xs.push_back(s.x[i]);
            x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
            y0 = std::min(y0, lo_of(s, i)), y1 = std::max(y1, hi_of(s, i));
        }
    }
    if (!std::isfinite(x0)) x0 = 1, x1 = 2, y0 = 0, y1 = 1;
    xa->log = log;
    if (x0 > 0 && x1 < x0 * 1.1) {  // points at (nearly) one x, e.g. policies matched to equal bytes:
        const double mid = std::sqrt(x0 * x1);  // show them together on a +-6% axis, not spread over it
        x0 = std::min(x0, mid / 1.06), x1 = std::max(x1, mid * 1.06);
    }
    if (log) {
        if (x1 == x0) x0 /= 2, x1 *= 2;
        xa->ticks = log_ticks(x0, x1, all_powers_of_two(xs));
        const double pad = 0.05 * (std::log(x1) - std::log(x0));
        xa->lo = std::log(x0) - pad, xa->hi = std::log(x1) + pad;
    } else {
        xa->ticks = nice_ticks(x0, x1, 6);
        const double pad = 0.03 * (xa->ticks.back() - xa->ticks.front());
        xa->lo = xa->ticks.front() - pad, xa->hi = xa->ticks.back() + pad;
    }
    xa->labels = tick_labels(xa->ticks, log);
    if (std::isfinite(c.y_min) && std::isfinite(c.y_max) && c.y_max > c.y_min) {
        y0 = std::min(y0, c.y_min), y1 = std::max(y1, c.y_max);
        ya->ticks = nice_ticks(c.y_min, c.y_max, 5);
        std::erase_if(ya->ticks, [&](double v) { return v < y0 - 1e-9 || v > y1 + 1e-9; });
    } else {
        if (y0 > 0 && y0 < 0.5 * y1) y0 = 0;
        ya->ticks = nice_ticks(y0, y1, 5);
        y0 = ya->ticks.front(), y1 = ya->ticks.back();
    }
    const double pad = 0.04 * (y1 - y0);
    ya->lo = y0 - pad, ya->hi = y1 + pad;
    ya->labels = tick_labels(ya->ticks, false);
}

struct LineLayout {
    double W = 0, H = 0, px0 = 0, px1 = 0, py0 = 0, py1 = 0;  // plot area [px0, px1] x [py0, py1]
    std::vector<std::string> title;
    Axis xa, ya;
    bool legend_right = true;
    double entry_w = 0, legend_x = 0, legend_y = 0;
    size_t legend_cols = 1;
    double y_label_size = kLabel;
};

constexpr double kEntryH = 17, kSample = 26;

LineLayout line_layout(const LineChart& c) {
    LineLayout L;
    L.W = c.width, L.H = c.height;
    axes(c, &L.xa, &L.ya);
    L.title = wrap_text(c.title, kTitle, L.W - 2 * kMargin, true);
    double name_w = 0;
    for (const auto& s : c.series) name_w = std::max(name_w, text_width(s.name, kLegend));
    L.entry_w = kSample + 6 + name_w + 14;
    L.legend_right = L.entry_w <= 0.3 * L.W;
    double legend_below = 0;
    if (!L.legend_right) {
        L.legend_cols = std::max<size_t>(1, size_t((L.W - 2 * kMargin) / L.entry_w));
        legend_below = std::ceil(double(c.series.size()) / double(L.legend_cols)) * kEntryH + 8;
    }
    double yw = 0;
    for (const std::string& s : L.ya.labels) yw = std::max(yw, text_width(s, kTick));
    L.px0 = kMargin + (c.y_label.empty() ? 0 : kLabel + 8) + yw + 8;
    L.px1 = L.W - kMargin - (L.legend_right ? L.entry_w + 8 : 0);
    // the last x label centred on its tick must fit
    if (!L.xa.labels.empty()) {
        const double last = L.xa.map(L.xa.ticks.back(), L.px0, L.px1), w = text_width(L.xa.labels.back(), kTick);
        if (!L.legend_right && last + w / 2 > L.W - kMargin) L.px1 -= last + w / 2 - (L.W - kMargin);
    }
    L.py0 = title_height(L.title);
    L.py1 = L.H - kMargin - legend_below - (c.x_label.empty() ? 0 : kLabel + 8) - (kTick + 8);
    L.legend_x = L.legend_right ? L.px1 + 12 : kMargin;
    L.legend_y = L.legend_right ? L.py0 + 4 : L.H - kMargin - legend_below + 8;
    while (L.y_label_size > 8 && text_width(c.y_label, L.y_label_size) > L.py1 - L.py0) L.y_label_size -= 0.5;
    return L;
}

// Marker k (k mod 6: circle, square, triangle, diamond, down triangle, hexagon) at (x, y).
void marker(Canvas& cv, size_t k, double x, double y, Rgb col) {
    const double r = 3.8;
    std::vector<Pt> p;
    switch (k % 6) {
        case 0: cv.circle(x, y, r, col, kWhite, 0.8); return;
        case 1: p = {{x - r * 0.85, y - r * 0.85}, {x + r * 0.85, y - r * 0.85}, {x + r * 0.85, y + r * 0.85}, {x - r * 0.85, y + r * 0.85}}; break;
        case 2: p = {{x, y - r * 1.15}, {x + r, y + r * 0.75}, {x - r, y + r * 0.75}}; break;
        case 3: p = {{x, y - r * 1.2}, {x + r, y}, {x, y + r * 1.2}, {x - r, y}}; break;
        case 4: p = {{x, y + r * 1.15}, {x + r, y - r * 0.75}, {x - r, y - r * 0.75}}; break;
        default:
            for (int i = 0; i < 6; ++i) p.push_back({x + r * std::cos(i * M_PI / 3), y + r * std::sin(i * M_PI / 3)});
    }
    cv.polygon(p, col, kWhite, 0.8);
}

void draw_line_chart(Canvas& cv, const LineChart& c, const LineLayout& L) {
    title_block(cv, L.title, L.W / 2);
    // grid and ticks
    for (size_t i = 0; i < L.ya.ticks.size(); ++i) {
        const double y = L.ya.map(L.ya.ticks[i], L.py1, L.py0);
        cv.polyline({{L.px0, y}, {L.px1, y}}, kGridLine, 0.8, 0);
        cv.polyline({{L.px0 - 4, y}, {L.px0, y}}, kFrame, 0.8, 0);
        cv.text(L.px0 - 6, y + kTick * 0.36, L.ya.labels[i], kTick, kInk, Anchor::kEnd);
    }
    double last_right = -INFINITY;
    for (size_t i = 0; i < L.xa.ticks.size(); ++i) {
        const double x = L.xa.map(L.xa.ticks[i], L.px0, L.px1);
        cv.polyline({{x, L.py0}, {x, L.py1}}, kGridLine, 0.8, 0);
        cv.polyline({{x, L.py1}, {x, L.py1 + 4}}, kFrame, 0.8, 0);
        const double w = text_width(L.xa.labels[i], kTick);
        if (x - w / 2 < last_right + 6) continue;  // a label that would touch the previous one
        cv.text(x, L.py1 + 6 + kTick, L.xa.labels[i], kTick, kInk, Anchor::kMiddle);
        last_right = x + w / 2;
    }
    cv.rect(L.px0, L.py0, L.px1 - L.px0, L.py1 - L.py0, kWhite, false, kFrame, 0.9);
    // points in pixels; exactly coinciding markers of different series are spread sideways (dodged)
    struct P {
        double x, y, lo, hi;
    };
    std::vector<std::vector<P>> pts(c.series.size());
    std::vector<std::pair<double, double>> seen;
    for (size_t si = 0; si < c.series.size(); ++si) {
        const auto& s = c.series[si];
        for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
            if (!std::isfinite(s.y[i]) || !std::isfinite(s.x[i]) || (L.xa.log && !(s.x[i] > 0))) continue;
            P p{L.xa.map(s.x[i], L.px0, L.px1), L.ya.map(s.y[i], L.py1, L.py0), L.ya.map(lo_of(s, i), L.py1, L.py0),
                L.ya.map(hi_of(s, i), L.py1, L.py0)};
            pts[si].push_back(p);
        }
        std::sort(pts[si].begin(), pts[si].end(), [](const P& a, const P& b) { return a.x < b.x; });  // the line runs left to right
    }
    // with error bars every series is shifted by its own offset (the bars would cover each other);
    // without, only markers that coincide exactly
    bool bars = false;
    std::vector<size_t> data_series;
    for (size_t si = 0; si < c.series.size(); ++si) {
        const auto& s = c.series[si];
        if (s.reference) continue;
        data_series.push_back(si);
        bars = bars || !s.y_err.empty() || !s.y_lo.empty();
    }
    for (size_t k = 0; k < data_series.size(); ++k) {
        for (P& p : pts[data_series[k]]) {
            if (bars) {
                p.x += (double(k) - double(data_series.size() - 1) / 2) * std::min(6.0, 36.0 / double(data_series.size()));
                continue;
            }
            size_t same = 0;
            for (const auto& q : seen) same += std::fabs(q.first - p.x) < 1.0 && std::fabs(q.second - p.y) < 1.0;
            seen.push_back({p.x, p.y});
            p.x += same == 0 ? 0.0 : (same % 2 ? 1.0 : -1.0) * 4.5 * double((same + 1) / 2);
        }
    }
    // data series first, then reference lines on top (a dashed line stays visible over a series equal to it);
    // the legend keeps the given order
    std::vector<size_t> order = data_series, color_of(c.series.size(), 0);
    for (size_t si = 0; si < c.series.size(); ++si) {
        if (c.series[si].reference) order.push_back(si);
    }
    for (size_t k = 0; k < data_series.size(); ++k) color_of[data_series[k]] = k;
    for (size_t si : order) {
        const auto& s = c.series[si];
        const size_t k = color_of[si];
        const Rgb col = s.reference ? kReference : series_color(k);
        std::vector<Pt> line;
        for (const P& p : pts[si]) line.push_back({p.x, p.y});
        cv.polyline(line, col, s.reference ? 1.4 : 1.8, s.reference ? 5.0 : 0.0);
        if (!s.reference) {
            for (const P& p : pts[si]) {
                if (p.hi < p.y - 0.5 || p.lo > p.y + 0.5) {  // an interval wider than the marker
                    cv.polyline({{p.x, p.lo}, {p.x, p.hi}}, col, 1.1, 0);
                    cv.polyline({{p.x - 3, p.lo}, {p.x + 3, p.lo}}, col, 1.1, 0);
                    cv.polyline({{p.x - 3, p.hi}, {p.x + 3, p.hi}}, col, 1.1, 0);
                }
            }
            for (const P& p : pts[si]) marker(cv, k, p.x, p.y, col);
        }
    }
    for (size_t si = 0; si < c.series.size(); ++si) {  // legend
        const auto& s = c.series[si];
        const size_t k = color_of[si];
        const Rgb col = s.reference ? kReference : series_color(k);
        const size_t row = L.legend_right ? si : si / L.legend_cols, col_i = L.legend_right ? 0 : si % L.legend_cols;
        const double lx = L.legend_x + double(col_i) * L.entry_w, ly = L.legend_y + double(row) * kEntryH + kEntryH / 2;
        cv.polyline({{lx, ly}, {lx + kSample, ly}}, col, s.reference ? 1.4 : 1.8, s.reference ? 5.0 : 0.0);
        if (!s.reference) marker(cv, k, lx + kSample / 2, ly, col);
        cv.text(lx + kSample + 6, ly + kLegend * 0.36, s.name, kLegend, kInk, Anchor::kStart);
    }
    if (!c.x_label.empty()) {
        const double w = text_width(c.x_label, kLabel);
        const double cx = std::clamp((L.px0 + L.px1) / 2, kMargin + w / 2, L.W - kMargin - w / 2);
        cv.text(cx, L.py1 + 6 + kTick + 8 + kLabel, c.x_label, kLabel, kInk, Anchor::kMiddle);
    }
    if (!c.y_label.empty()) {
        cv.text(kMargin + L.y_label_size, (L.py0 + L.py1) / 2, c.y_label, L.y_label_size, kInk, Anchor::kMiddle, 90);
    }
}

void note_no_png() {
    static bool said = false;
    if (said) return;
    said = true;
    std::fprintf(stderr, "heterokv: note: built without cairo, so figures are written as SVG only (install "
                         "libcairo2-dev and re-run cmake for PNG)\n");
}

template <typename Fig>
Status write_both(const std::string& prefix, const Fig& fig, const std::string& svg,
                  Expected<std::vector<uint8_t>> (*png)(const Fig&, double)) {
    Status st = write_file(prefix + ".svg", svg);
    if (!st.ok()) return st;
    if (!png_available()) {
        note_no_png();
        return Status::ok_status();
    }
    auto bytes = png(fig, 2.0);
    if (!bytes.ok()) return bytes.status();
    return write_file(prefix + ".png", *bytes);
}

}  // namespace

std::pair<double, double> heatmap_size(const Heatmap& h) {
    const HeatLayout L = heat_layout(h);
    return {L.W, L.H};
}

namespace {
template <typename Layout>
std::string svg_of(const Layout& L, const std::function<void(Canvas&)>& draw) {
    SvgCanvas cv(L.W, L.H);
    draw(cv);
    return cv.finish();
}
}  // namespace

std::string heatmap_svg(const Heatmap& h) {
    const HeatLayout L = heat_layout(h);
    return svg_of(L, [&](Canvas& cv) { draw_heatmap(cv, h, L); });
}

Expected<std::vector<uint8_t>> heatmap_png(const Heatmap& h, double scale) {
    const HeatLayout L = heat_layout(h);
    return render_png(L.W, L.H, scale, [&](Canvas& cv) { draw_heatmap(cv, h, L); });
}

std::string line_chart_svg(const LineChart& c) {
    const LineLayout L = line_layout(c);
    return svg_of(L, [&](Canvas& cv) { draw_line_chart(cv, c, L); });
}

Expected<std::vector<uint8_t>> line_chart_png(const LineChart& c, double scale) {
    if (!(c.width >= 200 && c.height >= 150)) {
        return Status::invalid("plot: a %g x %g point line chart is too small (at least 200 x 150)", c.width, c.height);
    }
    const LineLayout L = line_layout(c);
    return render_png(L.W, L.H, scale, [&](Canvas& cv) { draw_line_chart(cv, c, L); });
}

Status write_figure(const std::string& prefix, const Heatmap& h) {
    return write_both<Heatmap>(prefix, h, heatmap_svg(h), heatmap_png);
}

Status write_figure(const std::string& prefix, const LineChart& c) {
    return write_both<LineChart>(prefix, c, line_chart_svg(c), line_chart_png);
}

Status write_file(const std::string& path, const std::string& data) {
    return file_write_atomic(path, data);  // a device or FIFO is refused, never replaced
}

Status write_file(const std::string& path, const std::vector<uint8_t>& data) {
    return write_file(path, std::string(data.begin(), data.end()));
}

}  // namespace hkv::eval
