// heterokv eval niah — needle in a haystack over context lengths x needle depths, for one or more
// policies; writes a JSON of results and, per policy, a heatmap (SVG and PNG).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.h"
#include "record.h"
#include "progress.h"
#include "eval_args.h"
#include "eval/figures.h"
#include "eval/niah.h"
#include "eval/plot.h"
#include "heterokv/policy.h"

namespace hkv::cli {

Runner add_eval_niah(CLI::App& app) {
    struct Opts {
        KvTypeOptions kv_types;
        std::string model, out = "niah";
        std::vector<std::string> haystack, policies = {"full"};
        std::string lengths = "512,1024,2048", depths = "0,0.25,0.5,0.75,1";
        std::string protocol = "agnostic";
        std::string keys_file;
        eval::NiahConfig cfg;
        int32_t n_threads = 0;
        std::string kv_cold_dir, replot;
    };
    auto o = std::make_shared<Opts>();
    app.add_option("-m,--model", o->model, "GGUF model file (required unless --replot)")->check(CLI::ExistingFile);
    app.add_option("--haystack", o->haystack,
                   "haystack text files or folders (all *.txt inside, sorted; required unless --replot)");
    app.add_option("--replot", o->replot, "re-draw the heatmaps PREFIX_<policy>.svg/.png from a PREFIX.json of an "
                                          "earlier run (nothing is run)");
    app.add_option("--policy", o->policies, "policy spec(s) to evaluate; repeat for several")->capture_default_str();
    app.add_option("--lengths", o->lengths, "context lengths in tokens, comma-separated")->capture_default_str();
    app.add_option("--depths", o->depths, "needle depths in [0, 1], comma-separated")->capture_default_str();
    app.add_option("--trials", o->cfg.trials, "trials per cell (different key and value each)")->capture_default_str();
    app.add_option("--needle", o->cfg.needle, "needle text; {key} and {value} are substituted")->capture_default_str();
    app.add_option("--question", o->cfg.question, "question text; {key} is substituted")->capture_default_str();
    app.add_option("--keys-file", o->keys_file, "file with one key word per line (default: built-in nouns)")
        ->check(CLI::ExistingFile);
    app.add_option("--digits", o->cfg.value_digits, "digits of the needle's value")->capture_default_str();
    app.add_option("--n-gen", o->cfg.n_gen, "tokens generated for the answer")->capture_default_str();
    app.add_option("--protocol", o->protocol,
                   "agnostic: compress the context, then ask; aware: the question is in the compressed prompt")
        ->capture_default_str();
    app.add_option("--seed", o->cfg.seed, "seed for keys and values")->check(kU64Check)->capture_default_str();
    app.add_option("-t,--threads", o->n_threads, "threads (0: all cores)")->capture_default_str();
    o->kv_types.add(app);
    app.add_option("--kv-cold-dir", o->kv_cold_dir, "folder for the cold tier of policies that have one (heterocache: satellites' full prompt KV); default: host RAM");
    app.add_option("-o,--out", o->out, "output prefix: PREFIX.json, PREFIX_<policy>.svg/.png")->capture_default_str();
    return [o]() -> int {
        if (!o->replot.empty()) {
            const Status st = replot_figures(o->replot, o->out, eval::niah_replot);
            return st.ok() ? 0 : fail(st);
        }
        if (o->model.empty() || o->haystack.empty()) {
            return usage_fail(Status::invalid("eval niah: -m and --haystack are required (or --replot FILE)"));
        }
        eval::NiahConfig cfg = o->cfg;
        cfg.query_aware = o->protocol == "aware";
        if (o->protocol != "aware" && o->protocol != "agnostic") {
            return fail(Status::invalid("--protocol '%s': expected agnostic or aware", o->protocol.c_str()));
        }
        auto parse = [](const std::string& s, auto conv, auto& out) -> bool {
            out.clear();
            std::stringstream ss(s);
            std::string it;
            while (std::getline(ss, it, ',')) {
                try {
                    size_t used = 0;
                    out.push_back(conv(it, &used));
                    if (used != it.size()) return false;
                } catch (...) {
                    return false;
                }
            }
            return !out.empty();
        };
        if (!parse(o->lengths, [](const std::string& s, size_t* u) { return int32_t(std::stoi(s, u)); }, cfg.lengths)) {
            return fail(Status::invalid("--lengths '%s': expected comma-separated integers", o->lengths.c_str()));
        }
        if (!parse(o->depths, [](const std::string& s, size_t* u) { return std::stod(s, u); }, cfg.depths)) {
            return fail(Status::invalid("--depths '%s': expected comma-separated numbers in [0, 1]", o->depths.c_str()));
        }
        if (Status st = expand_haystack(o->haystack, &cfg.haystack_files); !st.ok()) return fail(st);
        if (!o->keys_file.empty()) {
            auto keys = file_read(o->keys_file, kFileMaxSmall, "--keys-file");
            if (!keys.ok()) return fail(keys.status());
            std::istringstream in(*keys);
            for (std::string w; std::getline(in, w);) {
                if (!w.empty() && w.find(' ') == std::string::npos) cfg.keys.push_back(w);
            }
            if (cfg.keys.empty()) return fail(Status::invalid("--keys-file %s has no words", o->keys_file.c_str()));
        }
        for (const std::string& p : o->policies) {  // validate every spec before the long run
            auto pol = policy_create(p);
            if (!pol.ok()) return fail(pol.status());
        }
        if (Status st = check_kv_cold_dir(o->kv_cold_dir, o->policies); !st.ok()) return fail(st);
        if (Status st = prepare_output_prefix(o->out); !st.ok()) return fail(st);
        auto model = model_load(o->model);
        if (!model.ok()) return fail(model.status());
        const int32_t n_train = model_info(**model).n_ctx_train;
        for (int32_t len : cfg.lengths) {  // a needle the model was never trained to reach scores 0 silently
            if (n_train > 0 && len + cfg.n_gen > n_train) {
                std::fprintf(stderr, "heterokv: warning: --lengths %d (+ %d answer tokens) is beyond the model's "
                             "training context of %d tokens; expect accuracy near 0 there\n", len, cfg.n_gen, n_train);
            }
        }
        ContextParams cp;
        cp.n_threads = o->n_threads;
        if (Status st = o->kv_types.apply(cp); !st.ok()) return fail(st);
        cp.kv_cold_dir = o->kv_cold_dir;
        if (Status st = policies_check(**model, cp.n_ctx, o->policies); !st.ok()) return fail(st);
        nlohmann::json j;
        record_run(j, o->n_threads);
        j["model"] = o->model;
        j["protocol"] = o->protocol;
        j["trials"] = cfg.trials;
        j["lengths"] = cfg.lengths;
        j["depths"] = cfg.depths;
        j["needle"] = cfg.needle;
        j["question"] = cfg.question;
        j["seed"] = cfg.seed;
        for (const std::string& p : o->policies) {
            Progress bar("niah " + p, "cells");
            auto res = eval::niah_run(*model, cp, p, cfg, [&bar](const std::string&, size_t done, size_t total,
                                                                 const eval::NiahCell& c) {
                char detail[96];
                std::snprintf(detail, sizeof(detail), "len %d, depth %.2f: %d/%d", c.length, c.depth, c.correct, c.trials);
                bar.update(int64_t(done), int64_t(total), detail);
            });
            bar.end();
            if (!res.ok()) return fail(res.status());
            std::vector<std::vector<double>> acc(cfg.depths.size(), std::vector<double>(cfg.lengths.size(), NAN));
            nlohmann::json cells = nlohmann::json::array();
            for (size_t i = 0; i < res->cells.size(); ++i) {
                const eval::NiahCell& c = res->cells[i];
                acc[i % cfg.depths.size()][i / cfg.depths.size()] = double(c.correct) / double(c.trials);
                cells.push_back({{"length", c.length}, {"depth", c.depth}, {"correct", c.correct},
                                 {"trials", c.trials}, {"prompt_tokens", c.prompt_tokens}, {"kv_bytes", c.kv_bytes},
                                 {"answers", c.answers}, {"expected", c.expected}});
            }
            j["results"].push_back({{"policy", p}, {"accuracy", res->accuracy()}, {"cells", cells}});
            const std::string slug = eval::policy_slug(p);
            Status st = eval::write_figure(o->out + "_" + slug,
                                           eval::niah_heatmap(p, o->protocol, cfg.lengths, cfg.depths, acc, cfg.trials));
            if (!st.ok()) return fail(st);
            std::printf("%-40s accuracy %.3f  (%s_%s.svg%s)\n", p.c_str(), res->accuracy(), o->out.c_str(),
                        slug.c_str(), eval::png_available() ? "/.png" : "");
        }
        Status st = eval::write_file(o->out + ".json", j.dump(1));
        if (!st.ok()) return fail(st);
        return 0;
    };
}

}  // namespace hkv::cli
