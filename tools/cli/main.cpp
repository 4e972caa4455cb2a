// heterokv — command-line front end: `heterokv <command> --help` for each command's options.
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "commands.h"

int main(int argc, char** argv) {
    CLI::App app{"heterokv: long-context LLM inference with per-head KV cache compression"};
    app.require_subcommand(1);
    std::map<CLI::App*, hkv::cli::Runner> runners;
    auto add = [&](const char* name, const char* desc, hkv::cli::Runner (*fn)(CLI::App&)) {
        CLI::App* sub = app.add_subcommand(name, desc);
        runners[sub] = fn(*sub);
    };
    add("run", "generate text from a prompt", hkv::cli::add_run);
    add("make-model", "write a GGUF model with synthetic weights for a named shape preset",
        hkv::cli::add_make_model);
    add("bench", "prefill and decode speed at context depths (llama-bench style)", hkv::cli::add_bench);
    add("eval", "accuracy under KV compression: eval ppl (perplexity, KL divergence vs full), eval niah",
        hkv::cli::add_eval);
    add("serve", "OpenAI-compatible HTTP server (/v1/completions, /v1/chat/completions, /metrics)",
        hkv::cli::add_serve);
    add("info", "print a model's configuration, tensor types and tokenizer", hkv::cli::add_info);
    add("calibrate", "HeteroCache offline profiling: head taxonomy JSON (roles, clusters, budget ratios)",
        hkv::cli::add_calibrate);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help
        // A bad option is an error like any other: one line in the project's format.
        std::fprintf(stderr, "heterokv: error: invalid argument: %s (see --help)\n", e.what());
        return e.get_exit_code();
    }
    for (auto& [sub, run] : runners) {
        if (sub->parsed()) return run();
    }
    return 2;
}
