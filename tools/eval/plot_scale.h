// tools/eval/plot_scale.h — the numeric side of the figures (plot.h): readable axis ticks (1-2-5
// steps on linear axes; 1-2-5 per decade or powers of two on log axes) and colour-blind-safe colours
// (Okabe-Ito for series, viridis for values in [0, 1]).
#pragma once

#include <string>
#include <vector>

namespace hkv::eval {

// A colour with channels in [0, 1].
struct Rgb {
    double r = 0, g = 0, b = 0;
};

// The i-th series colour: the Okabe-Ito palette (blue, vermillion, bluish green, orange, reddish
// purple, sky blue, black, yellow), repeating after 8.
Rgb series_color(size_t i);
size_t series_color_count();

// Viridis at v in [0, 1] (clamped; dark blue-purple at 0, yellow at 1), interpolated in sRGB between
// ten anchors of the published map. Luminance rises with v, so it reads in grey and to every common
// colour-vision deficiency.
Rgb viridis(double v);

// Relative luminance (sRGB coefficients, no gamma): text on a cell is white below 0.5, black above.
double luminance(Rgb c);

// "#rrggbb".
std::string hex_color(Rgb c);

// The 1-2-5 step (1, 2 or 5 times a power of ten) that divides `span` into at most about `target`
// intervals (the smallest such step with span / step <= target). span > 0, target >= 1.
double nice_step(double span, int target);

// Ticks at multiples of nice_step(hi - lo, target) from floor(lo / step) * step to ceil(hi / step) *
// step: the outermost ticks enclose [lo, hi]. lo == hi gets a unit span around the value.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);

// Ticks for a log axis over [lo, hi] (0 < lo <= hi): powers of two when `pow2` and at least three lie
// in range (budgets in slots); otherwise 1, 2, 5 times powers of ten when at least three lie in range
// (every tenth power only when that gives more than ten); otherwise linear nice ticks inside the
// range (a narrow span), at least two.
std::vector<double> log_ticks(double lo, double hi, bool pow2);

// True when every value is a positive integer power of two (1, 2, 4, ...).
bool all_powers_of_two(const std::vector<double>& v);

// A tick label with as many decimals as `step` needs (step 0.2 -> "0.4", step 50 -> "150"); no
// trailing zeros beyond that, "-0" printed as "0".
std::string tick_label(double v, double step);

// Labels for a set of ticks: on a linear axis all with the decimals the step (first gap) needs
// ("0.0", "0.2", ... "1.0"); on a log axis each with the fewest decimals that print it exactly.
std::vector<std::string> tick_labels(const std::vector<double>& ticks, bool log);

}  // namespace hkv::eval
