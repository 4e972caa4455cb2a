// tools/eval/text_util.h — small string helpers shared by the evaluation tasks.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace hkv::eval {

// v[0] + sep + v[1] + ... (Python's sep.join(v)).
inline std::string join(const std::vector<std::string>& v, std::string_view sep) {
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) {
        if (i) out += sep;
        out += v[i];
    }
    return out;
}

}  // namespace hkv::eval
