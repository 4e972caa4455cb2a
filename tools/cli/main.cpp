// heterokv — command-line front end: `heterokv <command> --help` for each command's options.
//
// Exit codes (README "Commands"): 0 success (and --help, --version, no command: usage); 1 an error
// while running (a bad file, model, spec or I/O); 2 a command line that does not parse (unknown
// option, missing or malformed value). Every error is one line "heterokv: error: ..." on stderr.
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "line_input.h"
#include "record.h"
#include "heterokv/system.h"
#include "build_info.h"

#ifndef HKV_VERSION
#define HKV_VERSION "0.0.0"
#endif

namespace hkv::cli {

namespace {
std::string g_command_line;
}  // namespace

const std::string& command_line() { return g_command_line; }

std::string version_string() { return std::string("heterokv ") + HKV_VERSION + " (commit " + hkv_git_commit() + ")"; }

}  // namespace hkv::cli

namespace {

// llama.cpp options with no meaning on a CPU-only engine: accepted and ignored with a note, so a
// command line copied from llama.cpp runs (`-ngl 99` would otherwise parse as `-n gl`).
struct Ignored {
    const char* name;
    int values;  // 1: takes a value; 0: a flag; -1: an optional on/off/auto value
};
constexpr Ignored kIgnored[] = {
    {"-ngl", 1}, {"--n-gpu-layers", 1}, {"--gpu-layers", 1}, {"-mg", 1}, {"--main-gpu", 1},
    {"-sm", 1},  {"--split-mode", 1},   {"-ts", 1},          {"--tensor-split", 1},
    {"-fa", -1}, {"--flash-attn", -1},  {"--mlock", 0},      {"--no-mmap", 0},
    {"-nkvo", 0}, {"--no-kv-offload", 0},
};

std::vector<std::string> drop_ignored(int argc, char** argv) {
    std::vector<std::string> out;
    for (int i = 0; i < argc; ++i) {
        std::string a = argv[i];
        std::string name = a.substr(0, a.find('='));
        const Ignored* hit = nullptr;
        for (const Ignored& ig : kIgnored) {
            if (i > 0 && name == ig.name) hit = &ig;
        }
        if (!hit) {
            out.push_back(a);
            continue;
        }
        std::string shown = a;
        const bool inline_value = a.find('=') != std::string::npos;
        if (!inline_value && i + 1 < argc) {
            const std::string next = argv[i + 1];
            const bool optional_ok = next == "on" || next == "off" || next == "auto" || next == "0" || next == "1";
            if (hit->values == 1 || (hit->values == -1 && optional_ok)) shown += std::string(" ") + argv[++i];
        }
        std::fprintf(stderr, "heterokv: note: '%s' ignored (a llama.cpp GPU/memory-mapping option; heterokv "
                             "runs on the CPU)\n", shown.c_str());
    }
    return out;
}

// One line: CLI11's messages may hold newlines.
std::string one_line(std::string s) {
    for (char& c : s) {
        if (c == '\n' || c == '\r') c = ' ';
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
}

// llama.cpp's spellings: `run -cnv` (or --conversation) is `chat`, and chat's -sys is
// --system-prompt (CLI11 has no multi-letter single-dash options).
void conversation_spellings(std::vector<std::string>& args) {
    if (args.size() < 2 || (args[1] != "run" && args[1] != "chat")) return;
    for (size_t i = 2; i < args.size(); ++i) {
        if (args[i] == "-cnv" || args[i] == "--conversation") {
            args[1] = "chat";
            args.erase(args.begin() + std::ptrdiff_t(i--));
        }
    }
    for (size_t i = 2; i < args.size() && args[1] == "chat"; ++i) {
        if (args[i] == "-sys") args[i] = "--system-prompt";
    }
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"heterokv: long-context LLM inference on the CPU with a per-head compressed KV cache", "heterokv"};
    app.require_subcommand(1);
    bool version = false;
    app.add_flag("--version", version, "print the version, the commit and the kernels the CPU gets, then exit");
    std::map<CLI::App*, hkv::cli::Runner> runners;
    auto add = [&](const char* name, const char* desc, hkv::cli::Runner (*fn)(CLI::App&)) {
        CLI::App* sub = app.add_subcommand(name, desc);
        runners[sub] = fn(*sub);
    };
    add("run", "generate text from a prompt", hkv::cli::add_run);
    add("chat", "a conversation with the model's chat template (run -cnv): one line per turn, /reset, /stats, /exit",
        hkv::cli::add_chat);
    add("make-model", "write a GGUF model with synthetic weights for a named shape preset",
        hkv::cli::add_make_model);
    add("bench", "prefill and decode speed at context depths (llama-bench style)", hkv::cli::add_bench);
    add("eval", "accuracy under KV compression: eval ppl|niah|ruler|longbench|sweep", hkv::cli::add_eval);
    add("serve", "OpenAI-compatible HTTP server (/v1/completions, /v1/chat/completions, /metrics)",
        hkv::cli::add_serve);
    add("info", "print a model's configuration, tensor types and tokenizer", hkv::cli::add_info);
    add("calibrate", "HeteroCache offline profiling: head taxonomy JSON (roles, clusters, budget ratios)",
        hkv::cli::add_calibrate);
    add("policies", "list the KV compression policies: what they keep, memory while decoding, options",
        hkv::cli::add_policies);

    std::vector<std::string> args = drop_ignored(argc, argv);
    conversation_spellings(args);
    for (int i = 0; i < argc; ++i) {  // for JSON results (record.h); a path's folders are dropped from argv[0]
        std::string a = i == 0 ? std::string("heterokv") : std::string(argv[i]);
        if (a.find_first_of(" \t\"'") != std::string::npos) a = "'" + a + "'";
        hkv::cli::g_command_line += (i ? " " : "") + a;
    }
    const bool wants_version = args.size() == 2 && args[1] == "--version";
    if (args.size() == 1 || wants_version) {
        if (wants_version) {
            const hkv::SystemInfo sys = hkv::system_info();
            std::printf("%s\nkernels: %s (runtime dispatch on %s; HKV_ISA caps it)\nline editing: %s\n",
                        hkv::cli::version_string().c_str(), sys.isa.c_str(),
                        sys.cpu_name.empty() ? "an unknown CPU" : sys.cpu_name.c_str(),
                        hkv::cli::line_editor_name());
            return 0;
        }
        std::printf("%s\n\nusage: heterokv COMMAND [OPTIONS]   (heterokv COMMAND --help: its options)\n\n",
                    hkv::cli::version_string().c_str());
        for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
            std::printf("  %-11s %s\n", sub->get_name().c_str(), sub->get_description().c_str());
        }
        std::printf("\nexample: heterokv run -m MODEL.gguf -f long.txt -n 64 --policy snapkv:ratio=0.25\n");
        return 0;
    }
    std::string names;
    bool known = false;
    for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
        names += (names.empty() ? "" : ", ") + sub->get_name();
        known = known || sub->get_name() == args[1];
    }
    if (args[1][0] != '-' && !known) {
        std::fprintf(stderr, "heterokv: error: invalid argument: unknown command '%s' (commands: %s)\n", args[1].c_str(),
                     names.c_str());
        return 2;
    }
    std::vector<std::string> rev(args.rbegin(), args.rend() - 1);  // CLI11 takes them reversed, without argv[0]
    // llama.cpp's multi-letter short options (-ctk q8_0, -ctv q8_0) are their long names here: CLI11
    // would read "-ctk" as the short options -c -t -k.
    for (std::string& a : rev) {
        if (a == "-ctk") a = "--cache-type-k";
        else if (a == "-ctv") a = "--cache-type-v";
    }
    try {
        app.parse(rev);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help
        // A bad command line is an error like any other: one line in the project's format, exit code 2.
        std::string what = one_line(e.what());
        if (what == "A subcommand is required" && args.size() >= 2 && args[1] == "eval") {
            what = "eval needs a kind: ppl, niah, ruler, longbench or sweep";
        }
        std::fprintf(stderr, "heterokv: error: invalid argument: %s (see --help)\n", what.c_str());
        return 2;
    }
    if (version) {
        std::fprintf(stderr, "heterokv: error: invalid argument: --version takes no command (heterokv --version)\n");
        return 2;
    }
    for (auto& [sub, run] : runners) {
        if (sub->parsed()) return run();
    }
    return 2;
}
