// heterokv bench — prefill (pp) and decode (tg) speed at chosen context depths, in the manner of
// llama-bench: for each depth the cache is filled with random tokens (untimed; under a compressing
// policy each depth is one fresh prompt), then each test is repeated -r times from that same depth
// (the sequence is rewound between repetitions). Reports
// mean ± sd tok/s, KV bytes, peak RSS, and for decode the bandwidth roofline: (weight bytes read per
// token + the KV bytes the cache holds during the test, policy and per-head types included) /
// measured memory bandwidth (a STREAM-style triad), and the CPU seconds the process spent in each
// repetition (user + system, every thread: getrusage), which a shared machine's load disturbs far
// less than wall-clock tok/s (a policy's prefill overhead at 8K against full's, docs/performance.md).
// --llamacpp-session writes each filled depth as a llama.cpp session file (eval/llamacpp_session.h),
// from which llama.cpp can be timed at that depth without its own prefill: decode (-p "") and a prompt
// (FILE.pp.txt, see eval::SessionText: such a run fills with one repeated word instead of random tokens,
// so that the text of the fill tokenizes back to the same tokens).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include <sys/resource.h>

#include "commands.h"
#include "record.h"
#include "progress.h"
#include "eval/llamacpp_session.h"
#include "heterokv/engine.h"
#include "heterokv/file_io.h"
#include "heterokv/model.h"
#include "heterokv/policy.h"
#include "heterokv/system.h"
#include "build_info.h"


namespace hkv::cli {

namespace {

struct BenchOptions {
    std::vector<std::string> models;
    std::vector<int32_t> n_prompt = {512};
    std::vector<int32_t> n_gen = {64};
    std::vector<int32_t> depths = {0};
    int32_t reps = 3;
    std::vector<int32_t> threads = {0};  // -t: one run per value (0: every core)
    int32_t n_batch = 512;
    int32_t page_size = 64;
    std::string kv_cold_dir;
    std::string kv_cold_gather = "auto";
    KvTypeOptions kv_types;  // --kv-type, -ctk, -ctv
    std::vector<std::string> policies = {"full"};  // --policy, repeatable: one run per spec
    ReportOutput out;  // -o FILE, --format md|csv|json
    std::string session;  // --llamacpp-session pattern ("%d" = depth), empty: none
    bool no_bandwidth = false;
    bool swa_full = false;
};

struct Row {
    std::string model, test, type_summary;
    std::string model_type;       // llama-bench's: "<arch> <params> <main weight type>"
    int64_t n_params = 0;
    std::string policy;
    int32_t n_threads = 0;
    int32_t depth = 0, n = 0;
    double mean = 0, sd = 0;      // tok/s
    double cpu_mean = 0, cpu_sd = 0;  // CPU seconds of the process per repetition (user + sys, all threads)
    size_t kv_bytes = 0, rss_peak = 0;
    double roofline = 0;          // tok/s upper bound (tg only; 0 = not measured)
    size_t weight_bytes = 0;
};

void stats(const std::vector<double>& v, double* mean, double* sd) {
    double s = 0;
    for (double x : v) s += x;
    *mean = v.empty() ? 0 : s / double(v.size());
    double q = 0;
    for (double x : v) q += (x - *mean) * (x - *mean);
    *sd = v.size() > 1 ? std::sqrt(q / double(v.size() - 1)) : 0.0;
}

// User + system CPU seconds of the whole process so far (every thread).
double process_cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    auto sec = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) * 1e-6; };
    return sec(u.ru_utime) + sec(u.ru_stime);
}

// "llama 1.2B q4_K": the architecture, the parameter count and the type holding the most bytes.
std::string model_type(const Model& model, int64_t* n_params) {
    std::map<std::string, int64_t> bytes;
    *n_params = 0;
    for (const TensorInfo& t : model_tensors(model)) {
        *n_params += t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3];
        bytes[t.type] += t.n_bytes;
    }
    std::string main_type;
    int64_t most = -1;
    for (const auto& [type, b] : bytes) {
        if (b > most) most = b, main_type = type;
    }
    char size[32];
    const double n = double(*n_params);
    if (n >= 1e9) std::snprintf(size, sizeof(size), "%.1fB", n / 1e9);
    else if (n >= 1e6) std::snprintf(size, sizeof(size), "%.0fM", n / 1e6);
    else std::snprintf(size, sizeof(size), "%.0fK", n / 1e3);
    return model_info(model).arch + " " + size + " " + main_type;
}

Status bench_model(const BenchOptions& o, const std::string& path, const std::string& policy,
                   int32_t n_threads, double bw_gbs, std::vector<Row>& rows) {
    auto model = model_load(path);
    if (!model.ok()) return model.status();
    const ModelInfo c = model_info(**model);
    int64_t n_params = 0;
    const std::string mtype = model_type(**model, &n_params);
    int32_t max_p = 0, max_n = 0, max_d = 0;
    for (int32_t p : o.n_prompt) max_p = std::max(max_p, p);
    for (int32_t n : o.n_gen) max_n = std::max(max_n, n);
    for (int32_t d : o.depths) max_d = std::max(max_d, d);
    ContextParams cp;
    cp.n_ctx = max_d + std::max(max_p, max_n) + 1;
    cp.n_threads = n_threads;
    cp.n_batch = o.n_batch;
    HKV_TRY(o.kv_types.apply(cp));
    cp.kv_page_size = o.page_size;
    cp.kv_cold_dir = o.kv_cold_dir;
    cp.kv_cold_gather = kv_cold_gather(o.kv_cold_gather);
    cp.policy = policy;
    cp.swa_full = o.swa_full;
    auto ctx = Context::create(*model, cp);
    if (!ctx.ok()) return ctx.status();
    Context& cx = **ctx;
    std::mt19937 rng(1234);
    std::uniform_int_distribution<int32_t> pick(0, c.n_vocab - 1);
    auto random_tokens = [&](int32_t n) {
        std::vector<int32_t> t(static_cast<size_t>(n));
        for (auto& x : t) x = pick(rng);
        return t;
    };
    // Bytes a decode step reads: every matrix once (the embedding table only if it is also the output).
    const size_t per_token_weights = size_t(c.weight_bytes_decode);
    std::string name = path.substr(path.find_last_of('/') + 1);

    // warm-up: page in the weights, spin up the pool
    HKV_TRY(cx.eval(random_tokens(std::min(16, cp.n_ctx - 1))));
    HKV_TRY(cx.truncate(0));

    std::vector<int32_t> depths = o.depths;
    std::sort(depths.begin(), depths.end());
    std::vector<int32_t> seq;  // the fill tokens so far: [n_past] at each depth
    eval::SessionText session;  // --llamacpp-session: the fill of every depth and the pp prompt texts
    if (!o.session.empty()) HKV_TRY(session.init(model_tokenizer(**model), max_d));
    // Under `full` a deeper depth extends the previous fill (the same cache as one long prompt). A
    // compressing policy treats a sequence's first eval as its prompt, so there each depth is filled
    // from scratch in one eval: the policy compresses a prompt of exactly that depth.
    const bool refill = policy != "full";
    for (int32_t d : depths) {
        if (refill && cx.n_past() > 0 && d > cx.n_past()) {
            HKV_TRY(cx.truncate(0));
            seq.clear();
        }
        if (d > cx.n_past()) {
            std::vector<int32_t> fill = o.session.empty()
                                            ? random_tokens(d - cx.n_past())
                                            : std::vector<int32_t>(session.fill.begin() + cx.n_past(),
                                                                   session.fill.begin() + d);
            Progress bar("bench " + name + ": filling depth " + std::to_string(d), "tokens");
            HKV_TRY(cx.eval(fill, nullptr, [&](int64_t done, int64_t total) { bar.update(done, total); }));
            seq.insert(seq.end(), fill.begin(), fill.end());
        }
        if (!o.session.empty() && d > 0) {
            // d tokens, d - 1 cells: llama.cpp replays the last token to get its logits
            std::string path = o.session;
            const size_t at = path.find("%d");
            if (at != std::string::npos) path.replace(at, 2, std::to_string(d));
            HKV_TRY(eval::write_llamacpp_session(path, cx, seq, d - 1));
            std::fprintf(stderr, "heterokv: bench %s: wrote depth %d as llama.cpp session %s\n", name.c_str(), d,
                         path.c_str());
            if (d >= 2 && max_p > 0) {  // PATH.pp.txt: the prompt that times llama.cpp's prefill at this depth
                auto text = session.pp_text(model_tokenizer(**model), d, max_p);
                if (!text.ok()) return text.status();
                HKV_TRY(file_write_atomic(path + ".pp.txt", *text, "llama.cpp prompt"));
                std::fprintf(stderr, "heterokv: bench %s: wrote %s.pp.txt: the session's first %d tokens as text, "
                             "then %d others\n", name.c_str(), path.c_str(), d - 1, max_p);
            }
        }
        auto run_test = [&](bool prefill, int32_t n) -> Status {
            std::vector<double> tps, cpu;
            size_t kv_bytes = 0, kv_bytes_start = 0;
            for (int32_t r = 0; r < o.reps; ++r) {
                std::vector<int32_t> toks = random_tokens(n);
                kv_bytes_start = size_t(cx.kv_bytes());
                const double c0 = process_cpu_seconds();
                const auto t0 = std::chrono::steady_clock::now();
                if (prefill) {
                    HKV_TRY(cx.eval(toks));
                } else {
                    for (int32_t i = 0; i < n; ++i) HKV_TRY(cx.eval({&toks[size_t(i)], 1}));
                }
                const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                cpu.push_back(process_cpu_seconds() - c0);
                tps.push_back(double(n) / sec);
                kv_bytes = size_t(cx.kv_bytes());
                HKV_TRY(cx.truncate(d));
            }
            Row row;
            row.model = name;
            row.type_summary = c.weight_types;
            row.model_type = mtype;
            row.n_params = n_params;
            row.policy = policy;
            row.n_threads = n_threads;
            row.weight_bytes = size_t(c.weight_bytes);
            row.test = (prefill ? "pp" : "tg") + std::to_string(n);
            row.depth = d;
            row.n = n;
            stats(tps, &row.mean, &row.sd);
            stats(cpu, &row.cpu_mean, &row.cpu_sd);
            row.kv_bytes = kv_bytes;
            row.rss_peak = rss_peak_bytes();
            if (!prefill && bw_gbs > 0) {
                // KV read per token: what the cache holds, averaged over the test (its bytes before
                // the first and after the last token): the policy's slots in each head's own types,
                // position lanes included, as attention reads them.
                const double kv_per_tok = 0.5 * (double(kv_bytes_start) + double(kv_bytes));
                row.roofline = bw_gbs * 1e9 / (double(per_token_weights) + kv_per_tok);
            }
            std::fprintf(stderr, "heterokv: bench %s %s @ d%d, %s, %d threads: %.2f ± %.2f tok/s, CPU %.2f ± %.2f s\n",
                         name.c_str(), row.test.c_str(), d, policy.c_str(), n_threads, row.mean, row.sd, row.cpu_mean,
                         row.cpu_sd);
            rows.push_back(row);
            return Status();
        };
        for (int32_t p : o.n_prompt) {
            if (p > 0) HKV_TRY(run_test(true, p));
        }
        for (int32_t n : o.n_gen) {
            if (n > 0) HKV_TRY(run_test(false, n));
        }
    }
    if (!cx.policy_report().empty()) std::fprintf(stderr, "heterokv: %s\n", cx.policy_report().c_str());
    return Status();
}

std::vector<int32_t> parse_list(const std::string& s, bool* ok) {
    std::vector<int32_t> v;
    std::stringstream ss(s);
    std::string item;
    *ok = true;
    while (std::getline(ss, item, ',')) {
        char* end = nullptr;
        long x = std::strtol(item.c_str(), &end, 10);
        if (item.empty() || *end == 'k' || *end == 'K') x *= 1024, ++end;
        if (item.empty() || *end != '\0' || x < 0 || x > (1L << 24)) { *ok = false; return {}; }
        v.push_back(int32_t(x));
    }
    if (v.empty()) *ok = false;
    return v;
}

}  // namespace

Runner add_bench(CLI::App& app) {
    auto o = std::make_shared<BenchOptions>();
    auto lists = std::make_shared<std::array<std::string, 3>>();
    (*lists)[0] = "512";
    (*lists)[1] = "64";
    (*lists)[2] = "0";
    app.add_option("-m,--model", o->models, "GGUF model file(s)")->required()->check(CLI::ExistingFile);
    app.add_option("-p,--n-prompt", (*lists)[0], "prompt lengths for pp tests, comma-separated (0: none)")
        ->capture_default_str();
    app.add_option("-n,--n-gen", (*lists)[1], "generation lengths for tg tests (0: none)")->capture_default_str();
    app.add_option("-d,--depth", (*lists)[2], "context depths, e.g. 0,4096,16k,32k")->capture_default_str();
    app.add_option("-r,--repetitions", o->reps, "repetitions of each test")->capture_default_str();
    auto threads = std::make_shared<std::string>("0");
    app.add_option("-t,--threads", *threads, "thread counts, comma-separated: one run each (0: all cores)")
        ->capture_default_str();
    app.add_option("-b,--batch-size", o->n_batch, "prefill chunk size")->capture_default_str();
    o->kv_types.add(app);
    app.add_option("--kv-page-size", o->page_size, "KV page size in slots")->capture_default_str();
    app.add_option("--kv-cold-dir", o->kv_cold_dir, "folder for the cold tier of policies that have one (heterocache: satellites' full prompt KV); default: host RAM");
    add_kv_cold_gather(app, &o->kv_cold_gather);
    add_report_output(app, &o->out);
    app.add_option("--policy", o->policies, "KV compression policy spec; repeat for several, one run each (default: full)")
        ->capture_default_str();
    app.add_option("--llamacpp-session", o->session,
                   "after filling each depth D > 0, write the cache as a llama.cpp session file (for "
                   "llama-completion --prompt-cache FILE -p \"\"), and FILE.pp.txt: the text of its first "
                   "D - 1 tokens, then another word -p times (llama-completion -f FILE.pp.txt --prompt-cache FILE "
                   "evaluates the session's last token again and those words: a prefill at depth D - 2); the "
                   "fill is then one word repeated, not random tokens; %d in the path becomes D; policy full only");
    app.add_flag("--swa-full", o->swa_full, "keep every slot of sliding-window layers (default: free what leaves the window)");
    app.add_flag("--no-bandwidth", o->no_bandwidth, "skip the memory bandwidth measurement (no roofline)");
    return [o, lists, threads]() -> int {
        bool ok1, ok2, ok3, ok4;
        o->n_prompt = parse_list((*lists)[0], &ok1);
        o->n_gen = parse_list((*lists)[1], &ok2);
        o->depths = parse_list((*lists)[2], &ok3);
        o->threads = parse_list(*threads, &ok4);
        if (!ok1 || !ok2 || !ok3) return fail(Status::invalid("-p, -n and -d take comma-separated counts >= 0"));
        for (int32_t t : o->threads) ok4 = ok4 && t <= 1024;
        if (!ok4) return fail(Status::invalid("-t '%s': expected comma-separated thread counts in 0 .. 1024", threads->c_str()));
        if (o->reps < 1) return fail(Status::invalid("-r %d: at least 1 repetition", o->reps));
        if (Status st = resolve_report_output(&o->out); !st.ok()) return fail(st);
        {
            ContextParams probe;
            if (Status st = o->kv_types.apply(probe); !st.ok()) return fail(st);
        }
        const bool only_full = o->policies.size() == 1 && o->policies[0] == "full";
        if (!o->session.empty() && !only_full) {
            return fail(Status::invalid("--llamacpp-session needs --policy full (a compressed cache has no "
                                        "llama.cpp equivalent)"));
        }
        if (Status st = check_kv_cold_dir(o->kv_cold_dir, o->policies); !st.ok()) return fail(st);
        for (const std::string& spec : o->policies) {  // every spec before the first run
            if (auto p = policy_create(spec); !p.ok()) return fail(p.status());
        }
        if (!o->session.empty() && o->models.size() > 1) {
            return fail(Status::invalid("--llamacpp-session takes one model (-m) per run"));
        }
        const SystemInfo sys = system_info();
        std::vector<int32_t> thread_counts;
        std::map<int32_t, double> bw_at;  // bandwidth per thread count, measured once each
        for (int32_t t : o->threads) {
            const int32_t n = t > 0 ? t : sys.n_threads;
            thread_counts.push_back(n);
            if (o->no_bandwidth || bw_at.count(n)) continue;
            bw_at[n] = memory_bandwidth_gbs(n);
            std::fprintf(stderr, "heterokv: memory bandwidth (triad, %d threads): %.1f GB/s\n", n, bw_at[n]);
        }
        const int32_t n_threads = thread_counts[0];
        const double bw = o->no_bandwidth ? 0.0 : bw_at[n_threads];
        std::vector<Row> rows;
        for (const std::string& path : o->models) {
            for (const std::string& policy : o->policies) {
                for (int32_t n : thread_counts) {
                    Status st = bench_model(*o, path, policy, n, o->no_bandwidth ? 0.0 : bw_at[n], rows);
                    if (!st.ok()) return fail(st);
                }
            }
        }
        std::string policies_joined, threads_joined;
        for (const std::string& p : o->policies) policies_joined += (policies_joined.empty() ? "" : "; ") + p;
        for (int32_t n : thread_counts) threads_joined += (threads_joined.empty() ? "" : ",") + std::to_string(n);
        const char* isa = sys.isa.c_str();
        Status st = emit_report(o->out, [&](std::FILE* f) {
            if (o->out.format == "json") {
                nlohmann::json j;
                record_run(j, n_threads);
                j["cpu"] = sys.cpu_name;
                j["cpu_flags"] = sys.cpu_flags;
                j["bandwidth_gbs"] = bw;
                j["kv_type"] = o->kv_types.label();
                j["policy"] = o->policies;
                j["threads"] = thread_counts;
                for (const Row& r : rows) {
                    j["results"].push_back({{"model", r.model}, {"model_type", r.model_type}, {"model_n_params", r.n_params},
                                            {"policy", r.policy}, {"threads", r.n_threads}, {"type_k", o->kv_types.k_name()},
                                            {"type_v", o->kv_types.v_name()}, {"types", r.type_summary}, {"weight_bytes", r.weight_bytes},
                                            {"test", r.test}, {"depth", r.depth}, {"tps_mean", r.mean}, {"tps_sd", r.sd},
                                            {"kv_bytes", r.kv_bytes}, {"rss_peak_bytes", r.rss_peak},
                                            {"roofline_tps", r.roofline}, {"cpu_s_mean", r.cpu_mean},
                                            {"cpu_s_sd", r.cpu_sd}});
                }
                std::fprintf(f, "%s\n", j.dump(1).c_str());
            } else if (o->out.format == "csv") {
                // the first 11 columns as before (bench/compare_llamacpp.sh reads depth as column 6); a
                // spec with commas is quoted
                std::fprintf(f, "commit,isa,threads,model,test,depth,tps_mean,tps_sd,kv_bytes,rss_peak_bytes,roofline_tps,"
                                "policy,type_k,type_v,model_type,model_size,model_n_params,cpu_s_mean,cpu_s_sd\n");
                for (const Row& r : rows) {
                    const std::string pol = r.policy.find(',') == std::string::npos ? r.policy : "\"" + r.policy + "\"";
                    std::fprintf(f, "%s,%s,%d,%s,%s,%d,%.3f,%.3f,%zu,%zu,%.3f,%s,%s,%s,%s,%zu,%lld,%.3f,%.3f\n", hkv_git_commit(), isa,
                                 r.n_threads, r.model.c_str(), r.test.c_str(), r.depth, r.mean, r.sd, r.kv_bytes, r.rss_peak,
                                 r.roofline, pol.c_str(), o->kv_types.k_name().c_str(), o->kv_types.v_name().c_str(), r.model_type.c_str(),
                                 r.weight_bytes, (long long)r.n_params, r.cpu_mean, r.cpu_sd);
                }
            } else {
                std::fprintf(f, "heterokv %s, %s, isa %s, threads %s, KV %s, policy %s, bandwidth %.1f GB/s\n\n",
                            hkv_git_commit(), sys.cpu_name.c_str(), isa, threads_joined.c_str(), o->kv_types.label().c_str(),
                            policies_joined.c_str(), bw);
                std::fprintf(f, "| model | size | policy | threads | test | t/s | CPU s | KV MiB | peak RSS MiB | roofline t/s | of roofline |\n");
                std::fprintf(f, "|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|\n");
                for (const Row& r : rows) {
                    char roof[64] = "", frac[32] = "";
                    if (r.roofline > 0) {
                        std::snprintf(roof, sizeof(roof), "%.2f", r.roofline);
                        std::snprintf(frac, sizeof(frac), "%.0f%%", 100.0 * r.mean / r.roofline);
                    }
                    std::fprintf(f, "| %s (%s) | %.1f MiB | %s | %d | %s @ d%d | %.2f ± %.2f | %.2f ± %.2f | %.1f | %.1f | %s | %s |\n",
                                r.model.c_str(), r.model_type.c_str(), double(r.weight_bytes) / 1048576.0,
                                r.policy.c_str(), r.n_threads, r.test.c_str(), r.depth, r.mean, r.sd, r.cpu_mean, r.cpu_sd,
                                double(r.kv_bytes) / 1048576.0, double(r.rss_peak) / 1048576.0, roof, frac);
                }
            }
        });
        if (!st.ok()) return fail(st);
        return 0;
    };
}

}  // namespace hkv::cli
