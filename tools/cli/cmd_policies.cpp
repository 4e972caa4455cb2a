// heterokv policies — every registered KV compression policy from the library's catalog
// (policy_catalog(), include/heterokv/policy.h): what it keeps, its memory while decoding, its
// options and defaults. `--format md` prints README's table.
#include <cstdio>
#include <string>

#include "commands.h"
#include "heterokv/policy.h"

namespace hkv::cli {
namespace {

std::string sv(std::string_view s) { return std::string(s); }

void print_text(const PolicyDoc& d) {
    std::printf("%s — %s\n", sv(d.name).c_str(), sv(d.method).c_str());
    std::printf("  keeps:     %s\n", sv(d.keeps).c_str());
    std::printf("  decoding:  %s\n", sv(d.decoding).c_str());
    std::printf("  use:       %s\n", sv(d.use).c_str());
    if (d.options.empty()) {
        std::printf("  options:   none\n\n");
        return;
    }
    std::printf("  options:\n");
    for (const PolicyOptionDoc& o : d.options) {
        std::printf("    %-18s %-28s %s\n", sv(o.key).c_str(), ("(" + sv(o.def) + ")").c_str(), sv(o.meaning).c_str());
    }
    std::printf("\n");
}

// Escapes '|' for a markdown table cell.
std::string cell(std::string_view s) {
    std::string r;
    for (char c : s) r += c == '|' ? std::string("\\|") : std::string(1, c);
    return r;
}

void print_md(std::span<const PolicyDoc> docs) {
    std::printf("| policy | keeps (per layer and KV head) | memory while decoding | options (defaults) | use it for |\n");
    std::printf("|---|---|---|---|---|\n");
    for (const PolicyDoc& d : docs) {
        std::string opts;
        for (const PolicyOptionDoc& o : d.options) {
            if (o.key == "compression_ratio" || (o.key == "ratio" && d.name != "heterocache")) {
                continue;  // the size options, in the table's note
            }
            opts += (opts.empty() ? "" : ", ") + std::string("`") + sv(o.key) + "=" + cell(o.def) + "`";
        }
        std::printf("| `%s`: %s | %s | %s | %s | %s |\n", sv(d.name).c_str(), cell(d.method).c_str(),
                    cell(d.keeps).c_str(), cell(d.decoding).c_str(), opts.empty() ? "none" : opts.c_str(),
                    cell(d.use).c_str());
    }
}

}  // namespace

Runner add_policies(CLI::App& app) {
    auto name = std::make_shared<std::string>();
    auto format = std::make_shared<std::string>("text");
    app.add_option("name", *name, "one policy (default: all)");
    app.add_option("--format", *format, "text or md (a markdown table)")->capture_default_str();
    return [name, format]() -> int {
        if (*format != "text" && *format != "md") {
            return fail(Status::invalid("--format '%s': expected text or md", format->c_str()));
        }
        const std::span<const PolicyDoc> all = policy_catalog();
        std::span<const PolicyDoc> docs = all;
        if (!name->empty()) {
            size_t i = 0;
            while (i < all.size() && all[i].name != *name) ++i;
            if (i == all.size()) {
                return fail(Status::invalid("unknown policy '%s' (policies: %s)", name->c_str(), policy_names().c_str()));
            }
            docs = all.subspan(i, 1);
        }
        if (*format == "md") {
            print_md(docs);
            return 0;
        }
        std::printf("Give a policy as --policy NAME:key=value,... (run, bench, eval, serve). Size: budget=N slots per\n"
                    "layer and KV head, or ratio=F (fraction of the prompt kept, per prompt), or compression_ratio=F\n"
                    "(kvpress: fraction removed). * = one of the three is required.\n\n");
        for (const PolicyDoc& d : docs) print_text(d);
        return 0;
    };
}

// ---- -o / --format ----

void add_report_output(CLI::App& app, ReportOutput* out) {
    app.add_option("-o,--output", out->path, "write the report to FILE (default: stdout)");
    app.add_option("--format", out->format, "report format: md, csv or json")->capture_default_str();
}

Status resolve_report_output(ReportOutput* out) {
    if (out->path == "md" || out->path == "csv" || out->path == "json") {
        std::fprintf(stderr, "heterokv: note: '-o %s' read as --format %s (llama-bench's spelling; in heterokv -o names an output file)\n",
                     out->path.c_str(), out->path.c_str());
        out->format = out->path;
        out->path.clear();
    }
    if (out->format != "md" && out->format != "csv" && out->format != "json") {
        return Status::invalid("--format '%s': expected md, csv or json", out->format.c_str());
    }
    if (!out->path.empty()) HKV_TRY(file_check_output(out->path, "-o"));
    return Status();
}

Status emit_report(const ReportOutput& out, const std::function<void(std::FILE*)>& write) {
    if (out.path.empty()) {
        write(stdout);
        return Status();
    }
    HKV_TRY(file_write_atomic(out.path, [&](std::FILE* f) {
        write(f);
        return Status();
    }, "-o"));
    std::fprintf(stderr, "heterokv: wrote %s\n", out.path.c_str());
    return Status();
}

}  // namespace hkv::cli
