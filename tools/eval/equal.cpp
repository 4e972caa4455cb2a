// tools/eval/equal.cpp — see equal.h.
#include "eval/equal.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "heterokv/engine.h"
#include "heterokv/file_io.h"

namespace hkv::eval {

std::string budget_spec(const std::string& family, int32_t budget) {
    const std::string b = "budget=" + std::to_string(budget);
    return family.find(':') == std::string::npos ? family + ":" + b : family + "," + b;
}

double binomial_se(int64_t correct, int64_t n) {
    if (n <= 0) return 0.0;
    const double p = double(correct) / double(n);
    return std::sqrt(p * (1.0 - p) / double(n));
}

std::pair<double, double> wilson_interval(int64_t correct, int64_t n, double z) {
    if (n <= 0) return {0.0, 1.0};
    const double nn = double(n), p = double(correct) / nn, z2 = z * z;
    const double centre = (p + z2 / (2 * nn)) / (1 + z2 / nn);
    const double half = z / (1 + z2 / nn) * std::sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn));
    return {std::max(0.0, centre - half), std::min(1.0, centre + half)};
}

Expected<BudgetMatch> match_budget(const std::string& family, double target, int32_t lo, int32_t hi,
                                   const BytesFn& bytes_of) {
    if (lo < 1 || lo > hi) return Status::invalid("equal: budget range [%d, %d] is empty", lo, hi);
    Status last;
    auto f = [&](int32_t b) -> std::optional<double> {
        auto r = bytes_of(budget_spec(family, b));
        if (!r.ok()) {
            last = r.status();
            return std::nullopt;
        }
        return *r;
    };
    const std::optional<double> at_hi = f(hi);
    if (!at_hi) return last.with_context("equal: baseline '" + family + "'");
    // The smallest budget whose bytes reach the target (hi when none does): a bracket [a, z] with
    // f(a - 1) < target <= f(z), narrowed by interpolation (bytes grow about linearly with the
    // budget), with a bisection step whenever an interpolation did not halve the bracket.
    int32_t a = lo, z = hi;
    std::optional<double> fa;  // f(a - 1) when known and valid; below budget 1, about nothing
    if (lo == 1) fa = 0.0;
    if (*at_hi >= target) {
        bool bisect = false;
        while (a < z) {
            int32_t m = a + (z - a) / 2;
            const double zb = *f(z);
            if (!bisect && fa && zb > *fa) {  // where the line through (a - 1, fa) and (z, zb) meets target
                const double t = (target - *fa) / (zb - *fa);
                m = std::clamp(int32_t(std::lround(double(a - 1) + t * double(z - a + 1))), a, z - 1);
            }
            const int32_t width = z - a;
            const std::optional<double> v = f(m);
            if (v && *v >= target) z = m;
            else a = m + 1, fa = v;
            bisect = !bisect && (z - a) * 2 > width;  // interpolation was slow: bisect next
        }
    }
    int32_t best = z;
    double best_bytes = *f(z);
    if (z > lo) {  // the budget below (the largest under the target) may be closer
        const std::optional<double> below = f(z - 1);
        if (below && std::fabs(*below - target) < std::fabs(best_bytes - target)) best = z - 1, best_bytes = *below;
    }
    // Of the budgets holding the same bytes the largest: z - 1 already is; from z, the store rounds a
    // compressed head's tail up to 8 slots, so look 7, 3 and 1 budgets up.
    if (best == z) {
        for (int32_t step : {7, 3, 1}) {
            if (z + step > hi) continue;
            const std::optional<double> v = f(z + step);
            if (v && *v == best_bytes) {
                best = z + step;
                break;
            }
        }
    }
    return BudgetMatch{budget_spec(family, best), best, best_bytes, target};
}

namespace {

// Bytes after prefilling each context in one chunk under `spec` (mean), as eval ppl measures them.
Expected<double> probe(const std::shared_ptr<const Model>& model, const std::string& spec,
                       const std::vector<std::vector<int32_t>>& contexts, int32_t n_ctx, const PplParams& p) {
    double sum = 0.0;
    for (const std::vector<int32_t>& c : contexts) {
        ContextParams cp;
        cp.n_ctx = n_ctx;
        cp.n_threads = p.n_threads;
        cp.n_batch = p.n_batch > 0 ? p.n_batch : int32_t(c.size());
        cp.kv_type = p.kv_type;
        cp.kv_page_size = p.kv_page_size;
        cp.kv_cold_dir = p.kv_cold_dir;
        cp.policy = spec;
        auto ctx = Context::create(model, cp);
        if (!ctx.ok()) return ctx.status();
        HKV_TRY((*ctx)->eval(c));
        sum += double((*ctx)->kv_bytes());
    }
    return sum / double(std::max<size_t>(contexts.size(), 1));
}

// A series name: the policy and its options other than the memory knobs (budget, ratio) and paths.
std::string family_of(const std::string& spec) {
    const size_t colon = spec.find(':');
    if (colon == std::string::npos) return spec;
    std::string out = spec.substr(0, colon), sep = ":";
    size_t at = colon + 1;
    while (at <= spec.size()) {
        size_t end = spec.find(',', at);
        if (end == std::string::npos) end = spec.size();
        const std::string kv = spec.substr(at, end - at);
        const std::string key = kv.substr(0, kv.find('='));
        if (!kv.empty() && key != "budget" && key != "ratio" && key != "taxonomy") out += sep + kv, sep = ",";
        at = end + 1;
    }
    return out;
}

const char* proto_name(bool aware) { return aware ? "aware" : "agnostic"; }

}  // namespace

Expected<EqualReport> equal_run(std::shared_ptr<const Model> model, const EqualConfig& cfg, const EqualLog& log) {
    if (!model) return Status::invalid("eval equal: no model");
    if (cfg.methods.empty()) return Status::invalid("eval equal: no method spec");
    if (cfg.texts.empty() || cfg.texts.size() != cfg.text_names.size()) return Status::invalid("eval equal: no text");
    if (cfg.ppl.stream) return Status::invalid("eval equal: the bytes after a context need context mode, not --stream");
    const bool with_niah = !cfg.niah.haystack_files.empty();
    if (with_niah && cfg.niah.lengths.size() != 1) return Status::invalid("eval equal: NIAH takes one length");
    auto say = [&](const std::string& s) {
        if (log) log(s);
    };
    const Tokenizer& tok = model_tokenizer(*model);
    const bool bos = tok.add_bos() && tok.bos() >= 0;
    const int32_t limit = cfg.ppl.n_ctx > 0 ? cfg.ppl.n_ctx : model_info(*model).n_ctx_train;

    // Probe contexts: the first windows' contexts of the first text, and the haystack's first tokens.
    HKV_ASSIGN_OR_RETURN(PplPlan plan, ppl_plan(int64_t(cfg.texts[0].size()), bos, limit, cfg.ppl));
    const int32_t C = plan.n_context;
    std::vector<std::vector<int32_t>> ppl_ctx;
    const size_t n_probe = std::min<size_t>(plan.starts.size(), size_t(std::max(cfg.probe_windows, 1)));
    for (size_t i = 0; i < n_probe; ++i) {
        std::vector<int32_t> c;
        if (bos) c.push_back(tok.bos());
        const int64_t s = plan.starts[i * plan.starts.size() / n_probe];
        c.insert(c.end(), cfg.texts[0].begin() + s, cfg.texts[0].begin() + s + (C - int32_t(c.size())));
        ppl_ctx.push_back(std::move(c));
    }
    std::vector<std::vector<int32_t>> niah_ctx;
    int32_t L = 0, niah_n_ctx = 0;
    if (with_niah) {
        L = cfg.niah.lengths[0];
        niah_n_ctx = L + cfg.niah.n_gen;
        std::string hay;
        for (const std::string& f : cfg.niah.haystack_files) {
            auto t = file_read(f, kFileMaxText, "eval equal: haystack");
            if (!t.ok()) return t.status();
            hay += *t + "\n\n";
            if (hay.size() > size_t(L) * 16) break;  // enough text for L tokens
        }
        std::vector<int32_t> c;
        if (bos) c.push_back(tok.bos());
        const std::vector<int32_t> ids = tok.encode(hay, false);
        if (int64_t(ids.size()) < L) return Status::invalid("eval equal: the haystack has fewer than %d tokens", L);
        c.insert(c.end(), ids.begin(), ids.begin() + (L - int32_t(c.size())));
        niah_ctx.push_back(std::move(c));
    }
    std::map<std::string, Expected<double>> memo_ppl, memo_niah;
    auto bytes_fn = [&](std::map<std::string, Expected<double>>& memo, const std::vector<std::vector<int32_t>>& ctxs,
                        int32_t n_ctx) -> BytesFn {
        return [&memo, &ctxs, n_ctx, &model, &cfg](const std::string& spec) -> Expected<double> {
            auto it = memo.find(spec);
            if (it == memo.end()) it = memo.emplace(spec, probe(model, spec, ctxs, n_ctx, cfg.ppl)).first;
            return it->second;
        };
    };
    const BytesFn ppl_bytes = bytes_fn(memo_ppl, ppl_ctx, cfg.ppl.n_window);
    const BytesFn niah_bytes = bytes_fn(memo_niah, niah_ctx, niah_n_ctx);

    EqualReport rep;
    HKV_ASSIGN_OR_RETURN(rep.full_kv_ppl, ppl_bytes("full"));
    std::vector<std::string> specs;  // every spec to run, first-seen order
    auto add_spec = [&](const std::string& s) {
        if (std::find(specs.begin(), specs.end(), s) == specs.end()) specs.push_back(s);
    };
    for (const std::string& m : cfg.methods) {
        EqualPoint pt;
        pt.method = m;
        HKV_ASSIGN_OR_RETURN(pt.target_ppl, ppl_bytes(m));
        if (with_niah) {
            HKV_ASSIGN_OR_RETURN(pt.target_niah, niah_bytes(m));
        }
        add_spec(m);
        for (const std::string& b : cfg.baselines) {
            HKV_ASSIGN_OR_RETURN(BudgetMatch mp, match_budget(b, pt.target_ppl, 1, C, ppl_bytes));
            pt.ppl_match.push_back(mp);
            add_spec(mp.spec);
            char buf[256];
            std::snprintf(buf, sizeof buf, "%s: %s holds %.1f KiB after the context (%+.1f%%)", m.c_str(),
                          mp.spec.c_str(), mp.bytes / 1024.0, 100.0 * mp.rel());
            say(buf);
            if (with_niah) {
                HKV_ASSIGN_OR_RETURN(BudgetMatch mn, match_budget(b, pt.target_niah, 1, L, niah_bytes));
                pt.niah_match.push_back(mn);
                std::snprintf(buf, sizeof buf, "%s: %s holds %.1f KiB after the NIAH context (%+.1f%%)", m.c_str(),
                              mn.spec.c_str(), mn.bytes / 1024.0, 100.0 * mn.rel());
                say(buf);
            }
        }
        rep.points.push_back(std::move(pt));
    }
    // KLD: one ppl_run per text with every spec (the full baseline computed once per window).
    for (size_t t = 0; t < cfg.texts.size(); ++t) {
        say("eval ppl on " + cfg.text_names[t] + ": " + std::to_string(specs.size()) + " policies");
        HKV_ASSIGN_OR_RETURN(PplReport pr, ppl_run(model, cfg.texts[t], specs, cfg.ppl));
        for (size_t i = 1; i < pr.results.size(); ++i) {
            EqualRun& run = rep.runs[pr.results[i].policy];
            run.spec = pr.results[i].policy;
            run.ppl[cfg.text_names[t]] = pr.results[i];
        }
    }
    for (auto& [spec, run] : rep.runs) {
        double n = 0;
        run.kld_min = INFINITY, run.kld_max = -INFINITY;
        for (const auto& [name, r] : run.ppl) {
            run.kld_mean += r.kld_mean, run.top1 += r.top1, n += 1;
            run.kv_context += r.kv_bytes_context, run.kv_end += r.kv_bytes_end;
            run.kld_min = std::min(run.kld_min, r.kld_mean), run.kld_max = std::max(run.kld_max, r.kld_mean);
        }
        run.kld_mean /= n, run.top1 /= n, run.kv_context /= n, run.kv_end /= n;
    }
    if (with_niah) {
        std::vector<std::string> nspecs;
        for (const EqualPoint& pt : rep.points) {
            nspecs.push_back(pt.method);
            for (const BudgetMatch& m : pt.niah_match) nspecs.push_back(m.spec);
        }
        ContextParams cp;
        cp.n_threads = cfg.ppl.n_threads;
        cp.kv_type = cfg.ppl.kv_type;
        cp.kv_page_size = cfg.ppl.kv_page_size;
        cp.kv_cold_dir = cfg.ppl.kv_cold_dir;
        for (const std::string& s : nspecs) {
            EqualRun& run = rep.runs[s];
            run.spec = s;
            for (bool aware : cfg.protocols) {
                if (run.niah.count(proto_name(aware))) continue;
                NiahConfig nc = cfg.niah;
                nc.query_aware = aware;
                say(std::string("eval niah (") + proto_name(aware) + "): " + s);
                HKV_ASSIGN_OR_RETURN(NiahResult nr, niah_run(model, cp, s, nc));
                double kv = 0.0;
                for (const NiahCell& c : nr.cells) kv += double(c.kv_bytes_context);
                run.niah_kv_context[proto_name(aware)] = kv / double(std::max<size_t>(nr.cells.size(), 1));
                run.niah[proto_name(aware)] = std::move(nr);
            }
        }
    }
    return rep;
}

namespace {

struct Acc {
    int64_t correct = 0, n = 0;
};
Acc niah_acc(const NiahResult& r) {
    Acc a;
    for (const NiahCell& c : r.cells) a.correct += c.correct, a.n += c.trials;
    return a;
}

}  // namespace

std::string equal_table_md(const EqualReport& r, const EqualConfig& cfg) {
    std::string s;
    char buf[512];
    std::vector<std::string> protos;
    for (bool aware : cfg.protocols) protos.push_back(proto_name(aware));
    const bool with_niah = !cfg.niah.haystack_files.empty();
    s += "| policy | KiB after ctx (Δ) |";
    for (const std::string& t : cfg.text_names) s += " KLD " + t + " |";
    s += " KLD mean | top-1 | KiB at end |";
    if (with_niah) {
        s += " NIAH policy | NIAH KiB (Δ) |";
        for (const std::string& p : protos) s += " " + p + " ± SE |";
    }
    s += "\n|---|---:|";
    for (size_t i = 0; i < cfg.text_names.size(); ++i) s += "---:|";
    s += "---:|---:|---:|";
    if (with_niah) {
        s += "---|---:|";
        for (size_t i = 0; i < protos.size(); ++i) s += "---:|";
    }
    s += "\n";
    for (const EqualPoint& pt : r.points) {
        const EqualRun& mr = r.runs.at(pt.method);
        const double niah_target = with_niah && !protos.empty() ? mr.niah_kv_context.at(protos[0]) : 0.0;
        for (size_t i = 0; i <= pt.ppl_match.size(); ++i) {
            const bool is_m = i == 0;
            const std::string spec = is_m ? pt.method : pt.ppl_match[i - 1].spec;
            const EqualRun& run = r.runs.at(spec);
            const double rel = is_m ? 0.0 : run.kv_context / mr.kv_context - 1.0;
            const bool off = std::fabs(rel) > cfg.tolerance;
            std::snprintf(buf, sizeof buf, "| %s%s%s | %.1f (%+.1f%%%s) |", is_m ? "**" : "", spec.c_str(),
                          is_m ? "**" : "", run.kv_context / 1024.0, 100.0 * rel, off ? " !" : "");
            s += buf;
            for (const std::string& t : cfg.text_names) {
                std::snprintf(buf, sizeof buf, " %.4f |", run.ppl.at(t).kld_mean);
                s += buf;
            }
            std::snprintf(buf, sizeof buf, " %.4f | %.3f | %.1f |", run.kld_mean, run.top1, run.kv_end / 1024.0);
            s += buf;
            if (with_niah) {
                const std::string ns = is_m ? pt.method : pt.niah_match[i - 1].spec;
                const EqualRun& nr = r.runs.at(ns);
                const double kv = protos.empty() ? 0.0 : nr.niah_kv_context.at(protos[0]);
                const double nrel = is_m ? 0.0 : kv / niah_target - 1.0;
                std::snprintf(buf, sizeof buf, " %s | %.1f (%+.1f%%%s) |", ns == spec ? "same" : ns.c_str(), kv / 1024.0,
                              100.0 * nrel, std::fabs(nrel) > cfg.tolerance ? " !" : "");
                s += buf;
                for (const std::string& p : protos) {
                    const Acc a = niah_acc(nr.niah.at(p));
                    std::snprintf(buf, sizeof buf, " %lld/%lld = %.3f ± %.3f |", (long long)a.correct, (long long)a.n,
                                  a.n ? double(a.correct) / double(a.n) : 0.0, binomial_se(a.correct, a.n));
                    s += buf;
                }
            }
            s += "\n";
        }
    }
    return s;
}

namespace {

std::string policy_name(const std::string& spec) { return spec.substr(0, spec.find(':')); }

LineChart chart_by_family(const EqualReport& r, const std::string& method_name,
                          const std::function<bool(const EqualRun&, double*, double*, double*, double*)>& xy) {
    LineChart c;
    c.log_x = true;
    std::vector<std::string> order;
    std::map<std::string, std::vector<std::array<double, 4>>> pts;
    auto add = [&](const std::string& spec) {
        const EqualRun& run = r.runs.at(spec);
        double x = 0, y = 0, lo = NAN, hi = NAN;
        if (!xy(run, &x, &y, &lo, &hi)) return;
        const std::string f = family_of(spec);
        if (!pts.count(f)) order.push_back(f);
        auto& v = pts[f];
        if (std::none_of(v.begin(), v.end(), [&](const auto& p) { return p[0] == x && p[1] == y; })) v.push_back({x, y, lo, hi});
    };
    for (const EqualPoint& pt : r.points) {
        if (policy_name(pt.method) == method_name) add(pt.method);
    }
    for (const EqualPoint& pt : r.points) {
        if (policy_name(pt.method) != method_name) continue;
        for (const BudgetMatch& m : pt.ppl_match) add(m.spec);
        for (const BudgetMatch& m : pt.niah_match) add(m.spec);
    }
    for (const std::string& f : order) {
        auto v = pts[f];
        std::sort(v.begin(), v.end());
        LineChart::Series s{f, {}, {}};
        for (const auto& p : v) {
            s.x.push_back(p[0]), s.y.push_back(p[1]), s.y_lo.push_back(p[2]), s.y_hi.push_back(p[3]);
        }
        c.series.push_back(std::move(s));
    }
    return c;
}

}  // namespace

std::vector<std::string> equal_method_names(const EqualReport& r) {
    std::vector<std::string> out;
    for (const EqualPoint& pt : r.points) {
        const std::string n = policy_name(pt.method);
        if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
    }
    return out;
}

LineChart equal_kld_chart(const EqualReport& r, const std::string& method_name) {
    LineChart c = chart_by_family(r, method_name, [](const EqualRun& run, double* x, double* y, double*, double*) {
        if (run.ppl.empty()) return false;
        *x = run.kv_context / 1024.0, *y = run.kld_mean;
        return true;
    });
    double top = 0.0;  // the methods' largest KLD
    for (const auto& s : c.series) {
        if (policy_name(s.name) == method_name) top = std::max(top, *std::max_element(s.y.begin(), s.y.end()));
    }
    std::string off;
    std::erase_if(c.series, [&](const LineChart::Series& s) {
        const bool drop = policy_name(s.name) != method_name && top > 0.0 &&
                          *std::min_element(s.y.begin(), s.y.end()) > 2.5 * top;
        if (drop) off += (off.empty() ? "" : ", ") + s.name;
        return drop;
    });
    c.title = method_name + " vs baselines at equal KV, " + r.model + (off.empty() ? "" : " (off scale: " + off + ")");
    c.x_label = "KV KiB after the context (log)";
    c.y_label = "KLD mean (nats/token)";
    return c;
}

LineChart equal_niah_chart(const EqualReport& r, const std::string& protocol, const std::string& method_name) {
    LineChart c = chart_by_family(r, method_name, [&](const EqualRun& run, double* x, double* y, double* lo, double* hi) {
        auto it = run.niah.find(protocol);
        if (it == run.niah.end()) return false;
        const Acc a = niah_acc(it->second);
        *x = run.niah_kv_context.at(protocol) / 1024.0;
        *y = a.n ? double(a.correct) / double(a.n) : 0.0;
        *lo = wilson_interval(a.correct, a.n).first, *hi = wilson_interval(a.correct, a.n).second;
        return true;
    });
    c.y_min = 0.0, c.y_max = 1.0;
    c.title = method_name + " NIAH (" + protocol + ") at equal KV, " + r.model;
    c.x_label = "KV KiB after the prompt (log)";
    c.y_label = "needle accuracy (bars: 95% Wilson interval)";
    return c;
}

std::string equal_json(const EqualReport& r, const EqualConfig& cfg) {
    nlohmann::json j;
    j["model"] = r.model;
    j["tolerance"] = cfg.tolerance;
    for (bool aware : cfg.protocols) j["protocols"].push_back(proto_name(aware));
    j["texts"] = cfg.text_names;
    j["window"] = cfg.ppl.n_window;
    j["context"] = cfg.ppl.n_context;
    j["max_windows"] = cfg.ppl.max_windows;
    j["full_kv_bytes_context"] = r.full_kv_ppl;
    if (!cfg.niah.haystack_files.empty()) {
        j["niah"] = {{"length", cfg.niah.lengths[0]}, {"depths", cfg.niah.depths}, {"trials", cfg.niah.trials},
                     {"seed", cfg.niah.seed}, {"haystack", cfg.niah.haystack_files}};
    }
    auto match_json = [](const BudgetMatch& m) {
        return nlohmann::json{{"spec", m.spec}, {"budget", m.budget}, {"probe_bytes", m.bytes}, {"target", m.target}};
    };
    for (const EqualPoint& pt : r.points) {
        nlohmann::json p = {{"method", pt.method}, {"target_ppl", pt.target_ppl}, {"target_niah", pt.target_niah}};
        for (const BudgetMatch& m : pt.ppl_match) p["ppl_match"].push_back(match_json(m));
        for (const BudgetMatch& m : pt.niah_match) p["niah_match"].push_back(match_json(m));
        j["points"].push_back(p);
    }
    for (const auto& [spec, run] : r.runs) {
        nlohmann::json x = {{"spec", spec}};
        for (const auto& [t, pr] : run.ppl) {
            x["ppl"][t] = {{"kld_mean", pr.kld_mean}, {"kld_p99", pr.kld_p99}, {"top1", pr.top1}, {"ppl", pr.ppl},
                           {"n_scored", pr.n_scored},
                           {"kv_bytes_context", pr.kv_bytes_context}, {"kv_bytes_end", pr.kv_bytes_end}};
        }
        for (const auto& [p, nr] : run.niah) {
            const Acc a = niah_acc(nr);
            nlohmann::json cells = nlohmann::json::array();
            for (const NiahCell& c : nr.cells) {
                cells.push_back({{"length", c.length}, {"depth", c.depth}, {"correct", c.correct}, {"trials", c.trials},
                                 {"answers", c.answers}, {"expected", c.expected}});
            }
            x["niah"][p] = {{"correct", a.correct}, {"n", a.n}, {"se", binomial_se(a.correct, a.n)},
                            {"kv_bytes_context", run.niah_kv_context.at(p)}, {"cells", cells}};
        }
        j["runs"].push_back(x);
    }
    return j.dump(1);
}

Expected<EqualReport> equal_from_json(const std::string& text, EqualConfig* cfg) {
    try {
        const nlohmann::json j = nlohmann::json::parse(text);
        EqualReport r;
        r.model = j.at("model").get<std::string>();
        r.full_kv_ppl = j.at("full_kv_bytes_context").get<double>();
        cfg->tolerance = j.at("tolerance").get<double>();
        cfg->text_names = j.at("texts").get<std::vector<std::string>>();
        cfg->protocols.clear();
        cfg->niah.haystack_files.clear();
        if (j.contains("niah")) {
            cfg->niah.haystack_files = j["niah"].at("haystack").get<std::vector<std::string>>();
            if (j.contains("protocols")) {
                for (const auto& p : j["protocols"]) cfg->protocols.push_back(p.get<std::string>() == "aware");
            } else {  // reports written before the list was recorded: the protocols the runs have
                for (const char* p : {"aware", "agnostic"}) {
                    for (const auto& x : j.at("runs")) {
                        if (x.contains("niah") && x["niah"].contains(p)) {
                            cfg->protocols.push_back(std::string(p) == "aware");
                            break;
                        }
                    }
                }
            }
        }
        auto match = [](const nlohmann::json& m) {
            return BudgetMatch{m.at("spec").get<std::string>(), m.at("budget").get<int32_t>(),
                               m.at("probe_bytes").get<double>(), m.at("target").get<double>()};
        };
        for (const auto& p : j.at("points")) {
            EqualPoint pt;
            pt.method = p.at("method").get<std::string>();
            pt.target_ppl = p.at("target_ppl").get<double>();
            pt.target_niah = p.at("target_niah").get<double>();
            const nlohmann::json pm = p.value("ppl_match", nlohmann::json::array());
            const nlohmann::json nm = p.value("niah_match", nlohmann::json::array());
            for (const auto& m : pm) pt.ppl_match.push_back(match(m));
            for (const auto& m : nm) pt.niah_match.push_back(match(m));
            r.points.push_back(std::move(pt));
        }
        for (const auto& x : j.at("runs")) {
            EqualRun run;
            run.spec = x.at("spec").get<std::string>();
            const nlohmann::json ppl = x.value("ppl", nlohmann::json::object());  // kept alive: items() is a view
            for (const auto& [t, v] : ppl.items()) {
                PplResult pr;
                pr.policy = run.spec;
                pr.kld_mean = v.at("kld_mean").get<double>();
                pr.kld_p99 = v.at("kld_p99").get<double>();
                pr.top1 = v.at("top1").get<double>();
                pr.ppl = v.at("ppl").get<double>();
                pr.kv_bytes_context = v.at("kv_bytes_context").get<double>();
                pr.kv_bytes_end = v.at("kv_bytes_end").get<double>();
                run.ppl[t] = pr;
            }
            run.kld_min = INFINITY, run.kld_max = -INFINITY;
            for (const auto& [t, pr] : run.ppl) {
                const double n = double(run.ppl.size());
                run.kld_mean += pr.kld_mean / n, run.top1 += pr.top1 / n;
                run.kv_context += pr.kv_bytes_context / n, run.kv_end += pr.kv_bytes_end / n;
                run.kld_min = std::min(run.kld_min, pr.kld_mean), run.kld_max = std::max(run.kld_max, pr.kld_mean);
            }
            const nlohmann::json niah = x.value("niah", nlohmann::json::object());
            for (const auto& [p, v] : niah.items()) {
                NiahResult nr;
                nr.policy = run.spec;
                for (const auto& c : v.at("cells")) {
                    NiahCell cell;
                    cell.length = c.value("length", 0);
                    cell.depth = c.at("depth").get<double>();
                    cell.correct = c.at("correct").get<int32_t>();
                    cell.trials = c.at("trials").get<int32_t>();
                    cell.answers = c.at("answers").get<std::vector<std::string>>();
                    cell.expected = c.at("expected").get<std::vector<std::string>>();
                    nr.cells.push_back(std::move(cell));
                }
                run.niah_kv_context[p] = v.at("kv_bytes_context").get<double>();
                run.niah[p] = std::move(nr);
            }
            r.runs[run.spec] = std::move(run);
        }
        for (const EqualPoint& pt : r.points) {  // every spec the table names has a run
            if (!r.runs.count(pt.method)) return Status::invalid("equal: JSON has no run of '%s'", pt.method.c_str());
            for (const auto* ms : {&pt.ppl_match, &pt.niah_match}) {
                for (const BudgetMatch& m : *ms) {
                    if (!r.runs.count(m.spec)) return Status::invalid("equal: JSON has no run of '%s'", m.spec.c_str());
                }
            }
        }
        return r;
    } catch (const std::exception& e) {
        return Status::invalid("equal: not an eval equal JSON report: %s", e.what());
    }
}

}  // namespace hkv::eval
