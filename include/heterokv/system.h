// heterokv/system.h — facts about the machine and the process, for reports (`heterokv bench`).
// Linux /proc based; a figure that cannot be read is 0 or empty. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace hkv {

struct SystemInfo {
    std::string cpu_name;   // /proc/cpuinfo "model name", "" if unknown
    std::string isa;        // kernel set the engine dispatches to: "scalar" | "avx2" | "avx512"
    std::string cpu_flags;  // the CPU features the engine looks at: "avx2 fma f16c avx512f ..."
    int32_t n_threads = 1;  // hardware threads (what n_threads = 0 means everywhere)
};

SystemInfo system_info();

size_t rss_peak_bytes();     // high-water mark of resident memory (VmHWM)
size_t rss_current_bytes();  // resident memory now (VmRSS)

// Memory bandwidth in GB/s: best of 5 STREAM-style triads a = b + s*c over three 128 MiB f32
// arrays on n_threads threads (0 = all), bytes counted as 3 * 4 per element. Takes ~1 s and
// 384 MiB of memory while it runs.
double memory_bandwidth_gbs(int32_t n_threads);

}  // namespace hkv
