// tools/eval/figures.h — the figures of eval niah, ruler and sweep, built from their results and
// re-built from the JSON those commands write (--replot: nothing is run).
#pragma once

#include <string>
#include <vector>

#include "eval/plot.h"
#include "eval/sweep.h"
#include "heterokv/status.h"

namespace hkv::eval {

// One policy's NIAH grid: correct[d][l] of trials[d][l] needles at depths[d] x lengths[l].
Heatmap niah_heatmap(const std::string& policy, const std::string& protocol, const std::vector<int32_t>& lengths,
                     const std::vector<double>& depths, const std::vector<std::vector<double>>& accuracy,
                     int32_t trials);

// RULER at one length: score[task][policy] in percent; policy specs "name:budget=N" print as "name N".
Heatmap ruler_heatmap(int32_t length, const std::string& protocol, int32_t samples,
                      const std::vector<std::string>& tasks, const std::vector<std::string>& policies,
                      const std::vector<std::vector<double>>& score);

// `eval niah --replot`: from the JSON of eval niah, PREFIX_<policy slug>.svg/.png per policy.
// Returns the files' prefixes; kInvalidArgument naming what is missing from a malformed JSON.
Expected<std::vector<std::string>> niah_replot(const std::string& json_text, const std::string& prefix);

// `eval ruler --replot`: from the JSON of eval ruler, PREFIX_<length>.svg/.png per length.
Expected<std::vector<std::string>> ruler_replot(const std::string& json_text, const std::string& prefix);

// `eval sweep --replot`: the result recorded in the JSON of eval sweep (title, metric from the task,
// points, scores, KV bytes, and n when recorded). n_override > 0 sets n (graded answers per point) for
// JSON written before n was recorded.
Expected<SweepResult> sweep_from_json(const std::string& json_text, int64_t n_override);

// The niah slug of a policy spec: every character that is not a letter or digit becomes '_'.
std::string policy_slug(const std::string& spec);

}  // namespace hkv::eval
