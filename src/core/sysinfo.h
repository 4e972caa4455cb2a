// core/sysinfo.h — process memory figures and the CPU's name: public in include/heterokv/system.h.
#pragma once

#include <string>

#include "heterokv/system.h"

namespace hkv {

std::string cpu_model_name();  // from /proc/cpuinfo, "" if unknown

}  // namespace hkv
