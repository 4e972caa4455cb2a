// heterokv eval longbench — a LongBench-format jsonl (one dataset) with the official prompt,
// generation length, middle truncation and metric, under one or more policies; prints a table and
// writes PREFIX.json with every prediction.
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "record.h"
#include "eval/longbench.h"
#include "eval/plot.h"
#include "eval_args.h"

namespace hkv::cli {

Runner add_eval_longbench(CLI::App& app) {
    struct Opts {
        KvTypeOptions kv_types;
        std::string model, file, config_dir, out = "longbench";
        std::vector<std::string> policies = {"full"};
        int32_t rows = 0, max_length = 0, n_ctx = 0, n_threads = 0;
    };
    auto o = std::make_shared<Opts>();
    app.add_option("-m,--model", o->model, "GGUF model file")->required()->check(CLI::ExistingFile);
    app.add_option("-f,--file", o->file, "LongBench-format jsonl (rows of one dataset)")->required()->check(CLI::ExistingFile);
    app.add_option("--config-dir", o->config_dir,
                   "folder with dataset2prompt.json and dataset2maxlen.json (default: the jsonl's folder)");
    app.add_option("--rows", o->rows, "first N rows only (0: all)")->capture_default_str();
    app.add_option("--max-length", o->max_length, "prompt tokens kept by middle truncation (0: context - generation length)")
        ->capture_default_str();
    app.add_option("-c,--ctx-size", o->n_ctx, "context size (0: the model's)")->capture_default_str();
    app.add_option("--policy", o->policies, "policy spec(s); repeat for several")->capture_default_str();
    app.add_option("-t,--threads", o->n_threads, "threads (0: all cores)")->capture_default_str();
    o->kv_types.add(app);
    app.add_option("-o,--out", o->out, "output prefix: PREFIX.json")->capture_default_str();
    return [o]() -> int {
        if (Status st = policies_check(o->policies); !st.ok()) return fail(st);
        const std::string dir =
            o->config_dir.empty() ? std::filesystem::path(o->file).parent_path().string() : o->config_dir;
        auto cfg = eval::longbench_config_load(dir.empty() ? "." : dir);
        if (!cfg.ok()) return fail(cfg.status());
        auto rows = eval::longbench_load(o->file, o->rows);
        if (!rows.ok()) return fail(rows.status());
        if (Status st = prepare_output_prefix(o->out); !st.ok()) return fail(st);
        auto model = model_load(o->model);
        if (!model.ok()) return fail(model.status());
        ContextParams cp;
        cp.n_threads = o->n_threads;
        if (Status st = o->kv_types.apply(cp); !st.ok()) return fail(st);
        cp.n_ctx = o->n_ctx;
        if (Status st = policies_check(**model, cp.n_ctx, o->policies); !st.ok()) return fail(st);
        const std::string dataset = (*rows)[0].dataset;
        nlohmann::json j = {{"model", o->model}, {"file", o->file}, {"dataset", dataset}, {"rows", rows->size()}};
        record_run(j, o->n_threads);
        std::printf("| policy | %s score | rows | mean prompt tokens | KV MiB |\n|---|---:|---:|---:|---:|\n",
                    dataset.c_str());
        for (const std::string& p : o->policies) {
            auto res = eval::longbench_run(*model, cp, p, *cfg, *rows, o->max_length,
                                           [&](size_t d, size_t n) { progress_bar("longbench " + dataset + " " + p, d, n); });
            if (!res.ok()) return fail(res.status());
            double mean_tokens = 0.0;
            for (int32_t n : res->prompt_tokens) mean_tokens += double(n) / double(res->prompt_tokens.size());
            std::printf("| %s | %.2f | %zu | %.0f | %.2f |\n", p.c_str(), res->score(), rows->size(), mean_tokens,
                        double(res->kv_bytes) / (1024.0 * 1024.0));
            std::fflush(stdout);
            nlohmann::json preds = nlohmann::json::array();
            for (size_t i = 0; i < rows->size(); ++i) {
                preds.push_back({{"_id", (*rows)[i].id}, {"pred", res->predictions[i]}, {"score", res->scores[i]},
                                 {"prompt_tokens", res->prompt_tokens[i]}});
            }
            j["results"].push_back({{"policy", p}, {"score", res->score()}, {"kv_bytes", res->kv_bytes}, {"rows", preds}});
        }
        if (Status st = eval::write_file(o->out + ".json", j.dump(1)); !st.ok()) return fail(st);
        return 0;
    };
}

}  // namespace hkv::cli
