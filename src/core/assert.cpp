#include "core/assert.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>

namespace hkv {
namespace {
AbortCallback g_abort_cb = nullptr;
}

void set_abort_callback(AbortCallback cb) { g_abort_cb = cb; }

void assert_fail(const char* file, int line, const char* cond, const char* fmt, ...) {
    char body[1024];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    char msg[1400];
    std::snprintf(msg, sizeof(msg), "%s:%d: assertion failed: %s: %s", file, line, cond, body);
    std::fprintf(stderr, "heterokv fatal: %s\n", msg);
    if (g_abort_cb) g_abort_cb(msg);
    std::abort();
}

}  // namespace hkv
