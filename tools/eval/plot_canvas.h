// tools/eval/plot_canvas.h — the drawing surface behind plot.h: one layout drives two back ends, a
// text SVG writer (always built) and cairo (PNG through an image surface; only when CMake found cairo,
// HKV_HAVE_CAIRO). Coordinates are in points, y downwards; text is DejaVu Sans.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "eval/plot_scale.h"
#include "heterokv/status.h"

namespace hkv::eval {

enum class Anchor { kStart, kMiddle, kEnd };

struct Pt {
    double x = 0, y = 0;
};

class Canvas {
public:
    virtual ~Canvas() = default;
    // fill and/or stroke (stroke_width 0: none)
    virtual void rect(double x, double y, double w, double h, Rgb fill, bool filled, Rgb stroke, double stroke_width) = 0;
    // an open line through pts; dash > 0 draws dashes of that length
    virtual void polyline(const std::vector<Pt>& pts, Rgb color, double width, double dash) = 0;
    // a closed, filled polygon with an optional outline (stroke_width 0: none)
    virtual void polygon(const std::vector<Pt>& pts, Rgb fill, Rgb stroke, double stroke_width) = 0;
    virtual void circle(double cx, double cy, double r, Rgb fill, Rgb stroke, double stroke_width) = 0;
    // text with its baseline at y; angle in degrees (counter-clockwise positive, e.g. 90 for a y label)
    virtual void text(double x, double y, const std::string& s, double size, Rgb color, Anchor anchor,
                      double angle = 0.0, bool bold = false) = 0;
};

// The advance width of `s` in points at `size` (cairo's measure of DejaVu Sans when built with cairo;
// otherwise an estimate from DejaVu Sans' average advances, wide enough never to clip).
double text_width(const std::string& s, double size, bool bold = false);

// Splits `s` at spaces into lines no wider than `width` (a word longer than the width stays whole).
std::vector<std::string> wrap_text(const std::string& s, double size, double width, bool bold = false);

// The SVG back end: every call appends an element; finish() returns the document.
class SvgCanvas : public Canvas {
public:
    SvgCanvas(double width, double height);
    void rect(double x, double y, double w, double h, Rgb fill, bool filled, Rgb stroke, double stroke_width) override;
    void polyline(const std::vector<Pt>& pts, Rgb color, double width, double dash) override;
    void polygon(const std::vector<Pt>& pts, Rgb fill, Rgb stroke, double stroke_width) override;
    void circle(double cx, double cy, double r, Rgb fill, Rgb stroke, double stroke_width) override;
    void text(double x, double y, const std::string& s, double size, Rgb color, Anchor anchor, double angle,
              bool bold) override;
    std::string finish();

private:
    std::string out_;
};

// True when PNG output is available (built with cairo).
bool png_available();

// Draws with `draw` on a white cairo image surface of width x height points at `scale` pixels per
// point and returns the PNG bytes (width * scale by height * scale pixels). kUnsupported with the
// remedy when built without cairo; kInternal when cairo reports an error.
Expected<std::vector<uint8_t>> render_png(double width, double height, double scale,
                                          const std::function<void(Canvas&)>& draw);

}  // namespace hkv::eval
