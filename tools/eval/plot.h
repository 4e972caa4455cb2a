// tools/eval/plot.h — result pictures without dependencies: heatmaps and line charts as SVG, and
// the same pictures rasterized to PNG (built-in 5x7 bitmap font, zlib-compressed PNG).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "heterokv/status.h"

namespace hkv::eval {

// A grid of values in [0, 1] (e.g. retrieval accuracy): rows and columns with labels.
struct Heatmap {
    std::string title;
    std::string x_label, y_label;            // x = columns, y = rows
    std::vector<std::string> x_ticks;        // [n_cols]
    std::vector<std::string> y_ticks;        // [n_rows]
    std::vector<std::vector<double>> value;  // [n_rows][n_cols], NaN = no data
};

// Several series of (x, y) points; x on a log2 axis when log_x.
struct LineChart {
    std::string title, x_label, y_label;
    bool log_x = false;
    struct Series {
        std::string name;
        std::vector<double> x, y;
        std::vector<double> y_err = {};  // [x.size()] or empty: error bars y ± y_err[i]
    };
    std::vector<Series> series;
};

std::string heatmap_svg(const Heatmap& h);
std::string line_chart_svg(const LineChart& c);

// RGB raster, row-major, 3 bytes per pixel.
struct Image {
    int32_t width = 0, height = 0;
    std::vector<uint8_t> rgb;  // [height, width, 3]
};
Image heatmap_image(const Heatmap& h);
Image line_chart_image(const LineChart& c);
// Encodes a PNG (8-bit RGB, zlib deflate). Empty on a zlib failure.
std::vector<uint8_t> png_encode(const Image& img);

// Writes bytes/text to a new file renamed over `path` (heterokv/file_io.h: a device or FIFO target
// is refused); kIoError / kInvalidArgument naming the path on failure.
Status write_file(const std::string& path, const std::string& data);
Status write_file(const std::string& path, const std::vector<uint8_t>& data);

}  // namespace hkv::eval
