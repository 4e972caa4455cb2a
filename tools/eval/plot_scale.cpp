// tools/eval/plot_scale.cpp — ticks and palettes (see plot_scale.h).
#include "eval/plot_scale.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace hkv::eval {

namespace {

// Okabe & Ito (2008), "Color Universal Design": the eight colours, reordered so the first ones contrast
// most on white (yellow last).
const Rgb kOkabeIto[] = {
    {0x00 / 255.0, 0x72 / 255.0, 0xB2 / 255.0},  // blue
    {0xD5 / 255.0, 0x5E / 255.0, 0x00 / 255.0},  // vermillion
    {0x00 / 255.0, 0x9E / 255.0, 0x73 / 255.0},  // bluish green
    {0xE6 / 255.0, 0x9F / 255.0, 0x00 / 255.0},  // orange
    {0xCC / 255.0, 0x79 / 255.0, 0xA7 / 255.0},  // reddish purple
    {0x56 / 255.0, 0xB4 / 255.0, 0xE9 / 255.0},  // sky blue
    {0x00 / 255.0, 0x00 / 255.0, 0x00 / 255.0},  // black
    {0xF0 / 255.0, 0xE4 / 255.0, 0x42 / 255.0},  // yellow (last: weakest on white)
};

// Viridis sampled at ten equally spaced points (0, 1/9, ..., 1).
const unsigned kViridis[10] = {0x440154, 0x482878, 0x3E4A89, 0x31688E, 0x26828E,
                               0x1F9E89, 0x35B779, 0x6DCD59, 0xB4DE2C, 0xFDE725};

Rgb from_hex(unsigned h) { return {((h >> 16) & 255) / 255.0, ((h >> 8) & 255) / 255.0, (h & 255) / 255.0}; }

}  // namespace

Rgb series_color(size_t i) { return kOkabeIto[i % series_color_count()]; }

size_t series_color_count() { return sizeof(kOkabeIto) / sizeof(kOkabeIto[0]); }

Rgb viridis(double v) {
    if (!(v >= 0.0)) v = 0.0;  // NaN too
    v = std::min(v, 1.0) * 9.0;
    const int i = std::min(int(v), 8);
    const double t = v - i;
    const Rgb a = from_hex(kViridis[i]), b = from_hex(kViridis[i + 1]);
    return {a.r + t * (b.r - a.r), a.g + t * (b.g - a.g), a.b + t * (b.b - a.b)};
}

double luminance(Rgb c) { return 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b; }

std::string hex_color(Rgb c) {
    auto ch = [](double x) { return int(std::lround(std::clamp(x, 0.0, 1.0) * 255.0)); };
    char b[8];
    std::snprintf(b, sizeof b, "#%02x%02x%02x", ch(c.r), ch(c.g), ch(c.b));
    return b;
}

double nice_step(double span, int target) {
    if (!(span > 0.0) || !std::isfinite(span)) return 1.0;
    target = std::max(target, 1);
    double p = std::pow(10.0, std::floor(std::log10(span / target)));
    for (;;) {
        for (double m : {1.0, 2.0, 5.0}) {
            if (span / (m * p) <= target * (1.0 + 1e-9)) return m * p;
        }
        p *= 10.0;
    }
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
    if (!std::isfinite(lo) || !std::isfinite(hi)) return {0.0, 1.0};
    if (hi < lo) std::swap(lo, hi);
    if (hi == lo) lo -= 0.5, hi += 0.5;
    const double step = nice_step(hi - lo, target);
    const double first = std::floor(lo / step + 1e-9), last = std::ceil(hi / step - 1e-9);
    std::vector<double> t;
    for (double k = first; k <= last + 0.5; k += 1.0) {
        const double v = k * step;
        t.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
    }
    return t;
}

bool all_powers_of_two(const std::vector<double>& v) {
    if (v.empty()) return false;
    return std::all_of(v.begin(), v.end(), [](double x) {
        if (!(x >= 1.0) || x != std::floor(x) || x > 9.0e15) return false;
        const auto n = static_cast<unsigned long long>(x);
        return (n & (n - 1)) == 0;
    });
}

std::vector<double> log_ticks(double lo, double hi, bool pow2) {
    if (!(lo > 0.0) || !(hi >= lo) || !std::isfinite(hi)) return {1.0};
    const double eps = 1e-9;
    std::vector<double> t;
    if (pow2) {
        for (double p = std::exp2(std::ceil(std::log2(lo) - eps)); p <= hi * (1 + eps); p *= 2.0) t.push_back(p);
        if (t.size() >= 3) return t;
    }
    t.clear();
    std::vector<double> decades;
    for (double p = std::pow(10.0, std::floor(std::log10(lo))); p <= hi * (1 + eps); p *= 10.0) {
        for (double m : {1.0, 2.0, 5.0}) {
            const double v = m * p;
            if (v >= lo * (1 - eps) && v <= hi * (1 + eps)) t.push_back(v);
        }
        if (p >= lo * (1 - eps)) decades.push_back(p);
    }
    if (t.size() > 10 && decades.size() >= 3) return decades;
    if (t.size() >= 3) return t;
    // a narrow span (less than about a factor of five): linear 1-2-5 ticks inside it
    t.clear();
    const double step = nice_step(hi - lo, 6);
    for (double k = std::ceil(lo / step - eps); k * step <= hi * (1 + eps); k += 1.0) t.push_back(k * step);
    if (t.size() < 2) t = {lo, hi};
    return t;
}

std::string tick_label(double v, double step) {
    int decimals = 0;
    if (step > 0.0 && std::isfinite(step)) {
        decimals = std::clamp(int(std::ceil(-std::log10(step) - 1e-9)), 0, 6);
        // a step such as 0.25 or 2.5 needs one decimal more than its power of ten
        char b[32];
        std::snprintf(b, sizeof b, "%.*f", decimals, step);
        if (std::fabs(std::strtod(b, nullptr) - step) > step * 1e-6) ++decimals;
    }
    char b[48];
    std::snprintf(b, sizeof b, "%.*f", decimals, v);
    std::string s = b;
    if (s.find_first_not_of("-0.") == std::string::npos) s = decimals ? "0." + std::string(size_t(decimals), '0') : "0";
    return s;
}

std::vector<std::string> tick_labels(const std::vector<double>& ticks, bool log) {
    std::vector<std::string> out;
    if (log) {  // each value with the fewest decimals that print it exactly (0.5, 1, 2, 5, 64, 128)
        for (double v : ticks) {
            int d = 0;
            char b[48];
            for (;; ++d) {
                std::snprintf(b, sizeof b, "%.*f", d, v);
                if (d >= 6 || std::fabs(std::strtod(b, nullptr) - v) <= std::fabs(v) * 1e-9) break;
            }
            out.push_back(b);
        }
        return out;
    }
    const double step = ticks.size() >= 2 ? std::fabs(ticks[1] - ticks[0]) : 1.0;
    for (double v : ticks) out.push_back(tick_label(v, step));
    return out;
}

}  // namespace hkv::eval
