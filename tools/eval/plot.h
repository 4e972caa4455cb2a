// tools/eval/plot.h — result figures: heatmaps (with a viridis colour scale) and line charts (Okabe-Ito
// series, 1-2-5 ticks, log axes, error bars, the legend outside the plot). One layout is drawn by two
// back ends (plot_canvas.h): text SVG always, PNG through cairo when heterokv was built with it.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "heterokv/status.h"

namespace hkv::eval {

// A grid of values in [0, 1] (e.g. retrieval accuracy): rows and columns with labels. Cells show the
// value in percent; the colour scale beside the grid is titled value_label.
struct Heatmap {
    std::string title;
    std::string x_label, y_label;            // x = columns, y = rows
    std::vector<std::string> x_ticks;        // [n_cols]
    std::vector<std::string> y_ticks;        // [n_rows]
    std::vector<std::vector<double>> value;  // [n_rows][n_cols], NaN = no data
    std::string value_label = "accuracy (%)";
};

// Several series of (x, y) points; x on a log axis when log_x (ticks at powers of two when every x is
// one, e.g. budgets in slots; else 1-2-5 per decade).
struct LineChart {
    std::string title, x_label, y_label;
    bool log_x = false;
    double y_min = NAN, y_max = NAN;   // a fixed y range when both are set (e.g. 0..1); else from the data
    double width = 720, height = 440;  // the figure in points (the PNG has scale times as many pixels)
    struct Series {
        std::string name;
        std::vector<double> x, y;
        std::vector<double> y_err = {};            // [x.size()] or empty: error bars y ± y_err[i]
        std::vector<double> y_lo = {}, y_hi = {};  // [x.size()] or empty: an interval; used before y_err
        bool reference = false;                    // a dashed black line without markers (the full cache)
    };
    std::vector<Series> series;
};

std::string heatmap_svg(const Heatmap& h);
std::string line_chart_svg(const LineChart& c);

// The figure's size in points (width, height): a line chart's is its width and height; a heatmap's
// follows its cells and labels.
std::pair<double, double> heatmap_size(const Heatmap& h);

// PNG bytes through cairo, scale pixels per point. kUnsupported (naming the remedy) when heterokv was
// built without cairo.
Expected<std::vector<uint8_t>> heatmap_png(const Heatmap& h, double scale = 2.0);
Expected<std::vector<uint8_t>> line_chart_png(const LineChart& c, double scale = 2.0);

// True when PNG output is available (built with cairo).
bool png_available();

// Writes PREFIX.svg and PREFIX.png. Without cairo only the SVG, with a one-time note on stderr.
Status write_figure(const std::string& prefix, const Heatmap& h);
Status write_figure(const std::string& prefix, const LineChart& c);

// Writes bytes/text to a new file renamed over `path` (heterokv/file_io.h: a device or FIFO target
// is refused); kIoError / kInvalidArgument naming the path on failure.
Status write_file(const std::string& path, const std::string& data);
Status write_file(const std::string& path, const std::vector<uint8_t>& data);

}  // namespace hkv::eval
