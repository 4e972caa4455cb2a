// tools/cli/eval_args.h — small argument helpers shared by the generation evals (ruler,
// longbench, sweep): comma lists, file-name slugs, policy checks, progress lines.
#pragma once

#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "eval/plot.h"
#include "heterokv/engine.h"
#include "heterokv/file_io.h"
#include "heterokv/policy.h"
#include "heterokv/status.h"

namespace hkv::cli {

// "a,b,c" -> {"a","b","c"}; empty items are dropped.
inline std::vector<std::string> csv_split(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    for (std::string it; std::getline(ss, it, ',');) {
        if (!it.empty()) out.push_back(it);
    }
    return out;
}

// "64,128" -> {64, 128}; kInvalidArgument naming the option for anything else.
inline Expected<std::vector<int32_t>> csv_ints(const std::string& s, const char* option) {
    std::vector<int32_t> out;
    for (const std::string& it : csv_split(s)) {
        size_t used = 0;
        long v = 0;
        try {
            v = std::stol(it, &used);
        } catch (...) {
            used = 0;
        }
        if (used != it.size() || v < 1 || v > (1l << 30)) {
            return Status::invalid("%s '%s': expected comma-separated positive integers", option, s.c_str());
        }
        out.push_back(int32_t(v));
    }
    if (out.empty()) return Status::invalid("%s: empty list", option);
    return out;
}

// The two characters "\n" become a newline (for templates given on the command line).
inline std::string unescape_newlines(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        const bool esc = s[i] == '\\' && i + 1 < s.size() && s[i + 1] == 'n';
        out += esc ? '\n' : s[i];
        i += esc ? 1 : 0;
    }
    return out;
}

// A policy spec as a file-name part: non-alphanumerics become '_'.
inline std::string slug(const std::string& s) {
    std::string out;
    for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    return out;
}

// Every spec parses (before any long run starts).
inline Status policies_check(const std::vector<std::string>& specs) {
    for (const std::string& p : specs) {
        auto pol = policy_create(p);
        if (!pol.ok()) return pol.status();
    }
    return Status();
}

// Every spec against the loaded model and context size (policy_validate: e.g. a HeteroCache
// taxonomy for another model), before the first run starts.
inline Status policies_check(const Model& model, int32_t n_ctx, const std::vector<std::string>& specs) {
    for (const std::string& p : specs) HKV_TRY(policy_validate(p, model, n_ctx));
    return Status();
}

// Progress of a run over samples: on a terminal "\rheterokv: <what> [#####.....] done/total" redrawn
// in place; otherwise (a log, a pipe) a line at each tenth of the work (progress.h's rule; the
// callers report every sample, so crossing a tenth is seen).
inline void progress_bar(const std::string& what, size_t done, size_t total) {
    if (isatty(2) != 1) {
        if (total == 0) return;
        if (done == total || 10 * done / total > 10 * (done - (done > 0)) / total) {
            std::fprintf(stderr, "heterokv: %s %zu/%zu (%zu%%)\n", what.c_str(), done, total, 100 * done / total);
        }
        return;
    }
    const int width = 24, fill = total ? int(width * done / total) : width;
    std::fprintf(stderr, "\r\033[Kheterokv: %s [%s%s] %zu/%zu", what.c_str(), std::string(size_t(fill), '#').c_str(),
                 std::string(size_t(width - fill), '.').c_str(), done, total);
    if (done == total) std::fprintf(stderr, "\n");
}

// Creates the folder of an output prefix (-o out/sweep: out/) before a long run, so the results
// are not lost at its end; an error names the folder.
inline Status prepare_output_prefix(const std::string& prefix) {
    const std::filesystem::path dir = std::filesystem::path(prefix).parent_path();
    if (dir.empty()) return Status();
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec || !std::filesystem::is_directory(dir, ec)) {
        return Status::io_error("-o %s: cannot create the folder %s", prefix.c_str(), dir.string().c_str());
    }
    return Status();
}

// --replot of eval niah and ruler: reads the JSON of an earlier run, re-draws its figures under `prefix`
// with `draw` (nothing is run) and prints their names.
inline Status replot_figures(
    const std::string& json_path, const std::string& prefix,
    const std::function<Expected<std::vector<std::string>>(const std::string&, const std::string&)>& draw) {
    auto text = file_read(json_path, kFileMaxJson, "--replot");
    if (!text.ok()) return text.status();
    if (Status st = prepare_output_prefix(prefix); !st.ok()) return st;
    auto figs = draw(*text, prefix);
    if (!figs.ok()) return figs.status();
    for (const std::string& f : *figs) std::printf("%s%s\n", f.c_str(), eval::png_available() ? ".svg/.png" : ".svg");
    return Status();
}

}  // namespace hkv::cli
