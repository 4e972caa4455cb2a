// heterokv eval ppl — perplexity of a text file in fixed windows, and against the full cache the KL
// divergence and top-1 agreement of next-token distributions, for any number of policies
// (the computation is tools/eval/ppl.h; this file parses options and prints the table).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "record.h"
#include "progress.h"
#include "eval/ppl.h"
#include "eval/ppl_dump.h"
#include "heterokv/engine.h"
#include "heterokv/policy.h"
#include "heterokv/model.h"
#include "build_info.h"


namespace hkv::cli {

namespace {

struct PplOptions {
    std::string model, file;
    std::vector<std::string> policies;
    int32_t n_window = 512;
    std::string context = "0.5";
    int32_t max_windows = 0;
    bool stream = false;
    int32_t n_ctx = 0;
    int32_t n_threads = 0;
    int32_t n_batch = 0;
    KvTypeOptions kv_types;
    std::string base_kv_type;  // empty: the baseline runs with the policies' types
    int32_t page_size = 64;
    std::string kv_cold_dir;
    ReportOutput out;  // -o FILE, --format md|csv|json
    std::string dump;
};


// "0.5" (a fraction of the window, 0 < f < 1) or "256" (tokens).
Expected<int32_t> parse_context(const std::string& s, int32_t n_window) {
    char* end = nullptr;
    if (s.find_first_of(".eE") != std::string::npos) {
        const double f = std::strtod(s.c_str(), &end);
        if (s.empty() || *end != '\0' || !(f > 0.0 && f < 1.0)) {
            return Status::invalid("--context '%s': expected a fraction of the window in (0, 1) or a token count",
                                   s.c_str());
        }
        return int32_t(std::lround(f * double(n_window)));
    }
    const long n = std::strtol(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || n < 1 || n >= n_window) {
        return Status::invalid("--context '%s': expected a token count in 1 .. %d (window %d) or a fraction in (0, 1)",
                               s.c_str(), n_window - 1, n_window);
    }
    return int32_t(n);
}

std::string base_name(const std::string& path) { return path.substr(path.find_last_of('/') + 1); }

void print_report(std::FILE* f, const PplOptions& o, const eval::PplReport& r) {
    const eval::PplPlan& p = r.plan;
    const std::string mode = o.stream ? "stream" : "context";
    if (o.out.format == "json") {
        nlohmann::json j;
        record_run(j, o.n_threads);
        j["model"] = base_name(o.model);
        j["file"] = base_name(o.file);
        j["mode"] = mode;
        j["window"] = r.n_window;
        j["context"] = p.n_context;
        j["scored_per_window"] = p.n_scored;
        j["windows"] = p.starts.size();
        j["windows_available"] = p.n_available;
        j["text_tokens"] = p.n_text;
        j["kv_type"] = o.kv_types.label();
        j["base_kv_type"] = o.base_kv_type.empty() ? o.kv_types.label() : o.base_kv_type;
        j["rss_per_policy"] = r.rss_per_policy;
        j["results"] = nlohmann::json::array();
        for (const eval::PplResult& x : r.results) {
            j["results"].push_back({{"policy", x.policy}, {"baseline", x.baseline}, {"n_scored", x.n_scored},
                                    {"ppl", x.ppl}, {"nll_mean", x.nll_mean}, {"kld_mean", x.kld_mean},
                                    {"kld_p99", x.kld_p99}, {"kld_max", x.kld_max}, {"top1", x.top1},
                                    {"kv_bytes_context", x.kv_bytes_context}, {"kv_bytes_end", x.kv_bytes_end},
                                    {"rss_peak_bytes", x.rss_peak}, {"seconds", x.seconds}});
        }
        std::fprintf(f, "%s\n", j.dump(1).c_str());
        return;
    }
    if (o.out.format == "csv") {
        std::fprintf(f, "commit,model,file,mode,window,context,windows,policy,baseline,n_scored,ppl,kld_mean,kld_p99,"
                    "kld_max,top1,kv_bytes_context,kv_bytes_end,rss_peak_bytes,seconds\n");
        for (const eval::PplResult& x : r.results) {
            // a spec with commas is quoted
            const std::string pol = x.policy.find(',') == std::string::npos ? x.policy : "\"" + x.policy + "\"";
            std::fprintf(f, "%s,%s,%s,%s,%d,%d,%zu,%s,%d,%lld,%.6f,%.6g,%.6g,%.6g,%.6f,%.0f,%.0f,%zu,%.3f\n",
                        hkv_git_commit(), base_name(o.model).c_str(), base_name(o.file).c_str(), mode.c_str(),
                        r.n_window, p.n_context, p.starts.size(), pol.c_str(), x.baseline ? 1 : 0,
                        (long long)x.n_scored, x.ppl, x.kld_mean, x.kld_p99, x.kld_max, x.top1, x.kv_bytes_context,
                        x.kv_bytes_end, x.rss_peak, x.seconds);
        }
        return;
    }
    std::fprintf(f, "heterokv %s eval ppl: %s on %s, %zu of %d windows of %d tokens, %s mode: %d context + %d "
                "scored tokens per window, KV %s (baseline full: %s)\n\n",
                hkv_git_commit(), base_name(o.model).c_str(), base_name(o.file).c_str(), p.starts.size(),
                p.n_available, r.n_window, mode.c_str(), p.n_context, p.n_scored, o.kv_types.label().c_str(),
                o.base_kv_type.empty() ? o.kv_types.label().c_str() : o.base_kv_type.c_str());
    std::fprintf(f, "| policy | PPL | KLD mean | KLD p99 | top-1 | KV after context KiB | KV at end KiB | "
                "peak RSS MiB | time s |\n");
    std::fprintf(f, "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (const eval::PplResult& x : r.results) {
        std::fprintf(f, "| %s%s | %.3f | %.5f | %.5f | %.4f | %.1f | %.1f | %.1f | %.1f |\n", x.policy.c_str(),
                    x.baseline ? " (baseline)" : "", x.ppl, x.kld_mean, x.kld_p99, x.top1,
                    x.kv_bytes_context / 1024.0, x.kv_bytes_end / 1024.0, double(x.rss_peak) / 1048576.0,
                    x.seconds);
    }
    if (!r.rss_per_policy) std::fprintf(f, "\npeak RSS: the process's high-water mark (could not be reset per run)\n");
}

}  // namespace

Runner add_eval_ppl(CLI::App& app) {
    auto o = std::make_shared<PplOptions>();
    app.add_option("-m,--model", o->model, "GGUF model file")->required()->check(CLI::ExistingFile);
    app.add_option("-f,--file", o->file, "text file to score")->required()->check(CLI::ExistingFile);
    app.add_option("--policy", o->policies,
                   "policy spec(s) to compare with full, repeatable, e.g. --policy streaming:budget=64 "
                   "(policies: " + policy_names() + ")");
    app.add_option("--window", o->n_window, "tokens per window, BOS included")->capture_default_str();
    app.add_option("--context", o->context,
                   "context prefilled (and compressed) per window: a fraction of the window or a token count; "
                   "the rest is scored by decode steps")
        ->capture_default_str();
    app.add_option("--max-windows", o->max_windows, "windows to evaluate, spread evenly over the text (0: all)")
        ->capture_default_str();
    app.add_flag("--stream", o->stream,
                 "streaming mode: no context; every token after the first is a decode step, the policy holds "
                 "the cache at its budget");
    app.add_option("-c,--ctx-size", o->n_ctx,
                   "the model's context limit the window is checked against (0: the file's training context)")
        ->capture_default_str();
    app.add_option("-t,--threads", o->n_threads, "threads (0: all cores)")->capture_default_str();
    app.add_option("-b,--batch-size", o->n_batch, "prefill chunk in tokens (0: the whole context in one chunk)")
        ->capture_default_str();
    o->kv_types.add(app);
    app.add_option("--base-kv-type", o->base_kv_type,
                   "KV type (K and V) of the baseline full run that KLD and top-1 compare against, e.g. f16 to "
                   "measure a q8_0 cache (default: the same types as the policies)");
    app.add_option("--kv-page-size", o->page_size, "KV cache page size in slots")->capture_default_str();
    app.add_option("--kv-cold-dir", o->kv_cold_dir, "folder for the cold tier of policies that have one (heterocache: satellites' full prompt KV); default: host RAM");
    add_report_output(app, &o->out);
    app.add_option("--dump", o->dump,
                   "also write PREFIX.json (each window's tokens; per run the positions every layer and KV head "
                   "keeps after the context, and each scored token's KLD and NLL) and PREFIX.logits.f32 (every "
                   "scored logits row), for tools/reference/");
    return [o, &app]() -> int {
        if (Status st = resolve_report_output(&o->out); !st.ok()) return fail(st);
        if (o->stream && app.count("--context") > 0) {
            return fail(Status::invalid("--stream has no context (every token after the first is scored); drop --context"));
        }
        if (o->n_window < 2) return fail(Status::invalid("--window %d: at least 2 tokens", o->n_window));
        eval::PplParams p;
        p.n_window = o->n_window;
        p.stream = o->stream;
        if (!o->stream) {
            auto c = parse_context(o->context, o->n_window);
            if (!c.ok()) return fail(c.status());
            p.n_context = *c;
        }
        p.max_windows = o->max_windows;
        p.n_ctx = o->n_ctx;
        p.n_threads = o->n_threads;
        p.n_batch = o->n_batch;
        p.kv_page_size = o->page_size;
        p.kv_cold_dir = o->kv_cold_dir;
        if (Status st = o->kv_types.apply(p); !st.ok()) return fail(st);
        if (!o->base_kv_type.empty()) {
            auto bt = kv_type_parse(o->base_kv_type);
            if (!bt.ok()) return fail(Status::invalid("--base-kv-type %s", bt.status().message().c_str()));
            p.base_type = *bt;
        }
        for (const std::string& spec : o->policies) {
            auto pol = policy_create(spec);
            if (!pol.ok()) return fail(pol.status());
        }
        if (Status st = check_kv_cold_dir(o->kv_cold_dir, o->policies); !st.ok()) return fail(st);

        auto text_read = file_read(o->file, kFileMaxText, "-f");
        if (!text_read.ok()) return fail(text_read.status());
        auto model = model_load(o->model);
        if (!model.ok()) return fail(model.status());
        const std::string text = std::move(*text_read);
        std::fprintf(stderr, "heterokv: eval ppl: tokenizing %s (%zu bytes)\n", base_name(o->file).c_str(), text.size());
        const std::vector<int32_t> ids = eval::ppl_tokenize(**model, text);

        std::unique_ptr<eval::PplDump> dump;
        if (!o->dump.empty()) {
            auto d = eval::PplDump::open(o->dump);
            if (!d.ok()) return fail(d.status());
            dump = std::move(*d);
            p.dump = dump.get();
        }

        Progress bar("eval ppl", "runs");
        auto report = eval::ppl_run(*model, ids, o->policies, p,
                                    [&bar](int64_t done, int64_t total) { bar.update(done, total); });
        bar.end();
        if (!report.ok()) return fail(report.status());
        if (dump) {
            eval::PplDumpMeta meta;
            meta.model = o->model;
            meta.file = o->file;
            meta.commit = hkv_git_commit();
            meta.kv_type = o->kv_types.label();
            meta.n_window = report->n_window;
            meta.n_context = report->plan.n_context;
            meta.n_scored = report->plan.n_scored;
            meta.n_vocab = model_info(**model).n_vocab;
            for (const eval::PplResult& x : report->results) meta.policies.push_back(x.policy);
            Status st = dump->finish(meta);
            if (!st.ok()) return fail(st);
        }
        if (Status st = emit_report(o->out, [&](std::FILE* f) { print_report(f, *o, *report); }); !st.ok()) {
            return fail(st);
        }
        return 0;
    };
}

}  // namespace hkv::cli
