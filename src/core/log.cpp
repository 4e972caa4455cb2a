#include "heterokv/log.h"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <mutex>

#include "core/env.h"

namespace hkv {
namespace {

void default_sink(LogLevel level, const char* text, void*) {
    static const char* kTags[] = {"debug", "info", "warn", "error", ""};
    std::fprintf(stderr, "heterokv %s: %s\n", kTags[static_cast<int>(level)], text);
}

std::mutex g_mu;
LogCallback g_cb = default_sink;
void* g_user = nullptr;
std::atomic<int> g_level{-1};  // -1 = not yet read from the environment

}  // namespace

void log_set(LogCallback cb, void* user_data) {
    std::lock_guard<std::mutex> lock(g_mu);
    g_cb = cb ? cb : default_sink;
    g_user = cb ? user_data : nullptr;
}

void log_set_level(LogLevel level) { g_level.store(static_cast<int>(level)); }

LogLevel log_level() {
    int lv = g_level.load();
    if (lv < 0) {
        lv = static_cast<int>(env_log_level());
        g_level.store(lv);
    }
    return static_cast<LogLevel>(lv);
}

void log_printf(LogLevel level, const char* func, const char* fmt, ...) {
    if (static_cast<int>(level) < static_cast<int>(log_level())) return;
    char body[2048];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    char text[2200];
    if (level == LogLevel::kDebug) {
        std::snprintf(text, sizeof(text), "%s: %s", func, body);
    } else {
        std::snprintf(text, sizeof(text), "%s", body);
    }
    std::lock_guard<std::mutex> lock(g_mu);
    g_cb(level, text, g_user);
}

}  // namespace hkv
