// Lines typed by the user of an interactive command (heterokv chat): with line editing and an
// in-memory history (libedit: arrows, Ctrl-A/E, Ctrl-R, Up for earlier lines) when stdin is a terminal
// and the build found libedit, else plain std::getline (pipes and scripts read exactly their bytes).
#pragma once

#include <string>

namespace hkv::cli {

class LineInput {
public:
    // prompt: shown before each line on a terminal ("" for none); never shown for a pipe.
    explicit LineInput(std::string prompt);
    ~LineInput();
    LineInput(const LineInput&) = delete;
    LineInput& operator=(const LineInput&) = delete;

    // The next line without its line end (a trailing '\r' removed); false at the end of the input.
    bool read(std::string& line);
    // True when lines are edited with libedit (a terminal and a build with libedit).
    bool editing() const { return editing_; }

private:
    std::string prompt_;
    bool tty_ = false;
    bool editing_ = false;
};

// "libedit" or "none": the line editor the build has, for --version.
const char* line_editor_name();

}  // namespace hkv::cli
