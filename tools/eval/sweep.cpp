// tools/eval/sweep.cpp — see sweep.h.
#include "eval/sweep.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "eval/equal.h"

namespace hkv::eval {

Expected<std::vector<SweepPoint>> sweep_points(const std::vector<std::string>& policies,
                                               const std::vector<int32_t>& budgets, const std::string& extra) {
    if (budgets.empty()) return Status::invalid("sweep: no budgets");
    for (int32_t b : budgets) {
        if (b <= 0) return Status::invalid("sweep: budget %d must be > 0", b);
    }
    std::vector<SweepPoint> out = {{"full", 0, "full"}};
    for (const std::string& p : policies) {
        if (p.empty() || p == "full") continue;
        const size_t colon = p.find(':');
        std::string opts = colon == std::string::npos ? "" : p.substr(colon + 1);
        if ((("," + opts).find(",budget=")) != std::string::npos) {
            return Status::invalid("sweep: policy '%s' sets budget itself; the sweep sets it", p.c_str());
        }
        if (!extra.empty()) opts += (opts.empty() ? "" : ",") + extra;
        for (int32_t b : budgets) {
            const std::string name = p.substr(0, colon);
            out.push_back({p, b, name + ":" + opts + (opts.empty() ? "" : ",") + "budget=" + std::to_string(b)});
        }
    }
    return out;
}

namespace {
std::vector<std::string> families(const SweepResult& r) {  // in first-seen order, full excluded
    std::vector<std::string> f;
    for (const SweepPoint& p : r.points) {
        if (p.budget > 0 && std::find(f.begin(), f.end(), p.family) == f.end()) f.push_back(p.family);
    }
    return f;
}
std::vector<int32_t> budget_list(const SweepResult& r) {
    std::vector<int32_t> b;
    for (const SweepPoint& p : r.points) {
        if (p.budget > 0) b.push_back(p.budget);
    }
    std::sort(b.begin(), b.end());
    b.erase(std::unique(b.begin(), b.end()), b.end());
    return b;
}
}  // namespace

std::string sweep_table_md(const SweepResult& r) {
    const std::vector<int32_t> budgets = budget_list(r);
    std::map<std::pair<std::string, int32_t>, size_t> at;
    double full = NAN, full_kv = NAN;
    for (size_t i = 0; i < r.points.size() && i < r.score.size(); ++i) {
        if (r.points[i].budget == 0) {
            full = r.score[i];
            full_kv = i < r.kv_mib.size() ? r.kv_mib[i] : NAN;
        }
        at[{r.points[i].family, r.points[i].budget}] = i;
    }
    char buf[64];
    std::string s = "**" + r.title + "** — " + r.metric + " (KV MiB after the answer in parentheses)\n\n| policy |";
    for (int32_t b : budgets) s += " budget " + std::to_string(b) + " |";
    s += "\n|---|";
    for (size_t i = 0; i < budgets.size(); ++i) s += "---:|";
    std::snprintf(buf, sizeof buf, "%.1f (%.2f)", full, full_kv);
    s += "\n| full |";
    for (size_t i = 0; i < budgets.size(); ++i) s += std::string(" ") + buf + " |";
    for (const std::string& f : families(r)) {
        s += "\n| " + f + " |";
        for (int32_t b : budgets) {
            auto it = at.find({f, b});
            if (it == at.end() || it->second >= r.score.size()) {
                s += " - |";
                continue;
            }
            const double kv = it->second < r.kv_mib.size() ? r.kv_mib[it->second] : NAN;
            std::snprintf(buf, sizeof buf, " %.1f (%.2f) |", r.score[it->second], kv);
            s += buf;
        }
    }
    return s + "\n";
}

LineChart sweep_chart(const SweepResult& r) {
    LineChart c;
    c.title = r.title + (r.n > 0 ? ", " + std::to_string(r.n) + " answers per point" : "");
    c.x_label = "KV budget (slots per head, log scale)";
    c.y_label = r.metric;
    c.log_x = true;
    if (r.metric.size() >= 3 && r.metric.compare(r.metric.size() - 3, 3, "(%)") == 0) {
        c.y_min = 0, c.y_max = 100;
        if (r.n > 0) c.y_label += ", bars: 95% Wilson interval";
    }
    const std::vector<int32_t> budgets = budget_list(r);
    for (size_t i = 0; i < r.points.size() && i < r.score.size(); ++i) {
        if (r.points[i].budget != 0) continue;
        LineChart::Series s{"full cache", {}, {}};
        s.reference = true;
        for (int32_t b : budgets) s.x.push_back(b), s.y.push_back(r.score[i]);
        c.series.push_back(s);
    }
    for (const std::string& f : families(r)) {
        LineChart::Series s{f, {}, {}};
        for (size_t i = 0; i < r.points.size() && i < r.score.size(); ++i) {
            if (r.points[i].family != f) continue;
            s.x.push_back(r.points[i].budget), s.y.push_back(r.score[i]);
            if (r.n > 0 && c.y_max == 100) {
                const auto [lo, hi] = wilson_interval(std::llround(r.score[i] * double(r.n) / 100.0), r.n);
                s.y_lo.push_back(100 * lo), s.y_hi.push_back(100 * hi);
            }
        }
        c.series.push_back(s);
    }
    return c;
}

}  // namespace hkv::eval
