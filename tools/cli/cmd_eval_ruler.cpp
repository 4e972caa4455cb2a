// heterokv eval ruler — RULER's synthetic tasks (niah variants, vt, cwe, fwe) generated for the
// model's tokenizer at the given lengths, run under one or more policies; a table per length
// (markdown, stdout and PREFIX.md), PREFIX.json with every answer, a task x policy heatmap per length.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "record.h"
#include "eval/figures.h"
#include "eval/plot.h"
#include "eval/ruler.h"
#include "eval_args.h"
#include "heterokv/policy.h"
#include "heterokv/model.h"

namespace hkv::cli {

Runner add_eval_ruler(CLI::App& app) {
    struct Opts {
        KvTypeOptions kv_types;
        std::string model, out = "ruler", data = default_data_dir(), protocol = "agnostic";
        std::string tasks = "niah_single_1,niah_single_2,niah_single_3,niah_multikey_1,niah_multikey_2,niah_multikey_3,"
                            "niah_multivalue,niah_multiquery,vt,cwe,fwe";
        std::string lengths = "1024";
        std::vector<std::string> policies = {"full"};
        int32_t samples = 10, n_gen = 0, n_threads = 0;
        uint64_t seed = 42;
        bool dump = false;
        std::string needle, question, replot;
    };
    auto o = std::make_shared<Opts>();
    app.add_option("-m,--model", o->model, "GGUF model file (required unless --replot)")->check(CLI::ExistingFile);
    app.add_option("--replot", o->replot, "re-draw the heatmaps PREFIX_<length>.svg/.png from a PREFIX.json of an "
                                          "earlier run (nothing is run)");
    app.add_option("--tasks", o->tasks, "RULER tasks, comma-separated")->capture_default_str();
    app.add_option("--lengths", o->lengths, "token budgets (input + generated), comma-separated")->capture_default_str();
    app.add_option("--samples", o->samples, "samples per task and length")->capture_default_str();
    app.add_option("--policy", o->policies, "policy spec(s); repeat for several")->capture_default_str();
    app.add_option("--data", o->data, "folder with ruler/*list.txt and haystack/PaulGrahamEssays.json")
        ->capture_default_str();
    app.add_option("--protocol", o->protocol,
                   "agnostic: compress the context, then ask; aware: the question is in the compressed prompt")
        ->capture_default_str();
    app.add_option("--n-gen", o->n_gen, "tokens generated per answer (0: the task's RULER value)")->capture_default_str();
    app.add_option("--seed", o->seed, "seed of the generators (same samples for every policy)")
        ->check(kU64Check)
        ->capture_default_str();
    app.add_option("--niah-needle", o->needle,
                   "niah: needle text instead of RULER's ({type_v} singular item name, {key}, {value})");
    app.add_option("--niah-question", o->question,
                   "niah: question + answer prefix instead of RULER's ({type_v}, {query}; \\n = newline)");
    app.add_flag("--dump-samples", o->dump, "also write PREFIX_<task>_<length>.jsonl in RULER's format");
    app.add_option("-t,--threads", o->n_threads, "threads (0: all cores)")->capture_default_str();
    o->kv_types.add(app);
    app.add_option("-o,--out", o->out, "output prefix: PREFIX.json, PREFIX.md, PREFIX_<length>.svg/.png")
        ->capture_default_str();
    return [o]() -> int {
        if (!o->replot.empty()) {
            const Status st = replot_figures(o->replot, o->out, eval::ruler_replot);
            return st.ok() ? 0 : fail(st);
        }
        if (o->model.empty()) return usage_fail(Status::invalid("eval ruler: -m is required (or --replot FILE)"));
        if (o->protocol != "aware" && o->protocol != "agnostic") {
            return fail(Status::invalid("--protocol '%s': expected agnostic or aware", o->protocol.c_str()));
        }
        auto lengths = csv_ints(o->lengths, "--lengths");
        if (!lengths.ok()) return fail(lengths.status());
        std::vector<eval::RulerTask> tasks;
        for (const std::string& name : csv_split(o->tasks)) {
            auto t = eval::ruler_task(name);
            if (!t.ok()) return fail(t.status());
            t->needle = unescape_newlines(o->needle);
            t->question = unescape_newlines(o->question);
            tasks.push_back(*t);
        }
        if (tasks.empty()) return fail(Status::invalid("--tasks: empty list"));
        if (Status st = policies_check(o->policies); !st.ok()) return fail(st);
        auto data = eval::ruler_data_load(o->data);
        if (!data.ok()) return fail(data.status());
        if (Status st = prepare_output_prefix(o->out); !st.ok()) return fail(st);
        auto model = model_load(o->model);
        if (!model.ok()) return fail(model.status());
        const Tokenizer& tok = model_tokenizer(**model);
        const int32_t n_bos = tok.add_bos() && tok.bos() >= 0 ? 1 : 0;
        const eval::TokenCounter count = [&](const std::string& s) { return n_bos + int32_t(tok.encode(s, false).size()); };
        ContextParams cp;
        cp.n_threads = o->n_threads;
        if (Status st = o->kv_types.apply(cp); !st.ok()) return fail(st);
        if (Status st = policies_check(**model, cp.n_ctx, o->policies); !st.ok()) return fail(st);
        nlohmann::json j = {{"model", o->model}, {"protocol", o->protocol}, {"seed", o->seed}, {"samples", o->samples}};
        record_run(j, o->n_threads);
        std::string md;
        for (int32_t len : *lengths) {
            // [n_task][n_policy] scores (percent) and KV MiB
            std::vector<std::vector<double>> score(tasks.size()), kv(tasks.size());
            for (size_t it = 0; it < tasks.size(); ++it) {
                const eval::RulerTask& task = tasks[it];
                auto samples = eval::ruler_generate(task, *data, len, o->samples, o->seed, count);
                if (!samples.ok()) return fail(samples.status());
                if (o->dump) {
                    std::string lines;
                    for (const eval::RulerSample& s : *samples) {
                        lines += nlohmann::json({{"index", s.index}, {"input", s.input}, {"outputs", s.outputs},
                                                 {"length", s.length}}).dump() + "\n";
                    }
                    const std::string path = o->out + "_" + task.name + "_" + std::to_string(len) + ".jsonl";
                    if (Status st = eval::write_file(path, lines); !st.ok()) return fail(st);
                }
                for (const std::string& p : o->policies) {
                    const std::string what = "ruler " + task.name + " @" + std::to_string(len) + " " + p;
                    auto res = eval::ruler_run(*model, cp, p, task, *samples, o->protocol == "aware", o->n_gen,
                                               [&](size_t d, size_t n) { progress_bar(what, d, n); });
                    if (!res.ok()) return fail(res.status());
                    score[it].push_back(res->score());
                    kv[it].push_back(double(res->kv_bytes) / (1024.0 * 1024.0));
                    nlohmann::json rows = nlohmann::json::array();
                    for (size_t i = 0; i < samples->size(); ++i) {
                        rows.push_back({{"index", i}, {"outputs", (*samples)[i].outputs}, {"length", (*samples)[i].length},
                                        {"pred", res->predictions[i]}, {"score", res->scores[i]}});
                    }
                    j["results"].push_back({{"length", len}, {"task", task.name}, {"policy", p}, {"score", res->score()},
                                            {"kv_bytes", res->kv_bytes}, {"samples", rows}});
                }
            }
            // The table: tasks x policies, score % (and the mean row).
            char buf[64];
            std::string t = "### RULER @ " + std::to_string(len) + " tokens (" + o->protocol + ", " +
                            std::to_string(o->samples) + " samples/task, seed " + std::to_string(o->seed) +
                            "): score %\n\n| task |";
            for (const std::string& p : o->policies) t += " " + p + " |";
            t += "\n|---|";
            for (size_t i = 0; i < o->policies.size(); ++i) t += "---:|";
            std::vector<double> mean(o->policies.size(), 0.0);
            for (size_t it = 0; it < tasks.size(); ++it) {
                t += "\n| " + tasks[it].name + " |";
                for (size_t ip = 0; ip < o->policies.size(); ++ip) {
                    std::snprintf(buf, sizeof buf, " %.1f |", score[it][ip]);
                    t += buf;
                    mean[ip] += score[it][ip] / double(tasks.size());
                }
            }
            t += "\n| **mean** |";
            for (double m : mean) std::snprintf(buf, sizeof buf, " **%.1f** |", m), t += buf;
            t += "\n| KV MiB (last task) |";
            for (double k : kv.back()) std::snprintf(buf, sizeof buf, " %.2f |", k), t += buf;
            t += "\n\n";
            std::printf("%s", t.c_str());
            std::fflush(stdout);
            md += t;
            std::vector<std::string> task_names;
            for (const auto& task : tasks) task_names.push_back(task.name);
            const std::string pic = o->out + "_" + std::to_string(len);
            Status st = eval::write_figure(pic, eval::ruler_heatmap(len, o->protocol, o->samples, task_names,
                                                                    o->policies, score));
            if (!st.ok()) return fail(st);
        }
        Status st = eval::write_file(o->out + ".json", j.dump(1));
        if (st.ok()) st = eval::write_file(o->out + ".md", md);
        if (!st.ok()) return fail(st);
        return 0;
    };
}

}  // namespace hkv::cli
