#include "line_input.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#if HKV_HAVE_LIBEDIT
#include <editline/readline.h>
#endif

namespace hkv::cli {

LineInput::LineInput(std::string prompt) : prompt_(std::move(prompt)) {
    tty_ = isatty(STDIN_FILENO) != 0;
#if HKV_HAVE_LIBEDIT
    editing_ = tty_ && isatty(STDOUT_FILENO) != 0;
    if (editing_) using_history();
#endif
}

LineInput::~LineInput() {
#if HKV_HAVE_LIBEDIT
    if (editing_) clear_history();
#endif
}

bool LineInput::read(std::string& line) {
#if HKV_HAVE_LIBEDIT
    if (editing_) {
        char* got = readline(prompt_.c_str());
        if (got == nullptr) return false;  // Ctrl-D on an empty line, or the terminal went away
        line = got;
        std::free(got);
        if (!line.empty() && line.find_first_not_of(' ') != std::string::npos) add_history(line.c_str());
        return true;
    }
#endif
    if (tty_ && !prompt_.empty()) {
        std::fputs(prompt_.c_str(), stdout);
        std::fflush(stdout);
    }
    if (!std::getline(std::cin, line)) return false;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return true;
}

const char* line_editor_name() {
#if HKV_HAVE_LIBEDIT
    return "libedit";
#else
    return "none";
#endif
}

}  // namespace hkv::cli
