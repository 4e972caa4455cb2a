// heterokv eval equal — the standard equal-memory comparison (tools/eval/equal.h): each seed-method
// spec against every baseline at the same KV bytes after the context; KLD/top-1 on texts, NIAH in
// both protocols; writes PREFIX.md, PREFIX.json and per seed policy the plots PREFIX_kld_<policy> and
// PREFIX_niah_<protocol>_<policy> (.svg/.png).
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "eval/equal.h"
#include "eval/plot.h"
#include "eval_args.h"
#include "heterokv/model.h"
#include "record.h"

namespace hkv::cli {

namespace {

// PREFIX.md and the plots (the table also to stdout).
template <typename Opts>
int write_outputs(const Opts& o, const eval::EqualConfig& cfg, const eval::EqualReport& rep) {
    const std::string md = eval::equal_table_md(rep, cfg);
    std::printf("%s", md.c_str());
    Status st = eval::write_file(o.out + ".md", md);
    std::vector<std::pair<std::string, eval::LineChart>> charts;
    for (const std::string& name : eval::equal_method_names(rep)) {
        charts.push_back({"_kld_" + name, eval::equal_kld_chart(rep, name)});
        if (cfg.niah.haystack_files.empty()) continue;
        for (bool aware : cfg.protocols) {
            const std::string p = aware ? "aware" : "agnostic";
            charts.push_back({"_niah_" + p + "_" + name, eval::equal_niah_chart(rep, p, name)});
        }
    }
    for (const auto& [suffix, chart] : charts) {
        if (st.ok()) st = eval::write_figure(o.out + suffix, chart);
    }
    return st.ok() ? 0 : fail(st);
}

}  // namespace

Runner add_eval_equal(CLI::App& app) {
    struct Opts {
        std::string model, out = "equal", depths = "0.1,0.3,0.5,0.7,0.9", protocols = "aware,agnostic";
        std::vector<std::string> methods, files, haystack;
        std::vector<std::string> baselines = {"snapkv,pyramidkv,adakv,chunkkv,streaming,h2o"};
        int32_t n_window = 512, n_context = 256, max_windows = 8, n_ctx = 0, n_threads = 0, page_size = 64;
        int32_t length = 2048, trials = 4, probe_windows = 2;
        uint64_t seed = 1;
        double tolerance = 0.03;
        std::string kv_cold_dir, replot;
    };
    auto o = std::make_shared<Opts>();
    app.add_option("-m,--model", o->model, "GGUF model file (required unless --replot)")->check(CLI::ExistingFile);
    app.add_option("--method", o->methods,
                   "seed-method spec, one memory point each (repeat, required unless --replot), e.g. ems:budget=256");
    app.add_option("--baselines", o->baselines,
                   "baseline families (comma-separated names, or one `name:k=v,...` per option; no budget)")
        ->capture_default_str();
    app.add_option("-f,--file", o->files, "text files for KLD/top-1 (repeat; required unless --replot)")
        ->check(CLI::ExistingFile);
    app.add_option("--replot", o->replot, "re-render PREFIX.md and the plots from a PREFIX.json of an earlier run "
                                          "(nothing is run)");
    app.add_option("--window", o->n_window, "eval ppl: tokens per window")->capture_default_str();
    app.add_option("--context", o->n_context, "eval ppl: context tokens per window (the bytes matched)")
        ->capture_default_str();
    app.add_option("--max-windows", o->max_windows, "eval ppl: windows per text (0: all)")->capture_default_str();
    app.add_option("-c,--ctx-size", o->n_ctx, "eval ppl: the context limit (0: the file's)")->capture_default_str();
    app.add_option("--probe-windows", o->probe_windows, "contexts of the first text a budget probe averages")
        ->capture_default_str();
    app.add_option("--haystack", o->haystack, "NIAH haystack files or folders (none: KLD only)");
    app.add_option("--length", o->length, "NIAH: context length in tokens")->capture_default_str();
    app.add_option("--depths", o->depths, "NIAH: needle depths")->capture_default_str();
    app.add_option("--trials", o->trials, "NIAH: needles per depth")->capture_default_str();
    app.add_option("--protocols", o->protocols, "NIAH: aware, agnostic or both")->capture_default_str();
    app.add_option("--seed", o->seed, "NIAH: seed")->check(kU64Check)->capture_default_str();
    app.add_option("--tolerance", o->tolerance, "flag a baseline whose bytes differ by more than this fraction")
        ->capture_default_str();
    app.add_option("--kv-page-size", o->page_size, "KV cache page size in slots")->capture_default_str();
    app.add_option("--kv-cold-dir", o->kv_cold_dir, "folder for heterocache's cold tier (default: host RAM)");
    app.add_option("-t,--threads", o->n_threads, "threads (0: all cores)")->capture_default_str();
    app.add_option("-o,--out", o->out, "output prefix: PREFIX.md, PREFIX.json, per seed policy PREFIX_kld_<policy> and "
                                       "PREFIX_niah_<protocol>_<policy> (.svg/.png)")
        ->capture_default_str();
    return [o]() -> int {
        eval::EqualConfig cfg;
        if (!o->replot.empty()) {
            auto text = file_read(o->replot, kFileMaxJson, "--replot");
            if (!text.ok()) return fail(text.status());
            auto rep = eval::equal_from_json(*text, &cfg);
            if (!rep.ok()) return fail(rep.status());
            if (Status st = prepare_output_prefix(o->out); !st.ok()) return fail(st);
            return write_outputs(*o, cfg, *rep);
        }
        if (o->model.empty() || o->methods.empty() || o->files.empty()) {
            return usage_fail(Status::invalid("eval equal: -m, --method and -f are required (or --replot FILE)"));
        }
        cfg.methods = o->methods;
        cfg.baselines.clear();
        for (const std::string& b : o->baselines) {
            if (b.find(':') == std::string::npos) {
                for (const std::string& n : csv_split(b)) cfg.baselines.push_back(n);
            } else {
                cfg.baselines.push_back(b);
            }
        }
        for (const std::string& b : cfg.baselines) {
            if (("," + b.substr(b.find(':') + 1)).find(",budget=") != std::string::npos || b == "full") {
                return fail(Status::invalid("--baselines '%s': a family without budget (the search sets it)", b.c_str()));
            }
        }
        if (!(o->tolerance > 0.0 && o->tolerance < 1.0)) {
            return fail(Status::invalid("--tolerance %g: expected a fraction in (0, 1)", o->tolerance));
        }
        if (o->n_context < 1 || o->n_context >= o->n_window) {
            return fail(Status::invalid("--context %d: expected 1 .. window - 1 (%d)", o->n_context, o->n_window - 1));
        }
        cfg.tolerance = o->tolerance;
        cfg.probe_windows = o->probe_windows;
        cfg.ppl.n_window = o->n_window;
        cfg.ppl.n_context = o->n_context;
        cfg.ppl.max_windows = o->max_windows;
        cfg.ppl.n_ctx = o->n_ctx;
        cfg.ppl.n_threads = o->n_threads;
        cfg.ppl.kv_page_size = o->page_size;
        cfg.ppl.kv_cold_dir = o->kv_cold_dir;
        cfg.protocols.clear();
        for (const std::string& p : csv_split(o->protocols)) {
            if (p != "aware" && p != "agnostic") {
                return fail(Status::invalid("--protocols '%s': expected aware, agnostic or both", o->protocols.c_str()));
            }
            cfg.protocols.push_back(p == "aware");
        }
        if (!o->haystack.empty()) {
            if (cfg.protocols.empty()) return fail(Status::invalid("--protocols: empty list"));
            if (Status st = expand_haystack(o->haystack, &cfg.niah.haystack_files); !st.ok()) return fail(st);
            cfg.niah.lengths = {o->length};
            cfg.niah.depths.clear();
            for (const std::string& d : csv_split(o->depths)) {
                char* end = nullptr;
                const double v = std::strtod(d.c_str(), &end);
                if (*end != '\0' || !(v >= 0.0 && v <= 1.0)) {
                    return fail(Status::invalid("--depths '%s': expected numbers in [0, 1]", o->depths.c_str()));
                }
                cfg.niah.depths.push_back(v);
            }
            if (cfg.niah.depths.empty()) return fail(Status::invalid("--depths: empty list"));
            cfg.niah.trials = o->trials;
            cfg.niah.seed = o->seed;
        }
        std::vector<std::string> specs = cfg.methods;
        for (const std::string& b : cfg.baselines) specs.push_back(eval::budget_spec(b, o->n_context));
        if (Status st = policies_check(specs); !st.ok()) return fail(st);
        if (Status st = check_kv_cold_dir(o->kv_cold_dir, cfg.methods); !st.ok()) return fail(st);
        if (Status st = prepare_output_prefix(o->out); !st.ok()) return fail(st);
        auto model = model_load(o->model);
        if (!model.ok()) return fail(model.status());
        for (const std::string& f : o->files) {
            auto text = file_read(f, kFileMaxText, "-f");
            if (!text.ok()) return fail(text.status());
            cfg.text_names.push_back(std::filesystem::path(f).filename().string());
            cfg.texts.push_back(eval::ppl_tokenize(**model, *text));
        }
        auto rep = eval::equal_run(*model, cfg, [](const std::string& s) { std::fprintf(stderr, "heterokv: %s\n", s.c_str()); });
        if (!rep.ok()) return fail(rep.status());
        rep->model = std::filesystem::path(o->model).stem().string();
        nlohmann::json j = nlohmann::json::parse(eval::equal_json(*rep, cfg));
        record_run(j, o->n_threads);
        if (Status st = eval::write_file(o->out + ".json", j.dump(1)); !st.ok()) return fail(st);
        return write_outputs(*o, cfg, *rep);
    };
}

}  // namespace hkv::cli
