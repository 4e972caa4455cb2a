#include "core/env.h"

#include <cstdlib>
#include <cstring>

namespace hkv {

LogLevel env_log_level() {
    const char* v = std::getenv("HKV_LOG_LEVEL");
    if (!v) return LogLevel::kInfo;
    if (!std::strcmp(v, "debug")) return LogLevel::kDebug;
    if (!std::strcmp(v, "warn")) return LogLevel::kWarn;
    if (!std::strcmp(v, "error")) return LogLevel::kError;
    if (!std::strcmp(v, "none")) return LogLevel::kNone;
    return LogLevel::kInfo;
}

const char* env_isa_override() { return std::getenv("HKV_ISA"); }

bool env_repack() {
    const char* v = std::getenv("HKV_REPACK");
    return !v || std::strcmp(v, "0") != 0;
}

}  // namespace hkv
