#include "core/sysinfo.h"

#include <cstdio>
#include <cstring>

namespace hkv {
namespace {

size_t status_kb(const char* key) {
    std::FILE* f = std::fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t kb = 0;
    const size_t n = std::strlen(key);
    while (std::fgets(line, sizeof(line), f)) {
        if (!std::strncmp(line, key, n) && line[n] == ':') {
            std::sscanf(line + n + 1, "%zu", &kb);
            break;
        }
    }
    std::fclose(f);
    return kb;
}

}  // namespace

size_t rss_peak_bytes() { return status_kb("VmHWM") * 1024; }
size_t rss_current_bytes() { return status_kb("VmRSS") * 1024; }

std::string cpu_model_name() {
    std::FILE* f = std::fopen("/proc/cpuinfo", "r");
    if (!f) return "";
    char line[512];
    std::string name;
    while (std::fgets(line, sizeof(line), f)) {
        if (!std::strncmp(line, "model name", 10)) {
            const char* c = std::strchr(line, ':');
            if (c) {
                name = c + 2;
                while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
            }
            break;
        }
    }
    std::fclose(f);
    return name;
}

}  // namespace hkv
