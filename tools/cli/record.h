// tools/cli/record.h — what every JSON result records about the run that made it: the command
// line, the commit the binary was built from, the kernels and the thread count.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "heterokv/system.h"
#include "build_info.h"


namespace hkv::cli {

// The command line as given (main.cpp), arguments joined by spaces.
const std::string& command_line();

// Adds "command", "commit", "isa" and "threads" (n_threads as resolved: 0 = every core) to j.
inline void record_run(nlohmann::json& j, int32_t n_threads) {
    const SystemInfo sys = system_info();
    j["command"] = command_line();
    j["commit"] = hkv_git_commit();
    j["isa"] = sys.isa;
    j["threads"] = n_threads > 0 ? n_threads : sys.n_threads;
}

}  // namespace hkv::cli
