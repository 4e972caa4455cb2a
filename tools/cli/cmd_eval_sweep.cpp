// heterokv eval sweep — one task (ruler, niah or longbench) over policies x budgets with the same
// samples for every spec; writes PREFIX.md (table), PREFIX.json, PREFIX.svg/.png (budget-accuracy).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "record.h"
#include "eval/figures.h"
#include "eval/longbench.h"
#include "eval/niah.h"
#include "eval/plot.h"
#include "eval/ruler.h"
#include "eval/sweep.h"
#include "eval_args.h"
#include "heterokv/model.h"

namespace hkv::cli {

Runner add_eval_sweep(CLI::App& app) {
    struct Opts {
        KvTypeOptions kv_types;
        std::string model, task = "ruler", out = "sweep", budgets = "64,128,256", extra;
        std::vector<std::string> policies = {"snapkv", "streaming", "quest"};
        // ruler
        std::string ruler_tasks = "niah_single_1", data = default_data_dir(), protocol = "agnostic", needle, question;
        int32_t length = 1024, samples = 10;
        uint64_t seed = 42;
        // niah
        std::vector<std::string> haystack = {default_data_dir() + "/haystack/essays"};
        std::string lengths = "1024,2048", depths = "0,0.25,0.5,0.75,1";
        int32_t trials = 2;
        // longbench
        std::string file;
        int32_t rows = 5;
        int32_t n_threads = 0;
        std::string replot;
        int64_t n = 0;
    };
    auto o = std::make_shared<Opts>();
    app.add_option("-m,--model", o->model, "GGUF model file (required unless --replot)")->check(CLI::ExistingFile);
    app.add_option("--replot", o->replot, "re-write PREFIX.md and PREFIX.svg/.png from a PREFIX.json of an earlier "
                                          "run (nothing is run)");
    app.add_option("--n", o->n, "--replot: graded answers per point, for error bars from a JSON written before "
                                "it recorded n")
        ->check(CLI::PositiveNumber);
    app.add_option("--task", o->task, "ruler, niah or longbench")->capture_default_str();
    app.add_option("--policies", o->policies,
                   "policies (comma-separated names, or one `name:k=v,...` per option); full is always added")
        ->capture_default_str();
    app.add_option("--budgets", o->budgets, "KV budgets (slots per head), comma-separated")->capture_default_str();
    app.add_option("--policy-opts", o->extra, "options added to every compressed spec, e.g. sinks=8");
    app.add_option("--ruler-tasks", o->ruler_tasks, "ruler: tasks averaged per point, comma-separated")->capture_default_str();
    app.add_option("--length", o->length, "ruler: token budget of the samples")->capture_default_str();
    app.add_option("--samples", o->samples, "ruler: samples per task")->capture_default_str();
    app.add_option("--data", o->data, "ruler: word lists and essay folder")->capture_default_str();
    app.add_option("--protocol", o->protocol, "ruler/niah: agnostic or aware")->capture_default_str();
    app.add_option("--seed", o->seed, "ruler/niah: seed")->check(kU64Check)->capture_default_str();
    app.add_option("--niah-needle", o->needle, "ruler: niah needle text instead of RULER's (see eval ruler)");
    app.add_option("--niah-question", o->question, "ruler: niah question instead of RULER's (see eval ruler)");
    app.add_option("--haystack", o->haystack, "niah: haystack files or folders")->capture_default_str();
    app.add_option("--lengths", o->lengths, "niah: context lengths")->capture_default_str();
    app.add_option("--depths", o->depths, "niah: needle depths")->capture_default_str();
    app.add_option("--trials", o->trials, "niah: trials per cell")->capture_default_str();
    app.add_option("-f,--file", o->file, "longbench: LongBench-format jsonl (config files beside it)");
    app.add_option("--rows", o->rows, "longbench: first N rows")->capture_default_str();
    app.add_option("-t,--threads", o->n_threads, "threads (0: all cores)")->capture_default_str();
    o->kv_types.add(app);
    app.add_option("-o,--out", o->out, "output prefix: PREFIX.md, PREFIX.json, PREFIX.svg/.png")->capture_default_str();
    return [o]() -> int {
        if (!o->replot.empty()) {
            auto text = file_read(o->replot, kFileMaxJson, "--replot");
            if (!text.ok()) return fail(text.status());
            auto r = eval::sweep_from_json(*text, o->n);
            if (!r.ok()) return fail(r.status());
            if (Status st = prepare_output_prefix(o->out); !st.ok()) return fail(st);
            const std::string md = eval::sweep_table_md(*r);
            std::printf("%s", md.c_str());
            Status st = eval::write_file(o->out + ".md", md);
            if (st.ok()) st = eval::write_figure(o->out, eval::sweep_chart(*r));
            return st.ok() ? 0 : fail(st);
        }
        if (o->model.empty()) return usage_fail(Status::invalid("eval sweep: -m is required (or --replot FILE)"));
        if (o->task != "ruler" && o->task != "niah" && o->task != "longbench") {
            return fail(Status::invalid("--task '%s': expected ruler, niah or longbench", o->task.c_str()));
        }
        if (o->protocol != "aware" && o->protocol != "agnostic") {
            return fail(Status::invalid("--protocol '%s': expected agnostic or aware", o->protocol.c_str()));
        }
        std::vector<std::string> names;  // `a,b` lists split; specs with options kept whole
        for (const std::string& p : o->policies) {
            if (p.find(':') == std::string::npos) {
                for (const std::string& n : csv_split(p)) names.push_back(n);
            } else {
                names.push_back(p);
            }
        }
        auto budgets = csv_ints(o->budgets, "--budgets");
        if (!budgets.ok()) return fail(budgets.status());
        auto points = eval::sweep_points(names, *budgets, o->extra);
        if (!points.ok()) return fail(points.status());
        std::vector<std::string> specs;
        for (const auto& p : *points) specs.push_back(p.spec);
        if (Status st = policies_check(specs); !st.ok()) return fail(st);
        if (Status st = prepare_output_prefix(o->out); !st.ok()) return fail(st);
        auto model = model_load(o->model);
        if (!model.ok()) return fail(model.status());
        ContextParams cp;
        cp.n_threads = o->n_threads;
        if (Status st = o->kv_types.apply(cp); !st.ok()) return fail(st);
        if (Status st = policies_check(**model, cp.n_ctx, specs); !st.ok()) return fail(st);
        const std::string model_name = std::filesystem::path(o->model).stem().string();
        eval::SweepResult r;
        r.points = *points;
        // Task setup, shared by every point; run(spec) -> {score %, KV bytes}.
        std::function<Expected<std::pair<double, int64_t>>(const std::string&)> run;
        std::vector<eval::RulerTask> tasks;
        std::vector<std::vector<eval::RulerSample>> samples;
        eval::NiahConfig niah;
        eval::LongBenchConfig lb_cfg;
        std::vector<eval::LongBenchRow> lb_rows;
        if (o->task == "ruler") {
            auto data = eval::ruler_data_load(o->data);
            if (!data.ok()) return fail(data.status());
            const Tokenizer& tok = model_tokenizer(**model);
            const int32_t n_bos = tok.add_bos() && tok.bos() >= 0 ? 1 : 0;
            for (const std::string& name : csv_split(o->ruler_tasks)) {
                auto t = eval::ruler_task(name);
                if (!t.ok()) return fail(t.status());
                t->needle = unescape_newlines(o->needle);
                t->question = unescape_newlines(o->question);
                auto s = eval::ruler_generate(*t, *data, o->length, o->samples, o->seed,
                                              [&](const std::string& x) { return n_bos + int32_t(tok.encode(x, false).size()); });
                if (!s.ok()) return fail(s.status());
                tasks.push_back(*t);
                samples.push_back(std::move(*s));
            }
            if (tasks.empty()) return fail(Status::invalid("--ruler-tasks: empty list"));
            r.title = "RULER " + o->ruler_tasks + " at " + std::to_string(o->length) + " tokens, " + model_name;
            r.metric = "score (%)";
            r.n = int64_t(tasks.size()) * o->samples;
            run = [&](const std::string& spec) -> Expected<std::pair<double, int64_t>> {
                double sum = 0.0;
                int64_t kv = 0;
                for (size_t i = 0; i < tasks.size(); ++i) {
                    auto res = eval::ruler_run(*model, cp, spec, tasks[i], samples[i], o->protocol == "aware", 0,
                                               [&](size_t d, size_t n) { progress_bar("sweep " + tasks[i].name + " " + spec, d, n); });
                    if (!res.ok()) return res.status();
                    sum += res->score();
                    kv = res->kv_bytes;
                }
                return std::make_pair(sum / double(tasks.size()), kv);
            };
        } else if (o->task == "niah") {
            auto lengths = csv_ints(o->lengths, "--lengths");
            if (!lengths.ok()) return fail(lengths.status());
            niah.lengths = *lengths;
            niah.depths.clear();
            for (const std::string& d : csv_split(o->depths)) niah.depths.push_back(std::atof(d.c_str()));
            niah.trials = o->trials;
            niah.seed = o->seed;
            niah.query_aware = o->protocol == "aware";
            if (Status st = expand_haystack(o->haystack, &niah.haystack_files); !st.ok()) return fail(st);
            r.title = "NIAH at " + o->lengths + " tokens (" + o->protocol + "), " + model_name;
            r.metric = "accuracy (%)";
            r.n = int64_t(niah.lengths.size() * niah.depths.size()) * niah.trials;
            run = [&](const std::string& spec) -> Expected<std::pair<double, int64_t>> {
                auto res = eval::niah_run(*model, cp, spec, niah, [&](const std::string&, size_t d, size_t n, const eval::NiahCell&) {
                    progress_bar("sweep niah " + spec, d, n);
                });
                if (!res.ok()) return res.status();
                return std::make_pair(100.0 * res->accuracy(), res->cells.back().kv_bytes);
            };
        } else {
            if (o->file.empty()) return fail(Status::invalid("--task longbench needs -f FILE"));
            auto cfg = eval::longbench_config_load(std::filesystem::path(o->file).parent_path().string());
            if (!cfg.ok()) return fail(cfg.status());
            auto rows = eval::longbench_load(o->file, o->rows);
            if (!rows.ok()) return fail(rows.status());
            lb_cfg = std::move(*cfg);
            lb_rows = std::move(*rows);
            r.title = "LongBench " + lb_rows[0].dataset + " (" + std::to_string(lb_rows.size()) + " rows), " + model_name;
            r.metric = "score";
            run = [&](const std::string& spec) -> Expected<std::pair<double, int64_t>> {
                auto res = eval::longbench_run(*model, cp, spec, lb_cfg, lb_rows, 0,
                                               [&](size_t d, size_t n) { progress_bar("sweep longbench " + spec, d, n); });
                if (!res.ok()) return res.status();
                return std::make_pair(res->score(), res->kv_bytes);
            };
        }
        nlohmann::json j = {{"model", o->model}, {"task", o->task}, {"title", r.title}, {"seed", o->seed}};
        if (r.n > 0) j["n"] = r.n;  // graded answers per point: the error bars of --replot
        record_run(j, o->n_threads);
        for (size_t i = 0; i < r.points.size(); ++i) {
            std::fprintf(stderr, "heterokv: sweep point %zu/%zu: %s\n", i + 1, r.points.size(), r.points[i].spec.c_str());
            auto v = run(r.points[i].spec);
            if (!v.ok()) return fail(v.status());
            r.score.push_back(v->first);
            r.kv_mib.push_back(double(v->second) / (1024.0 * 1024.0));
            j["points"].push_back({{"spec", r.points[i].spec}, {"family", r.points[i].family},
                                   {"budget", r.points[i].budget}, {"score", v->first}, {"kv_bytes", v->second}});
        }
        const std::string md = eval::sweep_table_md(r);
        std::printf("%s", md.c_str());
        const eval::LineChart chart = eval::sweep_chart(r);
        Status st = eval::write_file(o->out + ".md", md);
        if (st.ok()) st = eval::write_file(o->out + ".json", j.dump(1));
        if (st.ok()) st = eval::write_figure(o->out, chart);
        if (!st.ok()) return fail(st);
        return 0;
    };
}

}  // namespace hkv::cli
