// tools/eval/equal.h — the standard equal-memory comparison (issue 18): each seed-method setting
// (a policy spec such as `ems:budget=256` or `heterocache:taxonomy=T,ratio=0.65`) against every
// baseline family at the same KV bytes after the context.
//
// For each method spec and each evaluation context (the eval-ppl context of the texts, and the NIAH
// length), the method's KV bytes after that context are measured (a probe: the context prefilled in
// one chunk and compressed, exactly as eval ppl's windows are, `Context::kv_bytes()`), and each
// baseline's budget is searched (bisection over budget; bytes are non-decreasing in it) so that its
// bytes after the same context are the closest it can hold to the method's; of the budgets with those
// bytes the largest is taken. Then every spec (methods and matched baselines, each once) is run by
// ppl_run on every text (KLD, top-1, the KV bytes eval ppl reports after the context) and by niah_run
// in each protocol. Reported: KLD per text, its mean and spread over texts, top-1, NIAH accuracy with
// its binomial standard error, and each baseline's bytes relative to its method's (within the
// tolerance or flagged).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "eval/niah.h"
#include "eval/plot.h"
#include "eval/ppl.h"
#include "heterokv/model.h"
#include "heterokv/status.h"

namespace hkv::eval {

// `family` ("snapkv" or "snapkv:window=16") with budget B: "snapkv:budget=B" / "snapkv:window=16,budget=B".
std::string budget_spec(const std::string& family, int32_t budget);

// The result of a budget search.
struct BudgetMatch {
    std::string spec;      // family at the chosen budget
    int32_t budget = 0;
    double bytes = 0.0;    // the probe's bytes at that budget
    double target = 0.0;   // the method's bytes
    double rel() const { return target > 0 ? bytes / target - 1.0 : 0.0; }  // bytes / target - 1
};

// Bytes a spec holds after the context (probe); an error for a spec that is invalid at that budget
// (e.g. budget <= window) counts as "below any target" during the search.
using BytesFn = std::function<Expected<double>(const std::string& spec)>;

// Finds, over budgets in [lo, hi], the budget of `family` whose bytes are closest to `target` (the
// largest budget with those bytes). bytes_of must be non-decreasing in the budget. Errors: lo > hi,
// or the family invalid at every budget up to hi (the error of budget hi).
Expected<BudgetMatch> match_budget(const std::string& family, double target, int32_t lo, int32_t hi,
                                   const BytesFn& bytes_of);

// Binomial standard error of an accuracy of `correct` of `n`: sqrt(p (1 - p) / n).
double binomial_se(int64_t correct, int64_t n);

// The Wilson score interval [lo, hi] of a binomial proportion correct / n at z standard deviations
// (1.96: 95%). Unlike p ± SE it is not empty at 0/n or n/n (e.g. 20/20 -> [0.84, 1]). n <= 0: [0, 1].
std::pair<double, double> wilson_interval(int64_t correct, int64_t n, double z = 1.96);

struct EqualConfig {
    std::vector<std::string> methods;    // seed-method specs: each is one memory point
    std::vector<std::string> baselines = {"snapkv", "pyramidkv", "adakv", "chunkkv", "streaming", "h2o"};
    double tolerance = 0.03;             // |bytes / method bytes - 1| above this is flagged
    // KLD: each text (already tokenized, without BOS) under ppl (window, context, windows, threads).
    std::vector<std::string> text_names;
    std::vector<std::vector<int32_t>> texts;
    PplParams ppl;
    int32_t probe_windows = 4;           // contexts of the first text the ppl-side probe averages
    // NIAH: skipped when niah.haystack_files is empty; one length (niah.lengths[0]).
    NiahConfig niah;
    std::vector<bool> protocols = {true, false};  // query-aware, query-agnostic
};

// One spec's results. Keys of maps: text name; protocol "aware" / "agnostic".
struct EqualRun {
    std::string spec;
    std::map<std::string, PplResult> ppl;        // per text
    double kld_mean = 0.0, kld_min = 0.0, kld_max = 0.0, top1 = 0.0;  // over texts
    double kv_context = 0.0, kv_end = 0.0;  // bytes after the context and at the window's end, over texts
    std::map<std::string, NiahResult> niah;      // per protocol
    std::map<std::string, double> niah_kv_context;  // per protocol: mean bytes after the compressed prompt
};

// One method and its baselines, matched at the ppl context and at the NIAH length.
struct EqualPoint {
    std::string method;
    double target_ppl = 0.0, target_niah = 0.0;  // the method's probe bytes
    std::vector<BudgetMatch> ppl_match, niah_match;  // [baselines]
};

struct EqualReport {
    std::string model;
    std::vector<EqualPoint> points;
    std::map<std::string, EqualRun> runs;  // every spec run, by spec
    double full_kv_ppl = 0.0;              // full cache bytes after the ppl context (probe)
};

using EqualLog = std::function<void(const std::string& line)>;

// Runs the comparison. Errors: no methods, no texts, a bad spec, engine errors.
Expected<EqualReport> equal_run(std::shared_ptr<const Model> model, const EqualConfig& cfg, const EqualLog& log = {});

// Markdown: per method, its row then each baseline's (spec, KiB and Δ bytes, KLD per text and mean,
// top-1, NIAH per protocol ± SE); a flag where |Δ| exceeds the tolerance.
std::string equal_table_md(const EqualReport& r, const EqualConfig& cfg);
// The seed policies of the methods ("ems", "dynsplit", ...), first-seen order: one chart each.
std::vector<std::string> equal_method_names(const EqualReport& r);
// KLD (mean over texts) against KV KiB after the context for the methods of one policy and the
// baselines matched to them: one series per family. Baselines whose every point is above 2.5x the
// methods' largest KLD are left out (named in the title) so that the close ones stay readable.
LineChart equal_kld_chart(const EqualReport& r, const std::string& method_name);
// NIAH accuracy against KV KiB after the prompt for one protocol, error bars ± one binomial SE.
LineChart equal_niah_chart(const EqualReport& r, const std::string& protocol, const std::string& method_name);
// Every figure as JSON text.
std::string equal_json(const EqualReport& r, const EqualConfig& cfg);
// The report and the parts of its configuration the table and charts use, back from equal_json's
// text (to re-render them without running again). kInvalidArgument for text that is not such JSON.
Expected<EqualReport> equal_from_json(const std::string& text, EqualConfig* cfg);

}  // namespace hkv::eval
