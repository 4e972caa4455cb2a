// tools/eval/plot_canvas.cpp — the SVG and cairo back ends of plot.h (see plot_canvas.h).
#include "eval/plot_canvas.h"

#include <cmath>
#include <cstdio>
#include <mutex>

#ifdef HKV_HAVE_CAIRO
#include <cairo.h>
#endif

namespace hkv::eval {

namespace {

constexpr const char* kFontFamily = "DejaVu Sans";

std::string num(double v) {  // coordinates with two decimals at most, no trailing zeros
    char b[32];
    std::snprintf(b, sizeof b, "%.2f", std::fabs(v) < 0.005 ? 0.0 : v);
    std::string s = b;
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
    return s;
}

std::string esc(const std::string& s) {
    std::string o;
    for (char c : s) {
        if (c == '<') o += "&lt;";
        else if (c == '>') o += "&gt;";
        else if (c == '&') o += "&amp;";
        else if (c == '\'') o += "&apos;";
        else if (c == '"') o += "&quot;";
        else o += c;
    }
    return o;
}

// DejaVu Sans advances in em, by character class (for builds without cairo; rounded up).
double estimate_width(const std::string& s, double size, bool bold) {
    double em = 0.0;
    for (size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if ((c & 0xC0) == 0x80) continue;  // UTF-8 continuation byte
        if (c >= 0x80) em += 0.70;
        else if (c == ' ') em += 0.33;
        else if (c >= '0' && c <= '9') em += 0.64;
        else if (c >= 'A' && c <= 'Z') em += 0.72;
        else if (c == 'i' || c == 'l' || c == 'j' || c == '.' || c == ',' || c == ':' || c == ';' || c == '\'' ||
                 c == '|' || c == '!')
            em += 0.30;
        else if (c == 'm' || c == 'w' || c == '%' || c == 'M' || c == 'W') em += 0.98;
        else if (c == '(' || c == ')' || c == '[' || c == ']' || c == 'f' || c == 't' || c == 'r' || c == '-')
            em += 0.42;
        else em += 0.62;
    }
    return em * size * (bold ? 1.1 : 1.0);
}

#ifdef HKV_HAVE_CAIRO
void set_font_options(cairo_t* cr) {
    cairo_font_options_t* fo = cairo_font_options_create();
    cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF);  // widths independent of the pixel scale
    cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_NONE);
    cairo_font_options_set_antialias(fo, CAIRO_ANTIALIAS_GRAY);
    cairo_set_font_options(cr, fo);
    cairo_font_options_destroy(fo);
}

void select_font(cairo_t* cr, double size, bool bold) {
    cairo_select_font_face(cr, kFontFamily, CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

void source(cairo_t* cr, Rgb c) { cairo_set_source_rgb(cr, c.r, c.g, c.b); }

class CairoCanvas : public Canvas {
public:
    explicit CairoCanvas(cairo_t* cr) : cr_(cr) {}
    void rect(double x, double y, double w, double h, Rgb fill, bool filled, Rgb stroke, double sw) override {
        cairo_rectangle(cr_, x, y, w, h);
        finish_path(filled, fill, stroke, sw);
    }
    void polyline(const std::vector<Pt>& pts, Rgb color, double width, double dash) override {
        if (pts.size() < 2) return;
        cairo_move_to(cr_, pts[0].x, pts[0].y);
        for (size_t i = 1; i < pts.size(); ++i) cairo_line_to(cr_, pts[i].x, pts[i].y);
        if (dash > 0) cairo_set_dash(cr_, &dash, 1, 0.0);
        source(cr_, color);
        cairo_set_line_width(cr_, width);
        cairo_set_line_join(cr_, CAIRO_LINE_JOIN_ROUND);
        cairo_stroke(cr_);
        cairo_set_dash(cr_, nullptr, 0, 0.0);
    }
    void polygon(const std::vector<Pt>& pts, Rgb fill, Rgb stroke, double sw) override {
        if (pts.size() < 3) return;
        cairo_move_to(cr_, pts[0].x, pts[0].y);
        for (size_t i = 1; i < pts.size(); ++i) cairo_line_to(cr_, pts[i].x, pts[i].y);
        cairo_close_path(cr_);
        finish_path(true, fill, stroke, sw);
    }
    void circle(double cx, double cy, double r, Rgb fill, Rgb stroke, double sw) override {
        cairo_new_sub_path(cr_);
        cairo_arc(cr_, cx, cy, r, 0.0, 2 * M_PI);
        finish_path(true, fill, stroke, sw);
    }
    void text(double x, double y, const std::string& s, double size, Rgb color, Anchor anchor, double angle,
              bool bold) override {
        select_font(cr_, size, bold);
        cairo_text_extents_t e;
        cairo_text_extents(cr_, s.c_str(), &e);
        const double dx = anchor == Anchor::kStart ? 0.0 : anchor == Anchor::kMiddle ? -e.x_advance / 2 : -e.x_advance;
        cairo_save(cr_);
        cairo_translate(cr_, x, y);
        cairo_rotate(cr_, -angle * M_PI / 180.0);
        cairo_move_to(cr_, dx, 0.0);
        source(cr_, color);
        cairo_show_text(cr_, s.c_str());
        cairo_restore(cr_);
    }

private:
    void finish_path(bool filled, Rgb fill, Rgb stroke, double sw) {
        if (filled) {
            source(cr_, fill);
            if (sw > 0) cairo_fill_preserve(cr_);
            else cairo_fill(cr_);
        }
        if (sw > 0) {
            source(cr_, stroke);
            cairo_set_line_width(cr_, sw);
            cairo_stroke(cr_);
        } else if (!filled) {
            cairo_new_path(cr_);
        }
    }
    cairo_t* cr_;
};

cairo_status_t append_png(void* closure, const unsigned char* data, unsigned int length) {
    auto* out = static_cast<std::vector<uint8_t>*>(closure);
    out->insert(out->end(), data, data + length);
    return CAIRO_STATUS_SUCCESS;
}
#endif

}  // namespace

double text_width(const std::string& s, double size, bool bold) {
#ifdef HKV_HAVE_CAIRO
    static std::mutex mu;
    static cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 1, 1);
    static cairo_t* cr = [] {
        cairo_t* c = cairo_create(surface);
        set_font_options(c);
        return c;
    }();
    std::lock_guard<std::mutex> lock(mu);
    select_font(cr, size, bold);
    cairo_text_extents_t e;
    cairo_text_extents(cr, s.c_str(), &e);
    if (cairo_status(cr) == CAIRO_STATUS_SUCCESS) return e.x_advance;
#endif
    return estimate_width(s, size, bold);
}

std::vector<std::string> wrap_text(const std::string& s, double size, double width, bool bold) {
    std::vector<std::string> lines;
    std::string line;
    size_t pos = 0;
    while (pos <= s.size()) {
        size_t sp = s.find(' ', pos);
        if (sp == std::string::npos) sp = s.size();
        const std::string word = s.substr(pos, sp - pos);
        const std::string joined = line.empty() ? word : line + " " + word;
        if (!line.empty() && text_width(joined, size, bold) > width) {
            lines.push_back(line);
            line = word;
        } else {
            line = joined;
        }
        pos = sp + 1;
    }
    if (!line.empty() || lines.empty()) lines.push_back(line);
    return lines;
}

SvgCanvas::SvgCanvas(double width, double height) {
    out_ = "<svg xmlns='http://www.w3.org/2000/svg' width='" + num(width) + "' height='" + num(height) +
           "' viewBox='0 0 " + num(width) + " " + num(height) + "' font-family='" + kFontFamily +
           ", Verdana, sans-serif'>\n<rect width='100%' height='100%' fill='white'/>\n";
}

void SvgCanvas::rect(double x, double y, double w, double h, Rgb fill, bool filled, Rgb stroke, double sw) {
    out_ += "<rect x='" + num(x) + "' y='" + num(y) + "' width='" + num(w) + "' height='" + num(h) + "' fill='" +
            (filled ? hex_color(fill) : std::string("none")) + "'";
    if (sw > 0) out_ += " stroke='" + hex_color(stroke) + "' stroke-width='" + num(sw) + "'";
    out_ += "/>\n";
}

void SvgCanvas::polyline(const std::vector<Pt>& pts, Rgb color, double width, double dash) {
    if (pts.size() < 2) return;
    out_ += "<polyline fill='none' stroke='" + hex_color(color) + "' stroke-width='" + num(width) +
            "' stroke-linejoin='round'";
    if (dash > 0) out_ += " stroke-dasharray='" + num(dash) + "'";
    out_ += " points='";
    for (const Pt& p : pts) out_ += num(p.x) + "," + num(p.y) + " ";
    out_.back() = '\'';
    out_ += "/>\n";
}

void SvgCanvas::polygon(const std::vector<Pt>& pts, Rgb fill, Rgb stroke, double sw) {
    if (pts.size() < 3) return;
    out_ += "<polygon fill='" + hex_color(fill) + "'";
    if (sw > 0) out_ += " stroke='" + hex_color(stroke) + "' stroke-width='" + num(sw) + "'";
    out_ += " points='";
    for (const Pt& p : pts) out_ += num(p.x) + "," + num(p.y) + " ";
    out_.back() = '\'';
    out_ += "/>\n";
}

void SvgCanvas::circle(double cx, double cy, double r, Rgb fill, Rgb stroke, double sw) {
    out_ += "<circle cx='" + num(cx) + "' cy='" + num(cy) + "' r='" + num(r) + "' fill='" + hex_color(fill) + "'";
    if (sw > 0) out_ += " stroke='" + hex_color(stroke) + "' stroke-width='" + num(sw) + "'";
    out_ += "/>\n";
}

void SvgCanvas::text(double x, double y, const std::string& s, double size, Rgb color, Anchor anchor, double angle,
                     bool bold) {
    out_ += "<text x='" + num(x) + "' y='" + num(y) + "' font-size='" + num(size) + "'";
    if (anchor != Anchor::kStart) out_ += anchor == Anchor::kMiddle ? " text-anchor='middle'" : " text-anchor='end'";
    if (bold) out_ += " font-weight='bold'";
    if (color.r != 0 || color.g != 0 || color.b != 0) out_ += " fill='" + hex_color(color) + "'";
    if (angle != 0) out_ += " transform='rotate(" + num(-angle) + " " + num(x) + " " + num(y) + ")'";
    out_ += ">";
    out_ += esc(s);
    out_ += "</text>\n";
}

std::string SvgCanvas::finish() { return out_ + "</svg>\n"; }

bool png_available() {
#ifdef HKV_HAVE_CAIRO
    return true;
#else
    return false;
#endif
}

Expected<std::vector<uint8_t>> render_png(double width, double height, double scale,
                                          const std::function<void(Canvas&)>& draw) {
#ifdef HKV_HAVE_CAIRO
    const int w = int(std::lround(width * scale)), h = int(std::lround(height * scale));
    if (w <= 0 || h <= 0 || w > 20000 || h > 20000) {
        return Status::invalid("plot: a %d x %d pixel figure is out of range", w, h);
    }
    cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    cairo_t* cr = cairo_create(surface);
    set_font_options(cr);
    cairo_scale(cr, scale, scale);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    CairoCanvas canvas(cr);
    draw(canvas);
    std::vector<uint8_t> png;
    cairo_status_t st = cairo_status(cr);
    if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_write_to_png_stream(surface, append_png, &png);
    cairo_destroy(cr);
    cairo_surface_destroy(surface);
    if (st != CAIRO_STATUS_SUCCESS) return Status::internal("plot: cairo: %s", cairo_status_to_string(st));
    return png;
#else
    (void)width, (void)height, (void)scale, (void)draw;
    return Status::unsupported("PNG figures need cairo, and heterokv was built without it (install libcairo2-dev, "
                               "then re-run cmake); the SVG files are written");
#endif
}

}  // namespace hkv::eval
