// tools/cli/commands.h — the heterokv subcommands. Each registers its options on a CLI11 app and
// returns a runner; main.cpp dispatches. Results go to stdout, logs and progress to stderr.
#pragma once

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "heterokv/engine.h"
#include "heterokv/file_io.h"
#include "heterokv/sampler.h"
#include "heterokv/status.h"
#include "heterokv/types.h"

namespace hkv::cli {

using Runner = std::function<int()>;

// Prints "heterokv: error: <kind>: <message>" to stderr and returns the exit code 1.
inline int fail(const Status& s) {
    std::fprintf(stderr, "heterokv: error: %s\n", s.to_string().c_str());
    return 1;
}

// The same for a command line that lacks what it needs (a required option that CLI11 cannot require
// because another option, e.g. --replot, makes it optional): exit code 2, as for parse errors.
inline int usage_fail(const Status& s) {
    std::fprintf(stderr, "heterokv: error: %s (see --help)\n", s.to_string().c_str());
    return 2;
}

Runner add_run(CLI::App& app);         // heterokv run: generate text
Runner add_chat(CLI::App& app);        // heterokv chat (run -cnv): a conversation with the chat template
Runner add_make_model(CLI::App& app);  // heterokv make-model: synthetic GGUF of a preset shape
Runner add_info(CLI::App& app);        // heterokv info: a model's configuration and tensors
Runner add_bench(CLI::App& app);       // heterokv bench: prefill/decode speed at depth, KV bytes, RSS

Runner add_eval(CLI::App& app);        // heterokv eval <kind>: accuracy under compression
Runner add_eval_ppl(CLI::App& app);    // heterokv eval ppl: perplexity, KLD, top-1 vs full
Runner add_eval_niah(CLI::App& app);
Runner add_serve(CLI::App& app);       // heterokv serve: OpenAI-compatible HTTP server   // heterokv eval niah: needle in a haystack grid, heatmaps
Runner add_calibrate(CLI::App& app);   // heterokv calibrate: HeteroCache head taxonomy (offline profiling)
Runner add_eval_ruler(CLI::App& app);      // heterokv eval ruler: RULER synthetic tasks per policy
Runner add_eval_longbench(CLI::App& app);  // heterokv eval longbench: LongBench jsonl, official metrics
Runner add_eval_sweep(CLI::App& app);      // heterokv eval sweep: policies x budgets, table and plot
Runner add_eval_equal(CLI::App& app);      // heterokv eval equal: seed methods vs baselines at equal KV bytes

Runner add_policies(CLI::App& app);    // heterokv policies: every policy, its options and memory

// The version line: "heterokv 0.1.0 (commit abc1234)" (main.cpp).
std::string version_string();

// ---- -o FILE and --format, the same in every command that writes a report ----
// -o always names where output goes (a file; a prefix for commands that write several files);
// --format chooses md, csv or json. `-o md|csv|json` (llama-bench's spelling, and heterokv's
// before: bench, eval ppl) is read as --format, with a note.
struct ReportOutput {
    std::string path;           // -o: empty = stdout
    std::string format = "md";  // --format
};
void add_report_output(CLI::App& app, ReportOutput* out);
// Checks the format and resolves the old spelling; call first in the runner.
Status resolve_report_output(ReportOutput* out);
// Runs `write` on stdout, or on a new file that replaces out.path when complete.
Status emit_report(const ReportOutput& out, const std::function<void(std::FILE*)>& write);

// --kv-type values: "f16", "bf16", "f32", "q8_0", "q4_0", "hq4" (cmd_run.cpp).
Expected<KvType> parse_kv_type(const std::string& s);

// The KV cache's element types: --kv-type (K and V), --cache-type-k / -ctk and --cache-type-v / -ctv
// (llama.cpp's names; each overrides --kv-type for its half). cmd_run.cpp.
struct KvTypeOptions {
    std::string both = "f16", k, v;
    void add(CLI::App& app);
    // Parses the options into kv_type / type_k / type_v of a ContextParams-like struct; an unknown
    // name is an error naming its option.
    template <class P>
    Status apply(P& p) const {
        KvType t[3] = {KvType::kF16, KvType::kF16, KvType::kF16};
        HKV_TRY(parse(t));
        p.kv_type = t[0];
        if (!k.empty()) p.type_k = t[1];
        if (!v.empty()) p.type_v = t[2];
        return Status();
    }
    // "f16", or "K/V" ("q8_0/f16") when the halves differ: for reports.
    std::string label() const;
    std::string k_name() const { return k.empty() ? both : k; }  // the K rows' type name
    std::string v_name() const { return v.empty() ? both : v; }  // the V rows' type name

private:
    Status parse(KvType out[3]) const;  // --kv-type, -ctk (if given), -ctv (if given)
};

// The context and sampling options `run` and `chat` share (cmd_run.cpp).
struct GenOptions {
    int32_t n_ctx = 0;
    int32_t n_threads = 0;
    int32_t n_batch = 256;
    KvTypeOptions kv_types;             // --kv-type, -ctk, -ctv
    int32_t page_size = 64;
    std::string kv_cold_dir;
    std::string kv_cold_gather = "auto";
    std::string policy = "full";
    bool swa_full = false;
    float temp = 0.8f;
    int32_t top_k = 40;
    float top_p = 0.95f;
    float min_p = 0.05f;
    float repeat_penalty = 1.0f;
    int32_t repeat_last_n = 64;
    std::string seed = "-1";
};
// Registers -c, -t, -b, --kv-type/-ctk/-ctv, --kv-page-size, --kv-cold-dir, --policy, the sampling options,
// --seed and --swa-full on app.
void add_gen_options(CLI::App& app, GenOptions& o);
// The checked ContextParams (also --kv-cold-dir against the policy).
Expected<ContextParams> gen_context_params(const GenOptions& o);
// The sampler parameters; a random seed (-1) is drawn, and printed to stderr when sampling (--temp > 0).
Expected<SamplerParams> gen_sampler_params(const GenOptions& o);

// A seed option: "-1" = random (nullopt), else a decimal integer in [0, 2^64-1]; anything else
// ("-2", "18446744073709551616", "7x") is an error naming `opt` (cmd_run.cpp).
Expected<std::optional<uint64_t>> parse_seed(const std::string& s, const char* opt);

// NOTE: CLI11 2.1 clamps an out-of-range value of a 64-bit integer option to the type's limit and
// wraps a negative one into an unsigned option ("--seed -2" became 2^64-2). Every uint64_t option
// carries this check: a decimal integer that fits.
inline const CLI::Validator kU64Check(
    [](std::string& s) -> std::string {
        auto v = parse_seed(s, "value");
        if (!v.ok() || !v->has_value()) return "expected an integer in [0, 18446744073709551615], got '" + s + "'";
        return std::string();
    },
    "UINT64");

// --kv-cold-dir: empty (host RAM), or an existing folder given with at least one policy that has a
// cold tier (heterocache); a folder that would be ignored or does not exist is an error (cmd_run.cpp).
Status check_kv_cold_dir(const std::string& dir, const std::vector<std::string>& policies);
// --kv-cold-gather auto|thread|fence (ContextParams::kv_cold_gather) into *value (cmd_run.cpp).
void add_kv_cold_gather(CLI::App& app, std::string* value);
ContextParams::ColdGather kv_cold_gather(const std::string& value);

// The shared data folder (word lists, essays, haystacks) when --data is not given: ../shared/data
// from the current folder if it exists, else the one beside the checkout the binary was built in
// (BIN/../../../shared/data for build/bin/heterokv), so eval ruler and sweep run from any folder.
inline std::string default_data_dir() {
    std::error_code ec;
    if (std::filesystem::is_directory("../shared/data", ec)) return "../shared/data";
    const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        const std::filesystem::path d = exe.parent_path() / "../../../shared/data";
        if (std::filesystem::is_directory(d, ec)) return std::filesystem::weakly_canonical(d, ec).string();
    }
    return "../shared/data";
}

// Expands --haystack arguments: a folder contributes its *.txt files (sorted), a file itself;
// anything else is a kNotFound error naming it.
inline Status expand_haystack(const std::vector<std::string>& args, std::vector<std::string>* files) {
    for (const std::string& h : args) {
        if (std::filesystem::is_directory(h)) {
            std::vector<std::string> found;
            for (const auto& e : std::filesystem::directory_iterator(h)) {
                if (e.path().extension() == ".txt") found.push_back(e.path().string());
            }
            std::sort(found.begin(), found.end());
            files->insert(files->end(), found.begin(), found.end());
        } else if (std::filesystem::is_regular_file(h)) {
            files->push_back(h);
        } else {
            return Status::not_found("--haystack %s: no such file or folder", h.c_str());
        }
    }
    return Status();
}

}  // namespace hkv::cli
