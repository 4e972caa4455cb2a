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
    // The smallest budget whose bytes reach the target (hi when none does).
    int32_t a = lo, z = hi;
    if (*at_hi >= target) {
        while (a < z) {
            const int32_t m = a + (z - a) / 2;
            const std::optional<double> v = f(m);
            if (v && *v >= target) z = m;
            else a = m + 1;
        }
    }
    int32_t best = z;
    double best_bytes = *f(z);
    if (z > lo) {  // the budget below may be closer from under the target
        const std::optional<double> below = f(z - 1);
        if (below && std::fabs(*below - target) < std::fabs(best_bytes - target)) best = z - 1, best_bytes = *below;
    }
    // Of the budgets holding the same bytes (pages and 8-slot tails), the largest.
    if (best < hi) {
        const std::optional<double> top = f(hi);
        if (top && *top == best_bytes) {
            best = hi;
        } else {
            int32_t same = best, more = hi;  // f(same) == best_bytes < f(more)
            while (more - same > 1) {
                const int32_t m = same + (more - same) / 2;
                const std::optional<double> v = f(m);
                if (v && *v == best_bytes) same = m;
                else more = m;
            }
            best = same;
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

LineChart chart_by_family(const EqualReport& r, const std::function<bool(const EqualRun&, double*, double*, double*)>& xy) {
    LineChart c;
    c.log_x = true;
    std::vector<std::string> order;
    std::map<std::string, std::vector<std::array<double, 3>>> pts;
    auto add = [&](const std::string& spec) {
        const EqualRun& run = r.runs.at(spec);
        double x = 0, y = 0, e = 0;
        if (!xy(run, &x, &y, &e)) return;
        const std::string f = family_of(spec);
        if (!pts.count(f)) order.push_back(f);
        auto& v = pts[f];
        if (std::none_of(v.begin(), v.end(), [&](const auto& p) { return p[0] == x && p[1] == y; })) v.push_back({x, y, e});
    };
    for (const EqualPoint& pt : r.points) add(pt.method);
    for (const EqualPoint& pt : r.points) {
        for (const BudgetMatch& m : pt.ppl_match) add(m.spec);
        for (const BudgetMatch& m : pt.niah_match) add(m.spec);
    }
    for (const std::string& f : order) {
        auto v = pts[f];
        std::sort(v.begin(), v.end());
        LineChart::Series s{f, {}, {}};
        for (const auto& p : v) s.x.push_back(p[0]), s.y.push_back(p[1]), s.y_err.push_back(p[2]);
        c.series.push_back(std::move(s));
    }
    return c;
}

}  // namespace

LineChart equal_kld_chart(const EqualReport& r) {
    LineChart c = chart_by_family(r, [](const EqualRun& run, double* x, double* y, double* e) {
        if (run.ppl.empty()) return false;
        *x = run.kv_context / 1024.0, *y = run.kld_mean, *e = 0.0;
        return true;
    });
    c.title = "KLD vs KV after the context, " + r.model;
    c.x_label = "KV KiB after the context (log)";
    c.y_label = "KLD mean (nats/token)";
    return c;
}

LineChart equal_niah_chart(const EqualReport& r, const std::string& protocol) {
    LineChart c = chart_by_family(r, [&](const EqualRun& run, double* x, double* y, double* e) {
        auto it = run.niah.find(protocol);
        if (it == run.niah.end()) return false;
        const Acc a = niah_acc(it->second);
        *x = run.niah_kv_context.at(protocol) / 1024.0;
        *y = a.n ? double(a.correct) / double(a.n) : 0.0;
        *e = binomial_se(a.correct, a.n);
        return true;
    });
    c.title = "NIAH (" + protocol + ") vs KV, " + r.model;
    c.x_label = "KV KiB after the prompt (log)";
    c.y_label = "accuracy (bars: 1 binomial SE)";
    return c;
}

std::string equal_json(const EqualReport& r, const EqualConfig& cfg) {
    nlohmann::json j;
    j["model"] = r.model;
    j["tolerance"] = cfg.tolerance;
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
                           {"kv_bytes_context", pr.kv_bytes_context}, {"kv_bytes_end", pr.kv_bytes_end}};
        }
        for (const auto& [p, nr] : run.niah) {
            const Acc a = niah_acc(nr);
            nlohmann::json cells = nlohmann::json::array();
            for (const NiahCell& c : nr.cells) {
                cells.push_back({{"depth", c.depth}, {"correct", c.correct}, {"trials", c.trials},
                                 {"answers", c.answers}, {"expected", c.expected}});
            }
            x["niah"][p] = {{"correct", a.correct}, {"n", a.n}, {"se", binomial_se(a.correct, a.n)},
                            {"kv_bytes_context", run.niah_kv_context.at(p)}, {"cells", cells}};
        }
        j["runs"].push_back(x);
    }
    return j.dump(1);
}

}  // namespace hkv::eval
