// server/slot_files.cpp — see slot_files.h.
#include "server/slot_files.h"

#include <nlohmann/json.hpp>

namespace hkv::server {

Expected<std::string> slot_file_path(const std::string& dir, std::string_view filename) {
    if (filename.empty() || filename.size() > 128) {
        return Status::invalid("'filename' must have 1 to 128 characters (it has %zu)", filename.size());
    }
    if (filename[0] == '.') return Status::invalid("'filename' must not start with '.'");
    for (char ch : filename) {
        const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                        ch == '_' || ch == '-' || ch == '+';
        if (!ok) {
            return Status::invalid("'filename' must be a plain name of letters, digits and . _ + - inside "
                                   "--slot-save-path (no '/', no '..')");
        }
    }
    return dir + "/" + std::string(filename);
}

Expected<SlotRequest> parse_slot_request(std::string_view body, bool need_filename, size_t max_bytes) {
    using json = nlohmann::json;
    if (body.size() > max_bytes) return Status::invalid("slot action body of %zu bytes (at most %zu)", body.size(), max_bytes);
    SlotRequest r;
    if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
        if (need_filename) return Status::invalid("the body must be {\"filename\": NAME}");
        return r;
    }
    const json j = json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return Status::invalid("the body must be a JSON object");
    for (const auto& [key, value] : j.items()) {
        if (key == "filename" || key == "kv_policy") {
            if (!value.is_string()) return Status::invalid("'%s' must be a string", key.c_str());
            (key == "filename" ? r.filename : r.kv_policy) = value.get<std::string>();
        } else {
            return Status::invalid("unknown field '%.64s' (expected 'filename', and 'kv_policy' for restore)",
                                   key.c_str());
        }
    }
    if (need_filename && r.filename.empty()) return Status::invalid("the body must be {\"filename\": NAME}");
    return r;
}

}  // namespace hkv::server
