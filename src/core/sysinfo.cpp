#include "core/sysinfo.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "core/cpu.h"
#include "core/thread_pool.h"

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

SystemInfo system_info() {
    SystemInfo s;
    s.cpu_name = cpu_model_name();
    s.isa = isa_name(cpu_isa());
    s.cpu_flags = cpu_flags_string();
    s.n_threads = int32_t(std::max(1u, std::thread::hardware_concurrency()));
    return s;
}

double memory_bandwidth_gbs(int32_t n_threads) {
    ThreadPool pool(n_threads);
    const int64_t n = int64_t(32) << 20;
    std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n), 1.0f), c(static_cast<size_t>(n), 2.0f);
    pool.parallel_for(n, [&](int64_t s, int64_t e, int) { for (int64_t i = s; i < e; ++i) a[size_t(i)] = 0.0f; });
    double best = 0.0;
    for (int rep = 0; rep < 5; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        pool.parallel_for(n, [&](int64_t s, int64_t e, int) {
            float* __restrict pa = a.data();
            const float* __restrict pb = b.data();
            const float* __restrict pc = c.data();
            for (int64_t i = s; i < e; ++i) pa[i] = pb[i] + 3.0f * pc[i];
        });
        const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, 3.0 * double(n) * 4.0 / sec / 1e9);
    }
    return best;
}

}  // namespace hkv
