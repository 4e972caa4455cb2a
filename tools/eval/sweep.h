// tools/eval/sweep.h — policies x budgets: the list of specs to run, and the results as a
// markdown table and a budget-accuracy line chart (plot.h). The task itself is run by the caller.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "eval/plot.h"
#include "heterokv/status.h"

namespace hkv::eval {

// One policy spec of the sweep: `name:[opts,]budget=B`, or `full` (budget 0).
struct SweepPoint {
    std::string family;  // "full", "snapkv", ... (the policy name with its extra options)
    int32_t budget = 0;  // 0 for full
    std::string spec;    // what policy_create() gets
};

// Expands policies x budgets. Each policy is `name` or `name:k=v,...` (its own options); `extra`
// ("k=v,...", may be empty) is added to every compressed spec. `full` comes first, once, whether
// listed or not. kInvalidArgument for no budgets, a budget <= 0, or a policy that sets budget itself.
Expected<std::vector<SweepPoint>> sweep_points(const std::vector<std::string>& policies,
                                               const std::vector<int32_t>& budgets, const std::string& extra);

// Results: score[i] belongs to points[i] (any unit, e.g. percent), kv_mib[i] its cache size.
struct SweepResult {
    std::string title, metric;  // e.g. "RULER niah_single_1 @1024, retrieval-1.4M", "score (%)"
    std::vector<SweepPoint> points;
    std::vector<double> score, kv_mib;
    int64_t n = 0;  // graded answers per point (a percent score is correct / n); 0: not known, no error bars
};

// Markdown: one row per family, one column per budget (+ the full score in its own column).
std::string sweep_table_md(const SweepResult& r);
// Budget (log x) against score, one series per family; full is a dashed flat line over the budgets.
// A percent metric gets a 0-100 axis and, when n > 0, 95% Wilson intervals of round(score * n / 100)
// correct of n.
LineChart sweep_chart(const SweepResult& r);

}  // namespace hkv::eval
