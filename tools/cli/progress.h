// tools/cli/progress.h — progress on stderr: a bar redrawn in place on a terminal; otherwise (a log
// file, a pipe, CI) a line at each tenth of the work and at its end, so a log holds a few lines,
// not hundreds of carriage returns.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

namespace hkv::cli {

class Progress {
public:
    // label: "prefill", "eval ppl", ...; unit: "tokens", "runs", ...
    Progress(std::string label, std::string unit) : label_(std::move(label)), unit_(std::move(unit)), tty_(isatty(2) == 1) {}
    ~Progress() { end(); }

    // detail: optional text after the counts ("len 1024, depth 0.50").
    void update(int64_t done, int64_t total, const std::string& detail = std::string()) {
        if (total <= 0) return;
        if (done > total) done = total;
        const int tenth = int(10 * done / total);
        if (tty_) {
            constexpr int kWidth = 30;
            const int fill = int(double(kWidth) * double(done) / double(total));
            std::fprintf(stderr, "\r\033[Kheterokv: %s [%.*s%*s] %lld/%lld %s%s%s", label_.c_str(), fill,
                         "##############################", kWidth - fill, "", (long long)done, (long long)total,
                         unit_.c_str(), detail.empty() ? "" : ", ", detail.c_str());
            open_ = done < total;
            if (!open_) std::fprintf(stderr, "\n");
        } else if (tenth > last_tenth_ || (done == total && !ended_)) {
            std::fprintf(stderr, "heterokv: %s %lld/%lld %s (%d%%)%s%s\n", label_.c_str(), (long long)done,
                         (long long)total, unit_.c_str(), int(100 * done / total), detail.empty() ? "" : ", ",
                         detail.c_str());
            last_tenth_ = tenth;
        }
        if (done == total) ended_ = true;
        std::fflush(stderr);
    }
    // Ends an unfinished bar's line (before an error message).
    void end() {
        if (open_) std::fprintf(stderr, "\n");
        open_ = false;
    }

private:
    std::string label_, unit_;
    bool tty_;
    bool open_ = false, ended_ = false;
    int last_tenth_ = 0;
};

}  // namespace hkv::cli
