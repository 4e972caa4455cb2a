// core/sysinfo.h — process memory figures for reports (Linux /proc; 0 where unavailable).
#pragma once

#include <cstddef>
#include <string>

namespace hkv {

size_t rss_peak_bytes();     // high-water mark of resident memory (VmHWM)
size_t rss_current_bytes();  // resident memory now (VmRSS)
std::string cpu_model_name();  // from /proc/cpuinfo, "" if unknown

}  // namespace hkv
